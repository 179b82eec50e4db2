"""Predict raw scans with one or more checkpoints: the Python API under ``brats-seg predict``.

Per case (:meth:`Predictor.predict`):

1. channels are matched to the checkpoint's by NAME; a case lacking some is given to each member
   as a subset it was trained for, the rest filled (:mod:`.missing_sequences`; a case no member can take
   is a :class:`CaseError`);
2. the case is preprocessed as the checkpoint was trained: crop to the brain's bounding
   box, resample to the training spacing (:mod:`.members`), normalize (``data.preprocessing.preprocess``);
3. every member network runs over the cropped volume with the sliding window
   (:mod:`.sliding_window`) on its back-end (:mod:`.backends`), under each test-time
   mirror (:mod:`.tta`);
4. region probabilities (WT, TC, ET) are averaged over mirrors and members with optional
   weights (:mod:`.ensemble`, EMMA) and resampled back (linear) onto the cropped input grid;
5. thresholded, cleaned and turned into labels with ET ⊂ TC ⊂ WT (:mod:`.postprocess`),
   and the uint8 labels pasted into the input's grid.

Every float buffer covers the brain's box only; the whole-grid probability map is made
only when asked for (:attr:`Prediction.probabilities`). Members with different
preprocessing or sequence subsets are grouped: each distinct pair is preprocessed once per case.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import to_dict
from ..conventions import get_scheme
from ..data.reading.cases import CaseVolumes
from ..data.reading.intensity import brain_mask, far_outside
from ..data.subsets import MISSING_VALUE, subset_name
from ..devices import pick_device
from ..errors import BratsSegError
from ..outputs import Outputs
from .activations import get_activation
from .backends import BACKENDS, host_threads, make_runner, resolve_precision
from .confidence import assess
from .ensemble import (
    UNCERTAINTY_KINDS,
    ProbabilityAverager,
    binary_entropy,
    check_variance,
    common_outputs,
    normalized_weights,
    probability_samples,
)
from .members import Member, canonical_channels, member_from_checkpoint
from .missing_sequences import MemberInput, SequencePlan, plan_sequences, union_channels
from .postprocess import PostprocessConfig, probabilities_to_labels, resolve_postprocess
from .predictor_config import PredictorConfig, predictor_config
from .sliding_window import sliding_window
from .tta import mirror_combinations, mirrored

__all__ = ["Member", "Prediction", "Predictor", "PredictorConfig", "member_from_checkpoint", "paste"]


def paste(array: np.ndarray, box: Sequence[Sequence[int]], shape: Sequence[int]) -> np.ndarray:
    """``array`` ``(..., h, w, d)`` placed at ``box`` (``[[lo, hi]] x 3``) in zeros of spatial ``shape``."""
    out = np.zeros((*array.shape[:-3], *shape), dtype=array.dtype)
    out[(Ellipsis, *(slice(lo, hi) for lo, hi in box))] = array
    return out


@dataclass
class Prediction:
    """One segmented case.

    ``labels``: (H, W, D) uint8 in ``info["label_scheme"]`` on the input's grid. Group
    probabilities and uncertainty live on the brain's ``box`` (``[[lo, hi]] x 3`` input voxels):
    ``box_probabilities`` (G, h, w, d) float32 (one per output group, ``info["model_outputs"]``; WT, TC, ET
    by default), ``box_uncertainty`` or None.
    ``info``: what was done (sidecar).
    """

    labels: np.ndarray
    box_probabilities: np.ndarray
    box: list[list[int]]
    box_uncertainty: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def probabilities(self) -> np.ndarray:
        """(3, H, W, D) float32 on the input's grid (0 outside the box); a new array on each access."""
        return paste(self.box_probabilities, self.box, self.labels.shape)

    @property
    def uncertainty(self) -> np.ndarray | None:
        """(3, H, W, D) float32 on the input's grid, or None; a new array on each access."""
        return None if self.box_uncertainty is None else paste(self.box_uncertainty, self.box, self.labels.shape)


def _union(boxes: Sequence[Sequence[Sequence[int]]]) -> list[list[int]]:
    return [[min(b[a][0] for b in boxes), max(b[a][1] for b in boxes)] for a in range(3)]


