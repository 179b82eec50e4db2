"""Prediction of raw scans: sliding window, test-time mirroring, ensembles, postprocessing, export.

Modules: ``sliding_window`` (the engine), ``backends`` (torch, ONNX Runtime, OpenVINO
runners the engine feeds), ``members`` (checkpoint -> network, channels, training spacing),
``tta`` (mirror combinations), ``ensemble``
(probability averaging, uncertainty), ``postprocess`` (regions -> labels, cleaning rules),
``predictor`` (:class:`~.predictor.Predictor`: one case, any number of checkpoints),
``batch`` (many cases, output files, sharding under torchrun), ``export`` (TorchScript/ONNX).
"""
