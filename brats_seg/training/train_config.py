"""The settings of a training run (:class:`TrainConfig`) and the checks made before any work."""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import DEFAULT_OVERLAP, PreprocessConfig, from_dict, read_yaml
from ..conventions import MODALITIES, get_scheme
from ..data.augmentation.augment_config import AugmentConfig
from ..data.augmentation.pipelines import check_augmentation
from ..data.subsets import ModalityDropout
from ..errors import BratsSegError, ConfigError
from ..inference.postprocess import PostprocessConfig, check_postprocess
from .losses import LOSSES
from .recipes import get_recipe, merge_settings
from .schedule import SCHEDULES

OPTIMIZERS = ("adamw", "sgd")
AMP_MODES = ("auto", "bf16", "fp16", "none")


def _applies_recipe(cls):
    """``cls(recipe=NAME, **given)``: every field not in ``given`` takes recipe NAME's value (else the default)."""
    init = cls.__init__
    names = [f.name for f in dataclasses.fields(cls)]

    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        given = {**dict(zip(names, args)), **kwargs}
        if given.get("recipe"):
            base = recipe_config(given["recipe"])
            given = {**{n: getattr(base, n) for n in names}, **given}
        init(self, **given)

    cls.__init__ = __init__
    return cls


@_applies_recipe
@dataclass(frozen=True)
class TrainConfig:
    """Every setting of a training run; saved as ``RUN/config.yaml`` and inside each checkpoint.

    ``data``: a raw dataset folder (preprocessed into ``cache`` or ``RUN/cache``) or a
    preprocessing cache; ``layout`` and ``label_scheme`` say how raw data is read (default: detected).
    The defaults are sized for a GPU (``nnunet`` base, 128^3 patches, 100 x 250 steps); on a CPU take
    ``recipe="cpu"`` or a ``tiny`` preset and small patches. ``recipe``: a named set of settings
    (:mod:`~brats_seg.training.recipes`; ``TrainConfig(recipe="nnunet", data=..., out=...)``):
    every field not given takes the recipe's value. ``recipe="nnunet"`` is nnU-Net v2's
    trainer as planned for BraTS; the defaults below are not.

    The defaults share with nnU-Net v2 (``nnUNetTrainer``): 250 steps per epoch, batch 2,
    poly decay with exponent 0.9, no warm-up, gradient-norm clip 12, deep supervision,
    5 folds, z-score inside the brain, region-based sigmoid Dice + BCE (nnU-Net's BraTS
    setting), a third of each batch forced onto tumor (``ceil(batch x 0.34)``: 1 of 2, as
    nnU-Net's 0.33), and the probabilities of rotation (0.2, +-30 degrees), scaling (0.2,
    0.7-1.4), noise, blur, brightness, gamma and mirroring, with elastic deformation off.
    They depart in: AdamW with lr 1e-3 and weight decay 1e-4 (nnU-Net: SGD lr 1e-2,
    Nesterov momentum 0.99, weight decay 3e-5), 100 epochs (nnU-Net: 1000), a fixed 128^3
    patch and the cases' own spacing (nnU-Net plans both from the data: 128^3 at 1 mm for
    BraTS), PyTorch's default weight initialisation (``init="he"``: nnU-Net's), batch Dice
    (``batch_dice``; nnU-Net's BraTS plan computes Dice per sample), bf16 autocast
    (nnU-Net: fp16), validation by whole-volume sliding-window Dice every ``val_every``
    epochs (nnU-Net: pseudo-Dice on 50 patches per epoch), and the ``monai`` augmentation
    pipeline (:mod:`~brats_seg.data.augmentation.pipelines`: no larger crop, channel-shared factors,
    an extra intensity shift, no contrast, low-resolution or inverted-gamma transform).
    Under any settings: the learning rate decays per step (nnU-Net: per epoch), a
    tumor-centred patch is centred on a voxel of a label drawn among those present
    (nnU-Net: of a region, WT, TC or ET), and ``workers`` data processes run (nnU-Net:
    ``min(12, CPU cores)``).

    ``epochs`` of ``steps_per_epoch`` steps, or ``time_budget`` minutes of training
    (then ``epochs`` is not used; ``warmup`` becomes a share of the budget, 0..1; see
    :mod:`brats_seg.training.schedule`). ``warmup`` is otherwise in epochs.
    ``output_scheme``: label scheme the checkpoint's predictions are written in; by default
    the training cases' scheme, and required when they mix schemes.
    ``encoder_lr_scale`` multiplies the learning rate of the encoder
    (``model.encoder_prefixes``) — e.g. 0.1 after ``init_from``.
    ``modality_dropout``/``subsets``: train for missing sequences (:mod:`brats_seg.data.subsets`); the
    checkpoint records the subsets trained, and prediction accepts a case with any of them.
    """

    data: str = ""
    out: str = ""
    recipe: str | None = None
    model: str = "nnunet"
    preset: str = "base"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    cache: str | None = None
    layout: str | None = None
    label_scheme: str | None = None
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    epochs: int = 100
    steps_per_epoch: int = 250
    time_budget: float | None = None
    """Minutes of training (validation and checkpoint writes included); ``None``: run ``epochs``."""
    patch: tuple[int, int, int] = (128, 128, 128)
    batch_size: int = 2
    loss: str = "dice_bce"
    batch_dice: bool = True
    """Dice over the whole batch (``True``) or per sample, then averaged (nnU-Net's BraTS plan)."""
    deep_supervision: bool = True
    init: str = "default"
    """Weight initialisation (:data:`~brats_seg.models.base.WEIGHT_INITS`): ``default`` (PyTorch's) or ``he``."""
    optimizer: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    momentum: float = 0.99
    schedule: str = "poly"
    warmup: float = 0.0
    grad_clip: float = 12.0
    amp: str = "auto"
    fold: int = 0
    folds: int = 5
    val_every: int = 1
    overlap: float = DEFAULT_OVERLAP
    seed: int = 0
    device: str | None = None
    workers: int = 2
    fg_fraction: float = 0.34
    augment: bool = True
    augmentation: AugmentConfig = field(default_factory=AugmentConfig)
    augment_on_device: bool = False
    """Augment whole batches on the training device (:mod:`brats_seg.data.augmentation.gpu_augment`) instead of per
    sample in the loader workers: for GPUs fed by few CPU cores."""
    in_memory: bool | None = None
    init_from: str | None = None
    """Initial weights: a checkpoint or weights file, or a model trained elsewhere (an nnU-Net v2 folder, a
    MONAI bundle: fine-tuned as it is, :mod:`~brats_seg.training.follow`)."""
    follow_init: bool = False
    """Build the ``init_from`` checkpoint's network, preprocessing, patch and loss (fine-tuning it as it is,
    :mod:`~brats_seg.training.follow`; ``--recipe finetune`` sets it)."""
    freeze_encoder_epochs: int = 0
    encoder_lr_scale: float = 1.0
    output_scheme: str | None = None
    outputs: tuple[str, ...] | None = None
    """Output groups of the network (``("WT", "TC", "ET", "RC")``, sigmoid regions, outer groups first), or
    ``("labels",)`` (softmax over background and the scheme's labels, ``loss="dice_ce"``); None: the output
    scheme's defaults (:func:`brats_seg.outputs.default_outputs`)."""
    channels: tuple[str, ...] | None = None
    """Input sequences in the network's order (set from an imported source); None: the data's."""
    modality_dropout: float = 0.0
    """Probability that a training sample keeps only a random subset of its channels (drawn uniformly
    from ``subsets``), the others set to the value a missing sequence gets in prediction (0 after
    normalization); 0: off."""
    subsets: tuple[str, ...] | None = None
    """Subsets dropout may keep, as ``"t1c+t2f"`` strings; None: every non-empty subset (15 for four)."""
    resume: bool = False
    progress: bool = True
    threads: int | None = None
    """torch intra-op CPU threads (``None``: torch's default). On a busy or small CPU, 1 per process
    avoids oversubscription with the loader workers (2-core machines: ~10x faster steps)."""
    postprocess: PostprocessConfig = field(default_factory=PostprocessConfig)
    """How predictions of this run's checkpoints are cleaned (recorded in them; ``brats-seg predict`` applies
    it unless its flags say otherwise), e.g. the cross-validated rule of ``--recipe cpu``."""


