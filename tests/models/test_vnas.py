from model_tester import ModelTester


class TestVnas(ModelTester):
    """The paper's layer space (default genotype: every convolution 3x3x3)."""

    name = "vnas"


class TestVnasSearchedLayers(ModelTester):
    """A searched layer-space genotype mixing all three ops in encoder and decoder."""

    name = "vnas"
    extra_kwargs = {"genotype": {"space": "layer", "encoder": [["p3d", "conv2d"], ["conv3d", "p3d"], ["conv2d"] * 2],
                                 "decoder": [["conv3d", "conv2d"], ["p3d", "p3d"]]}}


class TestVnasLevelSpace(ModelTester):
    """The smaller level space (one op per level for two plain convolutions)."""

    name = "vnas"
    extra_kwargs = {"genotype": {"space": "level", "encoder": [["p3d"], ["conv2d"], ["conv3d"]],
                                 "decoder": [["conv2d"], ["p3d"]]}}
