"""Prediction of raw scans: sliding window, test-time mirroring, ensembles, postprocessing, export.

Modules: ``sliding_window`` (the engine), ``tta`` (mirror combinations), ``ensemble``
(probability averaging, uncertainty), ``postprocess`` (regions -> labels, cleaning rules),
``predictor`` (:class:`~.predictor.Predictor`: one case, any number of checkpoints),
``batch`` (many cases, output files, sharding under torchrun), ``export`` (TorchScript/ONNX).
"""
