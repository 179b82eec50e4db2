from model_tester import ModelTester


class TestNnunet(ModelTester):
    name = "nnunet"
