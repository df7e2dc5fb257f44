"""metaformer-mini: MetaFormer and PoolFormer (Yu et al., CVPR 2022), built to be read."""
from .model import MetaFormer, MetaFormerConfig
from .registry import create_model, get_config, list_models

__all__ = ["MetaFormer", "MetaFormerConfig", "create_model", "get_config", "list_models"]
__version__ = "0.1.0"
