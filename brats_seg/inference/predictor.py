"""Predict raw scans with one or more checkpoints: the Python API under ``brats-seg predict``.

Per case (:meth:`Predictor.predict`):

1. channels are matched to the checkpoint's by NAME (a missing one is a :class:`CaseError`);
2. the case is preprocessed as the checkpoint was trained (crop to the brain's
   bounding box, normalization, optional resampling; ``data.preprocess``);
3. every member network runs over the cropped volume with the sliding window
   (:mod:`.sliding_window`), under each test-time mirror (:mod:`.tta`);
4. sigmoid region probabilities (WT, TC, ET) are averaged over mirrors and members
   with optional weights (:mod:`.ensemble`, EMMA), restored to the input's grid;
5. thresholded, cleaned and turned into labels with ET ⊂ TC ⊂ WT (:mod:`.postprocess`).

Members with different preprocessing are grouped: each distinct preprocessing is
done once per case and the group's probabilities are restored and merged.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..checkpoint import REQUIRED_KEYS, load_checkpoint, model_from_checkpoint, preprocessing_of
from ..config import PreprocessConfig, to_dict
from ..conventions import REGIONS, canonical_modality, get_scheme
from ..data.cases import CaseVolumes
from ..devices import pick_device
from ..errors import BratsSegError, CaseError, CheckpointError
from .activations import get_activation
from .ensemble import UNCERTAINTY_KINDS, ProbabilityAverager, binary_entropy, normalized_weights
from .postprocess import PostprocessConfig, probabilities_to_labels
from .sliding_window import sliding_window
from .tta import mirror_combinations, mirrored


@dataclass
class Member:
    """One ensemble member: a network in eval mode and what it needs to run.

    ``channels``: input channel names in the network's order; ``window``: sliding-window
    size (the training patch by default); ``weight``: share in the ensemble average.
    """

    network: torch.nn.Module
    channels: tuple[str, ...]
    preprocessing: PreprocessConfig
    window: tuple[int, int, int]
    label_scheme: str = "brats2021"
    regions: tuple[str, ...] = REGIONS
    name: str = "network"
    weight: float = 1.0
    model: dict[str, Any] = field(default_factory=dict)
    """The checkpoint's ``model`` entry (registry name and kwargs), for the record."""
    activation: str = "sigmoid"
    """How outputs become region probabilities (:mod:`brats_seg.inference.activations`)."""


@dataclass
class Prediction:
    """``labels`` (H, W, D) uint8 in ``info["label_scheme"]``; ``probabilities`` (3, H, W, D)
    float32 (WT, TC, ET); ``uncertainty`` (3, H, W, D) float32 or None; ``info``: what was done."""

    labels: np.ndarray
    probabilities: np.ndarray
    uncertainty: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)


def _canonical(names: Sequence[str]) -> tuple[str, ...]:
    out = []
    for n in names:
        try:
            out.append(canonical_modality(n))
        except BratsSegError:
            out.append(str(n))  # unknown to us: a case can only match it by the same name
    return tuple(out)