def _within(box: Sequence[Sequence[int]], outer: Sequence[Sequence[int]]) -> list[list[int]]:
    return [[lo - o, hi - o] for (lo, hi), (o, _) in zip(box, outer)]


class Predictor:
    """Segment cases with an ensemble of checkpoints.

    ``checkpoints``: paths or loaded checkpoint dicts (any mix of architectures/folds), or :class:`Member`s.
    ``config``: a :class:`~.predictor_config.PredictorConfig` (device, overlap, tta, back-end, ...); keyword
    arguments change fields of it (``Predictor(paths, tta=8)``), an unknown name is an error.

    Each :class:`Prediction`'s ``info`` holds ``intensity`` (the case's raw statistics against the
    members' training ranges; a one-line warning on stderr when far outside) and ``confidence``
    (disagreement and plausibility scores, the verdict; :mod:`.confidence`).
    """

    def __init__(self, checkpoints: Sequence[str | Path | Mapping[str, Any] | Member],
                 config: PredictorConfig | None = None, **changes: Any):
        self.config = cfg = predictor_config(config, **changes)
        if not checkpoints:
            raise BratsSegError("no checkpoint given")
        members = [c if isinstance(c, Member) else member_from_checkpoint(c, cfg.window) for c in checkpoints]
        self._check(members, cfg)
        self.device = pick_device(cfg.device)
        self.overlap, self.tta, self.batch_size = float(cfg.overlap), int(cfg.tta), int(cfg.batch_size)
        self.backend, self.precision = cfg.backend, resolve_precision(cfg.precision, self.device)
        self.channels_last, self.compile = bool(cfg.channels_last) and cfg.backend == "torch", bool(cfg.compile)
        self.postprocess = resolve_postprocess(cfg.postprocess, [m.postprocess for m in members],
                                               [m.name for m in members])
        self.uncertainty, self.label_scheme, self.zero_fill = cfg.uncertainty, cfg.label_scheme, bool(cfg.zero_fill)
        self.members = list(members)
        self.outputs, self._select, self.note = common_outputs(members)
        self.warn = warn = bool(cfg.warn)
        if self.note and warn:
            print(f"brats-seg: note: {self.note}", file=sys.stderr)
        self.channels = union_channels(members)  # members may take different sets (.missing_sequences)
        self._runners = [self._prepare(m, w) for m, w in zip(members, normalized_weights(cfg.weights, len(members)))]
        unranged = [m.name for m in self.members if m.intensity_range is None]
        self._range_note = (f"brats-seg: note: {', '.join(unranged)} record(s) no training intensity range (an"
                            " older checkpoint, or a network not trained by brats-seg train): case intensities are"
                            " not compared with the training cases'") if unranged and warn else None
        unknown = [m.name for m in self.members if m.spacing_unknown]
        if unknown and warn:
            print(f"brats-seg: warning: {', '.join(unknown)} record(s) no training spacing (format-1 checkpoint):"
                  " each case is predicted on its own grid, not resampled", file=sys.stderr)

    @classmethod
    def from_members(cls, members: Sequence[Member], config: PredictorConfig | None = None,
                     **changes: Any) -> Predictor:
        """A predictor over networks already in memory (e.g. during training)."""
        return cls(list(members), config, **changes)

    @staticmethod
    def _check(members: Sequence[Member], cfg: PredictorConfig) -> None:
        if cfg.uncertainty is not None and cfg.uncertainty not in UNCERTAINTY_KINDS:
            raise BratsSegError(f"unknown uncertainty {cfg.uncertainty!r}; valid: {', '.join(UNCERTAINTY_KINDS)}")
        check_variance(members, cfg.tta, cfg.uncertainty)
        if cfg.backend not in BACKENDS:
            raise BratsSegError(f"unknown backend {cfg.backend!r}; valid: {', '.join(BACKENDS)}")
        if cfg.compile and cfg.backend != "torch":
            raise BratsSegError(f"--compile applies to the torch back-end, not {cfg.backend}")
        outputs, _, _ = common_outputs(members)
        if cfg.label_scheme is not None:
            outputs.for_scheme(cfg.label_scheme)  # a scheme that cannot express every output is refused
        mirror_combinations(cfg.tta)  # validates
        if not 0 <= cfg.overlap < 1:
            raise BratsSegError(f"overlap must be in [0, 1), got {cfg.overlap}")

    def _prepare(self, m: Member, weight: float):
        m.weight = weight
        # imported models run contiguous, as their own code does: channels_last_3d convolutions round
        # differently (0.2 % of a random SegResNet's labels moved against MONAI's pipeline) and are
        # about 3x slower with nnU-Net's axis permutation. nnU-Net imports mirror each window themselves.
        channels_last = self.channels_last and not m.imported
        if m.mirrors_inside:
            m.network.set_mirroring(self.tta > 1)
        m.network = m.network.to(self.device).eval()
        if channels_last:
            m.network = m.network.to(memory_format=torch.channels_last_3d)
        if self.compile:
            m.network = torch.compile(m.network)
        return make_runner(self.backend, m.network, in_channels=len(m.channels), window=m.window, device=self.device,
                           precision=self.precision, channels_last=channels_last)

    @torch.inference_mode()
    def warm_up(self) -> None:
        """Run every member once per batch size up to ``batch_size`` on zeros, so that one-time
        work (OpenVINO compiling each static shape, cuDNN autotuning) is not charged to a case."""
        for m, runner in zip(self.members, self._runners):
            for n in range(1, self.batch_size + 1):
                runner.run(torch.zeros((n, len(m.channels), *m.window), device=self.device))

    # ------------------------------------------------------------------ settings

    def settings(self) -> dict[str, Any]:
        """Every setting that affects the result (JSON-able), for the sidecar."""
        return {
            "members": [{"name": m.name, "model": m.model, "channels": list(m.channels), "window": list(m.window),
                         "weight": m.weight, "preprocessing": to_dict(m.preprocessing),
                         "spacing": None if m.preprocessing.spacing is None else list(m.preprocessing.spacing),
                         "label_scheme": m.label_scheme, "window_weights": m.window_weights,
                         "outputs": m.outputs.to_dict(),
                         "trained_subsets": [subset_name(t) for t in m.trained_subsets]} for m in self.members],
            "zero_fill": self.zero_fill,
            "device": str(self.device), "backend": self.backend, "precision": self.precision,
            "overlap": self.overlap, "tta": self.tta, "mirror_axes": [list(a) for a in mirror_combinations(self.tta)],
            "batch_size": self.batch_size, "channels_last_3d": self.channels_last, "compile": self.compile,
            "uncertainty": self.uncertainty, "postprocess": to_dict(self.postprocess),
            "sigma_scale": 0.125, "blending": "gaussian",
        }

    # ------------------------------------------------------------------ prediction

    def plan(self, available: Sequence[str], case_id: str = "case") -> SequencePlan:
        """Which of the ``available`` sequences each member takes (:mod:`.missing_sequences`); raises
        :class:`CaseError` when no member can take them. Cheap: call it before reading a case's files."""
        return plan_sequences(self.members, canonical_channels(available), case_id, zero_fill=self.zero_fill)

    @staticmethod
    def _subvolume(vol: CaseVolumes, names: Sequence[str]) -> CaseVolumes:
        have = canonical_channels(vol.channels)
        image = vol.image if tuple(names) == have else vol.image[[have.index(c) for c in names]]
        return CaseVolumes(vol.case_id, image, tuple(names), None, vol.reference, vol.label_scheme)

    def _member_input(self, x: torch.Tensor, inp: MemberInput) -> torch.Tensor:
        """``x`` (1, U, ...) holding ``inp.used`` -> (1, C, ...) in the member's channel order, the
        ``inp.filled`` channels at the missing value."""
        channels = self.members[inp.index].channels
        if tuple(inp.used) == tuple(channels):
            return x
        full = torch.full((1, len(channels), *x.shape[2:]), MISSING_VALUE, dtype=x.dtype, device=x.device)
        for k, c in enumerate(inp.used):
            full[:, channels.index(c)] = x[:, k]
        return full

    def _run_group(self, inputs: Sequence[MemberInput], x: torch.Tensor, track: bool, back=None) -> ProbabilityAverager:
        """Probabilities of ``inputs``' members over mirrors; ``back``: logits to the cropped grid (nnU-Net's)."""
        group = ProbabilityAverager(track_variance=track)
        for inp in inputs:
            m, runner = self.members[inp.index], self._runners[inp.index]
            xm = self._member_input(x, inp)
            tta = 0 if m.mirrors_inside else self.tta
            n_mirror = len(mirror_combinations(tta))

            keep = None if self._select is None else self._select[inp.index]  # the ensemble's common groups

            def probabilities(t: torch.Tensor, m=m, runner=runner, keep=keep) -> torch.Tensor:
                with host_threads(runner):
                    logits = sliding_window(t, runner.run, m.window, self.overlap, self.batch_size,
                                            amp=runner.autocast, channels_last=runner.channels_last,
                                            weights=m.window_weights,
                                            empty_network=None if runner.backend == "torch" else m.network)
                p = get_activation(m.activation)(logits if back is None else back(logits))
                return p if keep is None else p[:, keep]

            for p in mirrored(probabilities, xm, tta):
                group.add(p[0], m.weight / n_mirror)
        return group

    def _groups(self, plan: SequencePlan) -> list[list[MemberInput]]:
        """The plan's member inputs grouped by (preprocessing, channels used): one preprocessing each."""
        groups: dict[tuple[str, tuple[str, ...]], list[MemberInput]] = {}
        for inp in plan.inputs:
            m = self.members[inp.index]
            key = json.dumps([to_dict(m.preprocessing), m.resampling], sort_keys=True), inp.used
            groups.setdefault(key, []).append(inp)
        return list(groups.values())

    def _predict_groups(self, vol: CaseVolumes,
                        plan: SequencePlan) -> tuple[ProbabilityAverager, list[list[int]], list[dict]]:
        """Average over every group: sums on the union of the groups' boxes, and each group's grid."""
        from ..data.preprocessing.grid import resample
        from ..data.preprocessing.preprocess import preprocess_volumes
        from ..importers.nnunet_resampling import resampled_case

        track = self.uncertainty == "variance" or self._samples() > 1  # variance: the disagreement score
        parts, grids = [], []
        for inputs in self._groups(plan):
            cfg, nnunet = self.members[inputs[0].index].preprocessing, self.members[inputs[0].index].resampling
            pre = preprocess_volumes(self._subvolume(vol, inputs[0].used), cfg if nnunet is None else
                                     dataclasses.replace(cfg, spacing=None))  # nnU-Net's own resampling below
            image, props, back = resampled_case(nnunet, cfg.spacing, pre.image, pre.properties)
            x = torch.from_numpy(np.ascontiguousarray(image))[None].to(self.device)
            del pre, image
            group = self._run_group(inputs, x, track, back)
            del x
            sums = [None if t is None else resample(t.cpu().numpy(), props["cropped_shape"], order=1)
                    for t in (group.total, group.squares)]
            parts.append((props["bbox"], sums, group.weight))
            grids.append({"input_spacing": props["original_spacing"], "spacing": props["spacing"],
                          "shape": props["shape"], "resampled": props["shape"] != props["cropped_shape"],
                          "intensity": props.get("intensity")})
        box = _union([b for b, _, _ in parts])
        shape = [hi - lo for lo, hi in box]
        total = ProbabilityAverager(track_variance=track)
        for b, sums, weight in parts:
            if b != box:
                sums = [None if s is None else paste(s, _within(b, box), shape) for s in sums]
            total.absorb(*sums, weight=weight)
        return total, box, grids

    @torch.inference_mode()
    def predict(self, vol: CaseVolumes, label_scheme: str | None = None,
                available: Sequence[str] | None = None) -> Prediction:
        """Segment one loaded case; see the module docstring for the steps. ``available``: the sequences
        the case has, when ``vol`` holds only those :meth:`plan` picked from them (default ``vol.channels``)."""
        t0 = time.perf_counter()
        plan = self.plan(vol.channels if available is None else available, vol.case_id)
        total, box, grids = self._predict_groups(vol, plan)
        probs = total.mean()
        variance = total.variance().numpy() if total.squares is not None else None
        unc = None
        if self.uncertainty == "variance":
            unc = variance
        elif self.uncertainty == "entropy":
            unc = binary_entropy(probs).numpy()
        probs = probs.numpy()
        del total
        outputs = self.write_back(label_scheme or self.label_scheme, vol.label_scheme)
        scheme = outputs.scheme
        box_labels, record = self._labels(probs, outputs)
        labels = paste(box_labels, box, vol.image.shape[1:])
        image = vol.image[(slice(None), *(slice(lo, hi) for lo, hi in box))]
        brain = brain_mask(image)  # BraTS-form and prepared cases are zero outside the brain
        info = {"case_id": vol.case_id, "label_scheme": get_scheme(scheme).name, "channels": list(self.channels),
                "sequences": plan.record([m.name for m in self.members]),
                "bbox": box, "grids": grids, "postprocess_record": record,
                "intensity": self._intensity_check(vol.case_id, grids),
                "confidence": assess(box_labels, brain, image, canonical_channels(vol.channels), probs, variance),
                "seconds": round(time.perf_counter() - t0, 3)}
        if outputs.groups != ("WT", "TC", "ET"):  # sidecars of WT/TC/ET models stay as they were
            info["model_outputs"] = outputs.to_dict()
        if self.note:
            info["ensemble_note"] = self.note
        return Prediction(labels, probs, box, unc, info)

    def _samples(self) -> int:
        return probability_samples(self.members, self.tta)

    def _intensity_check(self, case_id: str, grids: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """The case's raw intensity statistics (first group that has them per sequence) against each
        member's recorded training range (:mod:`brats_seg.data.reading.intensity`); one warning line if far outside."""
        stats: dict[str, Any] = {}
        for g in grids:
            for c, s in (g.get("intensity") or {}).items():
                stats.setdefault(c, s)
        if self._range_note:  # said once, with the first case predicted (a refused case stays one line)
            print(self._range_note, file=sys.stderr)
            self._range_note = None
        ranges = [m.intensity_range for m in self.members if m.intensity_range is not None]
        outside = sorted({line for r in ranges for line in far_outside(stats, r)})
        if outside and self.warn:
            print(f"brats-seg: warning: case {case_id}: intensities far outside the training cases' ("
                  f"{'; '.join(outside)}): the prediction may be unreliable", file=sys.stderr)
        return {"stats": stats, "far_outside": outside, "compared": bool(ranges)}

    def write_back(self, explicit: str | None, case_scheme: str | None) -> Outputs:
        """The outputs' write-back into the ``explicit`` scheme (one that cannot express every output group
        raises), else into the case's scheme where it can express them, else the checkpoint's own."""
        outputs = self.outputs
        if explicit is not None:
            return outputs.for_scheme(explicit)
        try:
            return outputs.for_scheme(case_scheme) if case_scheme else outputs
        except BratsSegError:
            return outputs

    def _labels(self, probs: np.ndarray, outputs: Outputs) -> tuple[np.ndarray, dict]:
        """Labels of the box ``(H, W, D)`` from probabilities ``(G, H, W, D)``. Imported region models whose
        outputs are written in their own scheme with no postprocessing asked for write back as their own code
        does (nnU-Net's ``regions_class_order``, the bundle's lambda: channel order, no nesting enforced);
        everything else through :func:`.postprocess.probabilities_to_labels`."""
        if (outputs.kind == "regions" and self.postprocess == PostprocessConfig()
                and all(m.imported and m.outputs == outputs for m in self.members)):
            from ..importers.common import write_back

            return write_back(outputs.to_dict(), probs), {"write_back": "regions in channel order (imported)"}
        return probabilities_to_labels(probs, outputs, self.postprocess)

    def predict_volumes(self, vol: CaseVolumes) -> tuple[np.ndarray, np.ndarray]:
        """``(labels (H, W, D) uint8, probabilities (3, H, W, D) float32)`` for one loaded case."""
        pred = self.predict(vol)
        return pred.labels, pred.probabilities