def check_config(cfg: TrainConfig) -> None:
    """Raise :class:`ConfigError` (one line) for a setting that cannot work; touches no data."""
    if not cfg.data:
        raise ConfigError("no data folder given")
    if not Path(cfg.data).is_dir():
        raise ConfigError(f"{cfg.data}: data folder not found")
    if not cfg.out:
        raise ConfigError("no run folder given (--out)")
    if cfg.init_from and not Path(cfg.init_from).is_file():
        from ..importers import source_kind

        if not Path(cfg.init_from).is_dir():
            raise ConfigError(f"{cfg.init_from}: --init-from file not found")
        if source_kind(cfg.init_from) is None:
            raise ConfigError(f"{cfg.init_from}: --init-from folder is neither an nnU-Net v2 trained model folder"
                              " nor a MONAI bundle")
    check_settings(cfg)


def check_settings(cfg: TrainConfig) -> None:
    """The checks of :func:`check_config` that need no file: names, ranges, the augmentation."""
    from ..importers import IMPORTED_NETWORKS
    from ..models.base import WEIGHT_INITS
    from ..models.registry import model_info

    if cfg.model not in IMPORTED_NETWORKS:  # an imported network is built from its source's own kwargs
        model_info(cfg.model)
    choices = {"loss": (cfg.loss, tuple(LOSSES)), "optimizer": (cfg.optimizer, OPTIMIZERS),
               "schedule": (cfg.schedule, SCHEDULES), "amp": (cfg.amp, AMP_MODES),
               "init": (cfg.init, tuple(WEIGHT_INITS))}
    for name, (value, valid) in choices.items():
        if value not in valid:
            raise ConfigError(f"unknown {name} {value!r}; valid: {', '.join(valid)}")
    if len(cfg.patch) != 3 or any(int(p) < 1 for p in cfg.patch):
        raise ConfigError(f"patch must be three positive sizes, got {list(cfg.patch)}")
    positive = {"epochs": cfg.epochs, "steps_per_epoch": cfg.steps_per_epoch, "batch_size": cfg.batch_size,
                "val_every": cfg.val_every, "lr": cfg.lr}
    if cfg.time_budget is not None:
        positive["time_budget"] = cfg.time_budget
    for name, value in positive.items():
        if not value > 0:
            raise ConfigError(f"{name} must be positive, got {value}")
    if cfg.time_budget is not None and not 0 <= cfg.warmup < 1:
        raise ConfigError(f"with a time budget, warmup is the share of the budget spent warming up (0 <= warmup < 1),"
                          f" got {cfg.warmup}")
    if cfg.folds > 1 and not 0 <= cfg.fold < cfg.folds:
        raise ConfigError(f"fold must be in 0..{cfg.folds - 1}, got {cfg.fold}")
    if not 0 <= cfg.fg_fraction <= 1:
        raise ConfigError(f"fg_fraction must be in [0, 1], got {cfg.fg_fraction}")
    if cfg.output_scheme is not None:
        get_scheme(cfg.output_scheme)
    if cfg.outputs is not None:
        check_outputs(cfg)
    ModalityDropout.from_config(MODALITIES, cfg.modality_dropout, cfg.subsets)  # names and p; channels checked later
    check_augmentation(cfg.augmentation)
    try:
        check_postprocess(cfg.postprocess)
    except BratsSegError as e:
        raise ConfigError(str(e)) from None


