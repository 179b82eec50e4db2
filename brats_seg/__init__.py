"""brats_seg: 3-D brain tumor segmentation on BraTS multi-modal MRI.

The public API is imported lazily (``import brats_seg`` stays cheap)::

    import brats_seg as bs
    cases = bs.discover_cases("data/brats2021")
    vol = bs.load_case(cases[0])            # vol.image: (4, H, W, D) float32
    model = bs.build_model("unet3d", preset="tiny")
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_API: dict[str, str] = {
    "discover_cases": "brats_seg.data.reading.layouts",
    "load_case": "brats_seg.data.reading.volumes",
    "Case": "brats_seg.data.reading.cases",
    "check_case": "brats_seg.data.reading.checks",
    "check_dataset": "brats_seg.data.reading.checks",
    "preprocess_case": "brats_seg.data.preprocessing.preprocess",
    "preprocess_dataset": "brats_seg.data.preprocessing.preprocess",
    "load_cached": "brats_seg.data.preprocessing.cache",
    "restore": "brats_seg.data.preprocessing.grid",
    "synthesize_dataset": "brats_seg.data.synth",
    "build_model": "brats_seg.models.registry",
    "list_models": "brats_seg.models.registry",
    "register_model": "brats_seg.models.registry",
    "load_checkpoint": "brats_seg.checkpoint",
    "save_checkpoint": "brats_seg.checkpoint",
    "Predictor": "brats_seg.inference.predictor",
    "PredictorConfig": "brats_seg.inference.predictor_config",
    "sliding_window": "brats_seg.inference.sliding_window",
    "evaluate_case": "brats_seg.evaluation.metrics",
    "evaluate_folder": "brats_seg.evaluation.report",
    "train": "brats_seg.training.trainer",
    "TrainConfig": "brats_seg.training.train_config",
    "list_recipes": "brats_seg.training.recipes",
    "PreprocessConfig": "brats_seg.config",
    "search": "brats_seg.training.search",
    "SearchConfig": "brats_seg.training.search",
    "load_genotype": "brats_seg.models.nas.genotype",
    "run_quickstart": "brats_seg.experiments.quickstart",
    "QuickstartConfig": "brats_seg.experiments.quickstart",
    "run_experiment": "brats_seg.experiments.catalog",
    "prepare_case": "brats_seg.prepare",
    "segment_case": "brats_seg.prepare",
    "scan_set": "brats_seg.prepare",
    "scan_sources": "brats_seg.prepare",
    "PrepareConfig": "brats_seg.prepare",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'brats_seg' has no attribute {name!r}")
