from model_tester import ModelTester


class TestResunet(ModelTester):
    name = "resunet"