def check_outputs(cfg: TrainConfig) -> None:
    """``outputs``: known group names (in the output scheme when given), trainable with ``loss``."""
    from ..conventions import GROUP_NAMES
    from ..outputs import region_outputs

    if tuple(str(g).upper() for g in cfg.outputs or ()) == ("LABELS",):
        if cfg.loss != "dice_ce":
            raise ConfigError("--outputs labels (softmax over the scheme's labels) trains with --loss dice_ce")
        return
    unknown = [g for g in cfg.outputs or () if str(g).upper() not in GROUP_NAMES]
    if unknown or not cfg.outputs:
        raise ConfigError(f"unknown output group(s) {', '.join(map(str, unknown)) or '(none given)'};"
                          f" valid: {', '.join(GROUP_NAMES)}")
    if cfg.output_scheme is not None:
        try:
            region_outputs(cfg.output_scheme, cfg.outputs)
        except BratsSegError as e:
            raise ConfigError(f"--outputs: {e}") from None
    if cfg.loss != "dice_bce" and tuple(str(g).upper() for g in cfg.outputs) != ("WT", "TC", "ET"):
        raise ConfigError(f"--outputs {' '.join(cfg.outputs)} train with --loss dice_bce (sigmoid regions);"
                          f" {cfg.loss} trains WT TC ET only")


def recipe_config(name: str) -> TrainConfig:
    """The settings of recipe ``name`` over the defaults (no data or run folder), checked like any config:
    a bad setting raises :class:`ConfigError` naming the recipe file."""
    recipe = get_recipe(name)
    cfg = from_dict(TrainConfig, dict(recipe.settings), source=str(recipe.path))
    try:
        check_settings(cfg)
    except ConfigError as e:
        raise ConfigError(f"{recipe.path}: {e}") from None
    return cfg


def config_from_dict(data: dict | None, *, source: str = "config") -> TrainConfig:
    """A :class:`TrainConfig` from plain values; with a ``recipe`` key, over that recipe's settings
    (nested blocks such as ``augmentation`` merge key by key)."""
    data = dict(data or {})
    if data.get("recipe"):
        data = merge_settings(get_recipe(data["recipe"]).settings, data)
    return from_dict(TrainConfig, data, source=source)


def load_config(path: str | Path) -> TrainConfig:
    """A :class:`TrainConfig` from a YAML file (``yaml.safe_load``; a ``recipe:`` key applies that recipe)."""
    return config_from_dict(read_yaml(path), source=str(path))


def load_run_config(run: str | Path) -> TrainConfig:
    """The ``config.yaml`` of an existing run folder."""
    path = Path(run) / "config.yaml"
    if not path.is_file():
        raise ConfigError(f"{run}: no config.yaml; not a run folder")
    return load_config(path)


__all__ = ["TrainConfig", "OPTIMIZERS", "AMP_MODES", "check_config", "check_settings", "load_run_config", "load_config",
           "config_from_dict", "recipe_config"]
