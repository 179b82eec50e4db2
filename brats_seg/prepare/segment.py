"""Prepare, predict and map back in one go: :func:`segment_case`.

The predictor is any object with ``channels`` (sequence names it needs) and
``predict(CaseVolumes) -> Prediction`` (``labels`` ``(X, Y, Z)``, ``probabilities``
``(G, X, Y, Z)``, one channel per output group of the model, ``info["label_scheme"]``):
:class:`brats_seg.Predictor` is one; one that also has ``plan(available, case_id)`` decides
itself which subset of sequences it takes (:func:`required_sequences`). This package never
imports the models; the caller brings them.

Writes, besides the prepared case (:mod:`.pipeline`), ``OUT/<case_id>/segmentation/``:

* ``labels_in_atlas_space.nii.gz``: the labels on the atlas grid, as predicted;
* ``labels_in_<seq>_space.nii.gz`` for the T1c and each other requested sequence: the labels
  on that input's native grid, with that file's geometry (header, affine, shape), uint8;
* ``probabilities_in_<seq>_space.nii.gz`` (optional): ``(X, Y, Z, G)`` float32, one channel per
  output group of the model (WT, TC, ET for a WT/TC/ET checkpoint; :mod:`brats_seg.outputs`);
* ``labels_in_<seq>_space.dcm`` (DICOM SEG) for each of those that came as a DICOM series and can
  carry one (otherwise the reason, one line, in ``Segmented.no_dicom_seg`` and ``segment.json``);

(No name ends in a sequence or ``seg``/``label``, so dataset discovery never takes the
folder for a case.)
* ``segment.json``: what was done, with ``confidence`` (how sure the prediction is,
  :mod:`brats_seg.inference.confidence`, when the predictor reports it); and ``qc.png`` gains a row
  with the labels on the native T1c (titled with the confidence scores) and, for a prediction
  with tumour, a row marking the implausible tumour voxels in the atlas (outside the brain mask
  red, FLAIR-dark yellow); its title says "prediction FLAGGED" instead of "QC PASSED" when flagged.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..conventions import canonical_modality
from ..data.reading.cases import CaseVolumes
from ..data.reading.image_io import Image, write_image, write_label
from ..errors import BratsSegError
from ..files import write_text
from .atlas import atlas_grid
from .pipeline import PreparedCase, prepare_case
from .qc import Row, centre_of, focus_of, prepare_rows, write_qc
from .sequences import ScanSet
from .settings import PrepareConfig
from .sitk_images import to_sitk
from .spatial_transforms import resample_labels, resample_probabilities, source_to_atlas


def required_sequences(predictor: Any, scans: ScanSet) -> tuple[str, ...]:
    """The sequences of ``scans`` that ``predictor`` reads: the one place that decides what a
    missing sequence means. Raises :class:`CaseError` (one line naming it) to refuse the case.

    A predictor with ``plan(available, case_id)`` (one that takes a subset of its channels, see
    the missing-modalities issue) decides itself: its plan's ``used`` sequences, or its own
    one-line refusal. Any other predictor needs all its ``channels``: :meth:`ScanSet.require`
    refuses a case lacking one, naming it and the files found."""
    plan = getattr(predictor, "plan", None)
    if plan is not None:
        return tuple(canonical_modality(c) for c in plan(tuple(scans.series), scans.case_id).used)
    channels = tuple(canonical_modality(c) for c in predictor.channels)
    scans.require(channels)
    return channels


@dataclass
class Segmented:
    """What :func:`segment_case` made: the prepared case, the labels per native sequence
    (``(X, Y, Z)`` uint8 on that input's grid), the files written and the record."""

    prepared: PreparedCase
    native: dict[str, np.ndarray] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    record: dict[str, Any] = field(default_factory=dict)
    no_dicom_seg: dict[str, str] = field(default_factory=dict)
    """Sequence -> why no DICOM SEG was written over that DICOM input (one line)."""

    @property
    def passed(self) -> bool:
        return self.prepared.passed


def volumes(prepared: PreparedCase, channels: Sequence[str]) -> CaseVolumes:
    """The prepared images as a loaded case ``(C, X, Y, Z)`` in the order of ``channels``."""
    image = np.stack([prepared.images[c] for c in channels]).astype(np.float32)
    return CaseVolumes(prepared.case_id, image, tuple(channels), None, prepared.reference, None)


def to_native(prepared: PreparedCase, sequence: str, labels: np.ndarray, scheme: str,
              probabilities: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Atlas-grid ``labels`` (and optional ``(G, X, Y, Z)`` probabilities, one per output group) on
    ``sequence``'s native grid."""
    series = prepared.scans.series[sequence]
    grid = to_sitk(series.image, name=str(series.source))
    transform = source_to_atlas(prepared.atlas, prepared.rigid.get(sequence))
    atlas = atlas_grid()
    native = resample_labels(labels, atlas, grid, transform, scheme)
    probs = None if probabilities is None else resample_probabilities(probabilities, atlas, grid, transform)
    return native, probs


def _write_native(seg: Segmented, folder: Path, sequence: str, labels: np.ndarray, probs, scheme: str,
                  dicom_seg: bool) -> None:
    series = seg.prepared.scans.series[sequence]
    ref = series.image
    seg.files[f"labels_{sequence}"] = str(write_label(folder / f"labels_in_{sequence}_space.nii.gz", labels, ref))
    if probs is not None:
        # the probabilities keep the input's grid; the header is not reused (it may scale to integers)
        path = folder / f"probabilities_in_{sequence}_space.nii.gz"
        seg.files[f"probabilities_{sequence}"] = str(write_image(path, np.moveaxis(probs, 0, -1).astype(np.float32),
                                                                 Image(ref.array, ref.affine)))
    if dicom_seg and series.kind == "dicom":
        from .dicom_seg import DicomSegError, write_dicom_seg

        try:
            seg.files[f"dicom_seg_{sequence}"] = str(write_dicom_seg(
                folder / f"labels_in_{sequence}_space.dcm", labels, series.files, scheme))
        except DicomSegError as e:
            seg.no_dicom_seg[sequence] = str(e)


def segment_case(scans: ScanSet, predictor: Any, out: str | Path, config: PrepareConfig | None = None, *,
                 native: Sequence[str] = ("t1c",), probabilities: bool = False, dicom_seg: bool = True,
                 progress: bool = True) -> Segmented:
    """Prepare ``scans``, predict with ``predictor``, and write the labels on each ``native``
    sequence's grid (T1c always). A case that fails QC is not predicted (``passed`` False)."""
    used = required_sequences(predictor, scans)
    unknown = [m for m in native if m not in scans.series]
    if unknown:
        raise BratsSegError(f"case {scans.case_id}: no {', '.join(unknown)} input to map the labels onto")
    # every sequence the labels go back to is co-registered too (its transform is needed)
    cfg = replace(config or PrepareConfig(), sequences=tuple(dict.fromkeys((*used, *native))))
    prepared = prepare_case(scans, out, cfg, progress=progress)
    seg = Segmented(prepared)
    if not prepared.passed:
        return seg
    t0 = time.perf_counter()
    pred = predictor.predict(volumes(prepared, used))
    scheme = pred.info["label_scheme"]
    folder = prepared.folder / "segmentation"
    seg.files["labels_atlas"] = str(write_label(folder / "labels_in_atlas_space.nii.gz", pred.labels,
                                                prepared.reference))
    t1 = time.perf_counter()
    for m in dict.fromkeys(("t1c", *native)):
        probs = pred.probabilities if probabilities else None
        seg.native[m], probs = to_native(prepared, m, pred.labels, scheme, probs)
        _write_native(seg, folder, m, seg.native[m], probs, scheme, dicom_seg)
    seg.record = {"case_id": prepared.case_id, "label_scheme": scheme, "prediction": pred.info,
                  "confidence": pred.info.get("confidence"),
                  "seconds": {"prediction": round(t1 - t0, 2), "back to native": round(time.perf_counter() - t1, 2)},
                  "files": {k: Path(v).name for k, v in seg.files.items()}, "no_dicom_seg": seg.no_dicom_seg}
    write_text(folder / "segment.json", json.dumps(seg.record, indent=1, default=str))
    _qc_with_labels(seg, pred.labels)
    return seg


def _implausible(prepared: PreparedCase, atlas_labels: np.ndarray) -> np.ndarray:
    """Atlas-grid map of the tumour voxels the confidence scores count against it: 1 outside the
    brain mask, 3 where the FLAIR is at or below the brain's median (0 elsewhere)."""
    tumour, out = atlas_labels > 0, np.zeros(atlas_labels.shape, np.uint8)
    flair = prepared.images.get("t2f")
    if flair is not None and prepared.mask.any():
        out[tumour & (flair <= np.median(flair[prepared.mask]))] = 3
    out[tumour & ~prepared.mask] = 1
    return out


def _qc_with_labels(seg: Segmented, atlas_labels: np.ndarray) -> None:
    prepared = seg.prepared
    t1c = prepared.scans.series["t1c"].image
    labels = seg.native["t1c"]
    rows = prepare_rows(prepared)
    centre = centre_of(prepared.mask)
    conf = seg.record.get("confidence") or {}
    scores = ", ".join(f"{k} {v:.2g}" for k, v in (conf.get("scores") or {}).items() if v is not None)
    rows.append(Row(f"labels on the native T1c ({int((labels > 0).sum() * np.prod(t1c.spacing) / 1000)} mL)"
                    f"{'  ' + scores if scores else ''}", t1c.array, t1c.spacing, labels=labels,
                    failed=bool(conf.get("flagged"))))
    points = [centre] * (len(rows) - 1) + [focus_of(labels > 0) if labels.any() else centre_of(t1c.array > 0)]
    if atlas_labels.any():
        rows.append(Row("implausible tumour: outside the brain mask (red), FLAIR-dark (yellow)",
                        prepared.images["t1c"], (1, 1, 1), labels=_implausible(prepared, atlas_labels),
                        mask=prepared.mask))
        points.append(focus_of(atlas_labels > 0))
    verdict = None
    if conf.get("flagged"):
        verdict = f"prediction FLAGGED as unsure ({'; '.join(conf['reasons'])})"
    write_qc(prepared.folder / "qc.png", rows, prepared, points, verdict=verdict)

