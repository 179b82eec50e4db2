"""From region probabilities to a BraTS label map, with optional cleaning rules.

Steps, in order, each switchable in :class:`PostprocessConfig` (and recorded in
the prediction sidecar):

1. threshold the sigmoid probabilities of the nested regions WT, TC, ET;
2. remove connected components (26-connected) of the whole tumor smaller than
   ``min_component_voxels``; TC and ET voxels inside a removed component go too;
   then those smaller than ``wt_component_fraction`` times the largest (1: keep only
   the largest, the rule nnU-Net's postprocessing tries per region and keeps when
   cross-validation says it helps; Isensee et al., Nature Methods 2021);
3. if the total enhancing-tumor volume is below ``et_min_voxels``, relabel it as
   tumor core (necrosis / non-enhancing core): the BraTS 2020 rule of nnU-Net
   (Isensee et al., "nnU-Net for Brain Tumor Segmentation", BrainLes 2020), which
   tuned the threshold by cross-validation. Worth it under the legacy scoring,
   where a case without ET scores Dice 1 only if no ET is predicted;
4. regions to labels with ET ⊂ TC ⊂ WT enforced (:func:`conventions.regions_to_labels`).

Models with other outputs (:mod:`brats_seg.outputs`): step 1 thresholds every group, nesting
is enforced as the scheme nests them, step 2 applies to WT (every group inside it follows), or
to GTV for a one-region model, step 3 to ET where TC is an output too; other groups (RC, CC,
a PED model's ED and NETC) are kept as thresholded. Step 4 is the outputs' write-back
(:meth:`Outputs.write_back`). Label (softmax) outputs are written back by argmax, without rules.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from ..config import from_dict
from ..conventions import REGIONS, LabelScheme, get_scheme, regions_to_labels
from ..errors import BratsSegError
from ..outputs import Outputs, nested


@dataclass(frozen=True)
class PostprocessConfig:
    """``threshold``: probability above which a region is present. ``min_component_voxels``:
    whole-tumor components smaller than this are removed (0: off). ``wt_component_fraction``:
    whole-tumor components smaller than this fraction of the largest are removed (0: off, 1:
    only the largest stays). ``et_min_voxels``: ET volumes below this become tumor core (0: off).

    A checkpoint can record the rule its predictions get (``TrainConfig.postprocess``, e.g. from
    a recipe): :class:`~brats_seg.inference.predictor.Predictor` applies it unless told otherwise."""

    threshold: float = 0.5
    min_component_voxels: int = 0
    et_min_voxels: int = 0
    wt_component_fraction: float = 0.0


def check_postprocess(cfg: PostprocessConfig) -> None:
    """Raise :class:`BratsSegError` (one line) for a setting out of range."""
    if not 0 < cfg.threshold < 1:
        raise BratsSegError(f"postprocess threshold must be in (0, 1), got {cfg.threshold}")
    if cfg.min_component_voxels < 0 or cfg.et_min_voxels < 0:
        raise BratsSegError("postprocess voxel counts must be >= 0")
    if not 0 <= cfg.wt_component_fraction <= 1:
        raise BratsSegError(f"postprocess wt_component_fraction must be in [0, 1], got {cfg.wt_component_fraction}")


def resolve_postprocess(given: PostprocessConfig | Mapping[str, Any] | None,
                        recorded: Sequence[Mapping[str, Any] | None], names: Sequence[str]) -> PostprocessConfig:
    """The rule a prediction uses: ``given`` when it is a :class:`PostprocessConfig`; else the rule the
    checkpoints ``recorded`` (one entry per member, ``None``: none recorded, the defaults), with the fields
    of a ``given`` mapping changed. Members recording different rules need a full ``given`` config."""
    if isinstance(given, PostprocessConfig):
        check_postprocess(given)
        return given
    rules = [from_dict(PostprocessConfig, dict(r or {}), source=f"{n}: postprocess") for r, n in zip(recorded, names)]
    if any(r != rules[0] for r in rules):  # compared as rules: none recorded is the defaults
        raise BratsSegError(f"the checkpoints record different postprocessing ({', '.join(names)}); give every"
                            " postprocessing option explicitly")
    cfg = dataclasses.replace(rules[0] if rules else PostprocessConfig(), **dict(given or {}))
    check_postprocess(cfg)
    return cfg


def remove_small_components(mask: np.ndarray, min_voxels: int = 0, fraction: float = 0.0) -> np.ndarray:
    """``mask`` (H, W, D) bool without its 26-connected components smaller than ``min_voxels``
    or than ``fraction`` times the largest component."""
    if (min_voxels <= 0 and fraction <= 0) or not mask.any():
        return mask
    components, n = ndimage.label(mask, structure=np.ones((3, 3, 3), bool))
    sizes = np.bincount(components.ravel(), minlength=n + 1)
    sizes[0] = 0
    keep = (sizes >= min_voxels) & (sizes >= fraction * sizes.max())
    keep[0] = False
    return keep[components]


def postprocess_regions(regions: np.ndarray, cfg: PostprocessConfig) -> tuple[np.ndarray, dict]:
    """Clean nested region masks ``(3, H, W, D)`` bool (WT, TC, ET).

    Returns the cleaned masks (nesting enforced) and a record of what each rule changed.
    """
    wt = regions[0].astype(bool)
    tc = regions[1].astype(bool) & wt
    et = regions[2].astype(bool) & tc
    record: dict = {}
    if cfg.min_component_voxels > 0 or cfg.wt_component_fraction > 0:
        kept = remove_small_components(wt, cfg.min_component_voxels, cfg.wt_component_fraction)
        record["removed_wt_voxels"] = int(wt.sum() - kept.sum())
        wt, tc, et = kept, tc & kept, et & kept
    if cfg.et_min_voxels > 0:
        n_et = int(et.sum())
        relabel = 0 < n_et < cfg.et_min_voxels
        record["et_voxels"] = n_et
        record["et_relabeled_as_core"] = relabel
        if relabel:
            et = np.zeros_like(et)  # those voxels stay TC (and WT): necrosis / non-enhancing core
    return np.stack([wt, tc, et]), record


def postprocess_groups(masks: np.ndarray, outputs: Outputs, cfg: PostprocessConfig) -> tuple[np.ndarray, dict]:
    """Clean group masks ``(G, H, W, D)`` bool of region ``outputs`` (rules per group, module docstring)."""
    groups, scheme = outputs.groups, get_scheme(outputs.scheme)
    masks = nested(masks, groups, scheme)
    record: dict = {}
    outer = "WT" if "WT" in groups else "GTV" if "GTV" in groups else None
    if outer and (cfg.min_component_voxels > 0 or cfg.wt_component_fraction > 0):
        i = groups.index(outer)
        kept = remove_small_components(masks[i], cfg.min_component_voxels, cfg.wt_component_fraction)
        record[f"removed_{outer.lower()}_voxels"] = int(masks[i].sum() - kept.sum())
        for j, g in enumerate(groups):
            if j == i or scheme.groups[g] <= scheme.groups[outer]:
                masks[j] &= kept
    elif cfg.min_component_voxels > 0 or cfg.wt_component_fraction > 0:
        record["component_rule"] = "not applied (no WT or GTV output)"
    if cfg.et_min_voxels > 0 and {"ET", "TC"} <= set(groups):
        et = groups.index("ET")
        n_et = int(masks[et].sum())
        record["et_voxels"], record["et_relabeled_as_core"] = n_et, 0 < n_et < cfg.et_min_voxels
        if record["et_relabeled_as_core"]:
            masks[et] = False  # those voxels stay TC (and WT)
    elif cfg.et_min_voxels > 0:
        record["et_rule"] = "not applied (needs ET and TC outputs)"
    return masks, record


def probabilities_to_labels(probabilities: np.ndarray, scheme: str | LabelScheme | Outputs,
                            cfg: PostprocessConfig | None = None) -> tuple[np.ndarray, dict]:
    """Group probabilities ``(G, H, W, D)`` -> label map ``(H, W, D)`` uint8, and the record. ``scheme``: the
    :class:`Outputs` they are (a scheme: its WT/TC/ET regions, ``G = 3``)."""
    cfg = cfg or PostprocessConfig()
    if not isinstance(scheme, Outputs):
        regions, record = postprocess_regions(probabilities > cfg.threshold, cfg)
        return regions_to_labels(regions, scheme), record
    outputs = scheme
    if outputs.kind == "labels":
        if cfg != dataclasses.replace(PostprocessConfig(), threshold=cfg.threshold):
            raise BratsSegError("postprocessing rules apply to region outputs; this model's outputs are labels"
                                " (softmax), written back by argmax")
        return outputs.write_back(np.argmax(probabilities, axis=0)), {}
    if outputs.groups == REGIONS:  # the nested regions: the rules (and record) as ever
        masks, record = postprocess_regions(probabilities > cfg.threshold, cfg)
    else:
        masks, record = postprocess_groups(probabilities > cfg.threshold, outputs, cfg)
    return outputs.write_back(masks), record
