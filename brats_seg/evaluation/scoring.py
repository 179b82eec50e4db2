"""Scoring one prediction file against its reference file, and deciding the label schemes of a folder.

:func:`score_case` reads both label maps through the checks of ``brats-seg check``
(:func:`brats_seg.data.reading.checks.read_label_map`: a truncated file, NaN or non-integer
values fail the case, as does a prediction whose shape or affine differs from its
reference's), settles their label schemes and scores
the groups the reference's scheme scores (:mod:`.metrics`, and :mod:`.lesionwise`
when asked). Schemes, unless given:

- a reference's scheme is decided per dataset (:func:`decide_reference_schemes`,
  :func:`brats_seg.conventions.detect_dataset_schemes`): its values, the layout's
  hint and its case id's naming, pooled over every reference of the same naming;
  values that stay ambiguous stop the evaluation with one line asking for
  ``--label-scheme``;
- a prediction's scheme is the reference's when its values fit it, else detected
  from its values alone (no case-id hint: predictions come from any tool); an
  ambiguous prediction fails that case, asking for ``--pred-scheme``.

A group of the reference's scheme that the prediction's scheme cannot express (an
RC reference group against a brats2023 prediction given by ``--pred-scheme``) is
left out of that case, with a warning.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..conventions import AmbiguousSchemeError, detect_dataset_schemes, detect_scheme, get_scheme
from ..data.reading.checks import geometry_error, read_label_map
from ..errors import BratsSegError
from .lesionwise import LESION_HD95_MODE, challenge_for, get_challenge, lesionwise_case
from .metrics import DEFAULT_HD95_MODE, HD95_MODES, evaluate_case


@dataclass
class EvaluationSettings:
    """How a folder is scored (saved in summary.json). ``challenge=None``: each case's lesion-wise
    parameters from its case id (:func:`~.lesionwise.challenge_for`)."""

    pred_scheme: str | None = None
    ref_scheme: str | None = None
    hd95_mode: str = DEFAULT_HD95_MODE
    lesionwise: bool = False
    challenge: str | None = None
    lesion_hd95_mode: str = LESION_HD95_MODE
    workers: int = 1
    layout: str | None = None
    """the reference dataset's layout (None: detected; a folder of label maps has none)"""

    def validate(self) -> None:
        for mode in (self.hd95_mode, self.lesion_hd95_mode):
            if mode not in HD95_MODES:
                raise BratsSegError(f"unknown hd95 mode {mode!r}; valid: {', '.join(HD95_MODES)}")
        for scheme in (self.pred_scheme, self.ref_scheme):
            if scheme is not None:
                get_scheme(scheme)
        if self.challenge is not None:
            get_challenge(self.challenge)
        if self.workers < 1:
            raise BratsSegError(f"workers must be at least 1, got {self.workers}")


def prediction_scheme(values: set[int], explicit: str | None, ref_scheme: str) -> str:
    """The given scheme, else the reference's when the values fit it, else detected from the values alone."""
    if explicit is not None:
        return get_scheme(explicit).name
    if values <= get_scheme(ref_scheme).values:
        return ref_scheme
    try:
        return detect_scheme(values)
    except BratsSegError as e:
        raise BratsSegError(f"prediction: {e} (give --pred-scheme)") from None


def score_case(job: dict) -> dict:
    """Score one pair (a picklable job dict: case_id, pred, ref, hint, settings, optional ref_scheme).

    Returns ``{"case_id", "status", "metrics"|"error", "warnings", "ref_values", "ref_scheme", "unscored"}``;
    status ``undecided`` (not scored) when the reference's values alone fit several schemes.
    """
    case_id, pred_path, ref_path = job["case_id"], job["pred"], job["ref"]
    s = EvaluationSettings(**job["settings"])
    out: dict = {"case_id": case_id, "warnings": [], "ref_values": None, "ref_scheme": None, "unscored": []}
    try:
        ref = read_label_map(ref_path)  # the checks of brats-seg check: complete file, 3-D, integer values
        out["ref_values"] = ref.values
        try:
            ref_scheme = job.get("ref_scheme") or s.ref_scheme or detect_scheme(
                out["ref_values"], job.get("hint"), case_id=case_id)
        except AmbiguousSchemeError as e:
            return {**out, "status": "undecided", "error": f"case {case_id}: reference {e}"}
        _check_reference(out["ref_values"], ref_scheme)
        out["ref_scheme"] = get_scheme(ref_scheme).name
        if pred_path is None:
            pred, pred_scheme, out["status"] = np.zeros(ref.image.shape, np.uint8), ref_scheme, "missing"
        else:
            pred_map = read_label_map(pred_path)
            if problem := geometry_error("prediction", pred_map.image, f"reference {Path(ref_path).name}", ref.image):
                raise BratsSegError(f"{pred_path}: {problem}")
            pred, pred_scheme = pred_map.image.array, prediction_scheme(set(pred_map.values), s.pred_scheme, ref_scheme)
            out["status"] = "ok"
        out["metrics"] = _score(pred, ref.image.array, ref.image.spacing[:3], pred_scheme, ref_scheme, s, case_id, out)
    except BratsSegError as e:
        out.update(status="error", error=f"case {case_id}: {e}")
    except Exception as e:  # a batch goes on past any bad case; the error names it
        out.update(status="error", error=f"case {case_id}: {e.__class__.__name__}: {e}")
    return out


def _check_reference(values, scheme: str) -> None:
    outside = set(values) - get_scheme(scheme).values
    if outside:
        raise BratsSegError(f"reference has label values {sorted(outside)} outside scheme {get_scheme(scheme).name}"
                            f" (valid {sorted(get_scheme(scheme).values)})")


def _score(pred, ref, spacing, pred_scheme: str, ref_scheme: str, s: EvaluationSettings, case_id: str,
           out: dict) -> dict[str, dict[str, float]]:
    """``{group: {metric: value}}`` over the reference's scored groups that the prediction's scheme names."""
    expressible = get_scheme(pred_scheme).groups
    groups = [g for g in get_scheme(ref_scheme).scored if g in expressible]
    out["unscored"] = [g for g in get_scheme(ref_scheme).scored if g not in expressible]
    metrics = evaluate_case(pred, ref, spacing, pred_scheme, ref_scheme, hd95_mode=s.hd95_mode, groups=groups)
    if s.lesionwise:
        challenge = out["challenge"] = s.challenge or challenge_for(case_id)
        lw = lesionwise_case(pred, ref, spacing, pred_scheme, ref_scheme, challenge=challenge,
                             hd95_mode=s.lesion_hd95_mode, groups=groups)
        for g in groups:
            metrics[g].update(lw[g])
    return metrics


def decide_reference_schemes(results: list[dict], hints: dict[str, str | None], ref_dir) -> dict[str, str]:
    """Case id -> the reference scheme the whole dataset settles, for the cases to (re)score with it.

    Raises :class:`BratsSegError` (one line) when the references' values stay ambiguous.
    """
    by_id = {r["case_id"]: r for r in results if r["ref_values"] is not None}
    maps = {c: (r["ref_values"], hints.get(c), c) for c, r in by_id.items()}
    redo = {}
    for case_id, decision in detect_dataset_schemes(maps).items():
        if isinstance(decision, AmbiguousSchemeError):
            raise BratsSegError(f"{ref_dir}: reference {decision}")
        if isinstance(decision, str) and by_id[case_id]["ref_scheme"] != decision:
            redo[case_id] = decision
    return redo
