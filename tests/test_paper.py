"""metaformer_mini.paper: the papers' numbers, each with its table, agree with the suite's rows."""
from metaformer_mini import paper
from metaformer_mini.experiments import SUITE


def test_table5_rows_the_suite_needs():
    needed = {"pooling", "identity", "random", "sepconv", "pool5", "pool7", "pool9", "norm_layer",
              "norm_batch", "norm_none", "act_relu", "act_silu", "hybrid_attention",
              "hybrid_spatial_mlp", "no_channel_mlp", "no_residual"}
    assert needed <= set(paper.TABLE5)
    assert all(n.table == "Table 5" and n.paper is paper.METAFORMER for n in paper.TABLE5.values())


def test_suite_quotes_the_same_numbers():
    for row in SUITE:
        if row.paper is not None:
            assert paper.TABLE5[row.name].value == row.paper.top1, row.name


def test_tables_are_consistent():
    assert paper.TABLE2["PoolFormer-S12"].top1 == paper.TABLE5["pooling"].value
    assert paper.TABLE1_PARAMS_M["poolformer_s12"].value == 11.9
    assert paper.BASELINES_IMAGENET["IdentityFormer-S12"].top1 == 74.6
    assert {"ResNeXt-101-32x4d", "PVT-Tiny"} <= set(paper.TABLE4_ADE20K)
    assert paper.RSB_RESNET50_A1.value > paper.TABLE2["RSB-ResNet-50"].top1
