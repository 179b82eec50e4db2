from model_tester import ModelTester


class TestVnas(ModelTester):
    name = "vnas"
