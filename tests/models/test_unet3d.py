from model_tester import ModelTester


class TestUnet3d(ModelTester):
    name = "unet3d"