def _round_up(n: int, divisor: int) -> int:
    return -(-int(n) // divisor) * divisor


def member_from_checkpoint(source: str | Path | Mapping[str, Any], window: Sequence[int] | None = None) -> Member:
    """Load a checkpoint (path, read with ``weights_only=True``; or an already loaded dict)."""
    if isinstance(source, Mapping):
        missing = [k for k in REQUIRED_KEYS if k not in source]
        if missing:
            raise CheckpointError(f"checkpoint dict is not a brats_seg checkpoint (missing {', '.join(missing)})")
        ckpt, name = source, str(source["model"].get("name", "network"))
    else:
        ckpt, name = load_checkpoint(source), str(source)
    network = model_from_checkpoint(ckpt)
    divisor = int(getattr(network, "size_divisor", 1))
    win = tuple(_round_up(w, divisor) for w in (window or ckpt["patch_size"]))
    if len(win) != 3:
        raise CheckpointError(f"{name}: window/patch size must have 3 sides, got {list(win)}")
    activation = str(ckpt.get("provenance", {}).get("output_activation", "sigmoid"))
    get_activation(activation)  # validates
    return Member(network, _canonical(ckpt["channels"]), preprocessing_of(ckpt), win, str(ckpt["label_scheme"]),
                  tuple(ckpt["regions"]), name, model=dict(ckpt["model"]), activation=activation)


class Predictor:
    """Segment cases with an ensemble of checkpoints.

    ``checkpoints``: paths or loaded checkpoint dicts (any mix of architectures/folds).
    ``device``: default CUDA if available. ``overlap``: sliding-window overlap.
    ``tta``: number of mirror combinations (0 or 1 off, 8 all). ``weights``: per-checkpoint
    ensemble weights (default equal). ``amp``: bf16 autocast on CUDA (ignored on CPU).
    ``compile``: ``torch.compile`` each network. ``uncertainty``: None, "variance" (across
    members x mirrors) or "entropy" (of the averaged probability). ``label_scheme``: of the
    output labels (default: the case's, else the checkpoint's). ``window``: override the
    checkpoint's patch size. ``channels_last``: run the networks in ``channels_last_3d``
    memory format (faster 3-D convolutions with cuDNN and with oneDNN on CPU: about 1.4x for
    SegResNet on 2 CPU cores, measured with benchmarks/bench_predict.py).
    """

    def __init__(self, checkpoints: Sequence[str | Path | Mapping[str, Any]], device: str | torch.device | None = None,
                 overlap: float = 0.5, tta: int = 0, batch_size: int = 4, weights: Sequence[float] | None = None,
                 amp: bool = True, compile: bool = False, postprocess: PostprocessConfig | None = None,
                 uncertainty: str | None = None, label_scheme: str | None = None,
                 window: Sequence[int] | None = None, channels_last: bool = True):
        if not checkpoints:
            raise BratsSegError("no checkpoint given")
        members = [c if isinstance(c, Member) else member_from_checkpoint(c, window) for c in checkpoints]
        self._setup(members, device, overlap, tta, batch_size, weights, amp, compile, postprocess, uncertainty,
                    label_scheme, channels_last)

    @classmethod
    def from_members(cls, members: Sequence[Member], **kwargs: Any) -> Predictor:
        """A predictor over networks already in memory (e.g. during training)."""
        return cls(list(members), **kwargs)

    def _setup(self, members, device, overlap, tta, batch_size, weights, amp, compile, postprocess, uncertainty,
               label_scheme, channels_last) -> None:
        first = members[0]
        for m in members[1:]:
            if set(m.channels) != set(first.channels):
                raise CheckpointError(f"ensemble members need the same input channels: {m.name} has "
                                      f"{', '.join(m.channels)}, {first.name} has {', '.join(first.channels)}")
            if tuple(m.regions) != tuple(first.regions):
                raise CheckpointError(f"ensemble members predict different regions: {m.name} {list(m.regions)},"
                                      f" {first.name} {list(first.regions)}")
        if tuple(first.regions) != REGIONS:
            raise CheckpointError(f"{first.name}: predicts regions {list(first.regions)}, expected {list(REGIONS)}")
        if uncertainty is not None and uncertainty not in UNCERTAINTY_KINDS:
            raise BratsSegError(f"unknown uncertainty {uncertainty!r}; valid: {', '.join(UNCERTAINTY_KINDS)}")
        if label_scheme is not None:
            get_scheme(label_scheme)
        mirror_combinations(tta)  # validates
        if not 0 <= overlap < 1:
            raise BratsSegError(f"overlap must be in [0, 1), got {overlap}")
        self.device = pick_device(device)
        cuda = self.device.type == "cuda"
        for m, w in zip(members, normalized_weights(weights, len(members))):
            m.weight = w
            m.network = m.network.to(self.device).eval()
            if channels_last:
                m.network = m.network.to(memory_format=torch.channels_last_3d)
            if compile:
                m.network = torch.compile(m.network)
        self.members = list(members)
        self.channels = first.channels
        self.overlap, self.tta, self.batch_size = float(overlap), int(tta), int(batch_size)
        self.amp = bool(amp) and cuda
        self.channels_last = bool(channels_last)
        self.compile = bool(compile)
        self.postprocess = postprocess or PostprocessConfig()
        self.uncertainty = uncertainty
        self.label_scheme = label_scheme
        groups: dict[str, list[Member]] = {}
        for m in self.members:
            groups.setdefault(json.dumps(to_dict(m.preprocessing), sort_keys=True), []).append(m)
        self._groups = [(g[0].preprocessing, g) for g in groups.values()]

    # ------------------------------------------------------------------ settings

    def settings(self) -> dict[str, Any]:
        """Every setting that affects the result (JSON-able), for the sidecar."""
        return {
            "members": [{"name": m.name, "model": m.model, "channels": list(m.channels), "window": list(m.window),
                         "weight": m.weight, "preprocessing": to_dict(m.preprocessing),
                         "label_scheme": m.label_scheme} for m in self.members],
            "device": str(self.device), "overlap": self.overlap, "tta": self.tta,
            "mirror_axes": [list(a) for a in mirror_combinations(self.tta)],
            "batch_size": self.batch_size, "amp_bf16": self.amp, "channels_last_3d": self.channels_last,
            "compile": self.compile, "uncertainty": self.uncertainty, "postprocess": to_dict(self.postprocess),
            "sigma_scale": 0.125, "blending": "gaussian",
        }

    # ------------------------------------------------------------------ prediction

    def _select_channels(self, vol: CaseVolumes) -> CaseVolumes:
        have = _canonical(vol.channels)
        missing = [c for c in self.channels if c not in have]
        if missing:
            raise CaseError(f"case {vol.case_id}: the checkpoint needs channel(s) {', '.join(missing)};"
                            f" the case has {', '.join(vol.channels) or 'none'}")
        if have == self.channels:
            return vol
        index = [have.index(c) for c in self.channels]
        return CaseVolumes(vol.case_id, vol.image[index], self.channels, vol.label, vol.reference, vol.label_scheme)

    def _run_member(self, m: Member, x: torch.Tensor, into: ProbabilityAverager) -> None:
        n_mirror = len(mirror_combinations(self.tta))

        def probabilities(t: torch.Tensor) -> torch.Tensor:
            logits = sliding_window(t, m.network, m.window, self.overlap, self.batch_size, amp=self.amp,
                                    channels_last=self.channels_last)
            return get_activation(m.activation)(logits)

        for p in mirrored(probabilities, x, self.tta):
            into.add(p[0], m.weight / n_mirror)

    @torch.inference_mode()
    def predict(self, vol: CaseVolumes, label_scheme: str | None = None) -> Prediction:
        """Segment one loaded case; see the module docstring for the steps."""
        from ..data.geometry import restore
        from ..data.preprocess import preprocess_volumes

        t0 = time.perf_counter()
        vol = self._select_channels(vol)
        vol = CaseVolumes(vol.case_id, vol.image, vol.channels, None, vol.reference, vol.label_scheme)
        track = self.uncertainty == "variance"
        total = ProbabilityAverager(track_variance=track)
        props = None
        for cfg, members in self._groups:
            pre = preprocess_volumes(vol, cfg)
            props = pre.properties
            x = torch.from_numpy(np.ascontiguousarray(pre.image))[None].to(self.device)
            group = ProbabilityAverager(track_variance=track)
            for m in members:
                idx = [self.channels.index(c) for c in m.channels]
                xm = x if idx == list(range(len(self.channels))) else x[:, idx]
                self._run_member(m, xm, group)
            total.absorb(*(None if t is None else restore(t.cpu().numpy(), pre.properties, order=1)
                           for t in (group.total, group.squares)), weight=group.weight)
        probs = total.mean()
        unc = None
        if self.uncertainty == "variance":
            unc = total.variance().numpy()
        elif self.uncertainty == "entropy":
            unc = binary_entropy(probs).numpy()
        probs = probs.numpy()
        scheme = label_scheme or self.label_scheme or vol.label_scheme or self.members[0].label_scheme
        labels, record = probabilities_to_labels(probs, scheme, self.postprocess)
        info = {"case_id": vol.case_id, "label_scheme": get_scheme(scheme).name, "channels": list(self.channels),
                "bbox": props["bbox"] if props else None, "postprocess_record": record,
                "seconds": round(time.perf_counter() - t0, 3)}
        return Prediction(labels, probs, unc, info)

    def predict_volumes(self, vol: CaseVolumes) -> tuple[np.ndarray, np.ndarray]:
        """``(labels (H, W, D) uint8, probabilities (3, H, W, D) float32)`` for one loaded case."""
        pred = self.predict(vol)
        return pred.labels, pred.probabilities
