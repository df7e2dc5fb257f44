"""metaformer-mini: MetaFormer and PoolFormer (Yu et al., CVPR 2022), built to be read."""
from .checkpoint import load_checkpoint
from .flops import count_params_and_macs
from .model import MetaFormer, MetaFormerConfig
from .registry import create_model, get_config, list_models
from .weights import convert_state_dict, load_pretrained

__all__ = ["MetaFormer", "MetaFormerConfig", "create_model", "get_config", "list_models",
           "count_params_and_macs", "convert_state_dict", "load_pretrained", "load_checkpoint"]
__version__ = "0.1.0"
