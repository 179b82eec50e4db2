from model_tester import ModelTester


class TestVnet(ModelTester):
    name = "vnet"
