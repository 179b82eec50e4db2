"""From scans as the scanner gave them to a BraTS-form case: :func:`prepare_case`.

Writes into ``OUT/<case_id>/`` (each file atomically):

* ``<case_id>-{t1n,t1c,t2w,t2f}.nii.gz``: float32, skull-stripped, on the atlas grid
  (:data:`~.atlas.ATLAS_SHAPE`, 1 mm): a ``brats2023``-layout case any command reads;
* ``<case_id>-brain_mask.nii.gz``; ``<seq>_to_t1c.tfm`` per sequence and ``t1c_to_atlas.tfm``;
* ``prepare.json`` (every setting, inputs, each registration's similarity, seconds per
  step, outputs), ``sequences.json`` (the sequence mapping) and ``qc.png``.

A registration whose similarity is below the threshold fails the case: the record,
transforms and picture are written (to look at), the images are not (and earlier ones
of that case are removed), and :attr:`PreparedCase.passed` is False.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from ..config import to_dict
from ..data.reading.image_io import Image, write_image, write_label
from ..errors import BratsSegError
from ..files import write_text
from .atlas import ATLAS_AFFINE, ATLAS_NAME, ATLAS_SHAPE, atlas_grid
from .brain import choose_brain_extractor
from .qc import MIN_NMI, MIN_SIMILARITY
from .sequences import ScanSet
from .settings import PrepareConfig
from .sitk_images import to_sitk
from .spatial_transforms import save_transform
from .steps import brain_mask, co_register, orientation, register_to_atlas, to_atlas, working_copy

PREPARE_VERSION = 1
PREPARED_SEQUENCE_ORDER = ("t1n", "t1c", "t2w", "t2f")


@dataclass
class PreparedCase:
    """A prepared case in memory: ``images`` (sequence -> ``(X, Y, Z)`` float32 on the atlas
    grid), the atlas brain ``mask``, the inputs (``scans``), the transforms (``atlas``: atlas
    point -> T1c-native point; ``rigid``: T1c-native point -> sequence-native point), the
    brain mask on the T1c's side (``native_brain``) and the ``record`` saved as prepare.json."""

    case_id: str
    folder: Path
    images: dict[str, np.ndarray]
    mask: np.ndarray
    scans: ScanSet
    atlas: sitk.Transform
    rigid: dict[str, sitk.Transform]
    native_brain: sitk.Image
    record: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return bool(self.record.get("qc", {}).get("passed", False))

    @property
    def reference(self) -> Image:
        """Geometry of the atlas grid (for writing results there)."""
        return Image(np.broadcast_to(np.float32(0), ATLAS_SHAPE), ATLAS_AFFINE)  # geometry only: no memory

    def image_path(self, sequence: str) -> Path:
        return self.folder / f"{self.case_id}-{sequence}.nii.gz"


class _Timer:
    def __init__(self, progress):
        self.seconds: dict[str, float] = {}
        self.progress = progress

    @contextmanager
    def __call__(self, step: str) -> Iterator[None]:
        if self.progress is not None:
            self.progress.set_postfix_str(step)
        t0 = time.perf_counter()
        yield
        self.seconds[step] = round(time.perf_counter() - t0, 2)
        if self.progress is not None:
            self.progress.update(1)


STEPS = ("read", "reorient + N4", "brain extraction", "co-registration", "atlas registration", "resampling",
         "writing")


def reproducibility(cfg: PrepareConfig) -> dict[str, Any]:
    """What decides that a run gives the same images and transforms again: the metric's sampling
    seeds and thread counts (registrations run with these threads whatever the machine has), the
    threads of the other steps (resampling, N4: per-voxel, deterministic) and the library versions."""
    import platform

    return {"registration_seeds": {"rigid": cfg.rigid.seed, "affine": cfg.affine.seed},
            "registration_threads": {"rigid": cfg.rigid.threads, "affine": cfg.affine.threads},
            "other_threads": sitk.ProcessObject.GetGlobalDefaultNumberOfThreads(),
            "simpleitk": sitk.Version.VersionString(), "numpy": np.__version__, "machine": platform.machine()}


def _check_outputs(folder: Path, case_id: str, scans: ScanSet) -> None:
    sources = {s.source.resolve() for s in scans.series.values()}
    for m in PREPARED_SEQUENCE_ORDER:
        target = (folder / f"{case_id}-{m}.nii.gz").resolve()
        if target in sources:
            raise BratsSegError(f"{target}: an input would be overwritten; choose another output folder")


def _registration_record(name: str, reg, similarity: tuple[float, float], thresholds: dict[str, float],
                         file: str) -> dict[str, Any]:
    nmi, sharpness = similarity
    threshold = thresholds[name]
    return {"transform": file, "kind": name, "init": reg.init, "iterations": reg.iterations,
            "mattes_mi": round(reg.metric, 5), "nmi": round(nmi, 4), "sharpness": round(sharpness, 3),
            "passed": bool(sharpness >= threshold and nmi >= MIN_NMI), "stop": reg.stop}


def prepare_case(scans: ScanSet, out: str | Path, config: PrepareConfig | None = None, *,
                 progress: bool = True) -> PreparedCase:
    """Prepare one case (see the module docstring). Raises :class:`BratsSegError` for bad
    input (one line naming the file); a QC failure is returned with ``passed`` False."""
    from tqdm.auto import tqdm

    cfg = config or PrepareConfig()
    needed = cfg.needed
    scans.require(needed)
    folder = Path(out) / scans.case_id
    _check_outputs(folder, scans.case_id, scans)
    threshold = dict(MIN_SIMILARITY)
    if cfg.min_similarity is not None:
        threshold = dict(zip(("rigid", "affine"), cfg.min_similarity))
    bar = tqdm(total=len(STEPS), desc=f"prepare {scans.case_id}", unit="step", disable=not progress, leave=False)
    timer = _Timer(bar)
    with timer("read"):
        native = {m: to_sitk(s.image, name=str(s.source)) for m, s in scans.series.items() if m in needed}
    with timer("reorient + N4"):
        work = {m: working_copy(img, cfg) for m, img in native.items()}
    with timer("brain extraction"):
        extractor, why = choose_brain_extractor(cfg.brain_extraction, native["t1c"])
        brain = brain_mask(native["t1c"], extractor)
    registrations, rigid = {}, {}
    with timer("co-registration"):
        for m in (m for m in PREPARED_SEQUENCE_ORDER if m in work and m != "t1c"):
            reg, similarity = co_register(work["t1c"], work[m], brain, cfg)
            rigid[m] = reg.transform
            registrations[m] = _registration_record("rigid", reg, similarity, threshold, f"{m}_to_t1c.tfm")
    with timer("atlas registration"):
        reg, similarity = register_to_atlas(work["t1c"], brain, cfg)
        registrations["atlas"] = _registration_record("affine", reg, similarity, threshold, "t1c_to_atlas.tfm")
    with timer("resampling"):
        images, mask = to_atlas(native, brain, reg.transform, rigid, atlas_grid(), cfg.interpolation)
    prepared = PreparedCase(scans.case_id, folder, images, mask, scans, reg.transform, rigid, brain)
    failed = [k for k, r in registrations.items() if not r["passed"]]
    prepared.record = {
        "version": PREPARE_VERSION, "case_id": scans.case_id, "config": to_dict(cfg),
        "inputs": scans.mapping()["sequences"],
        "orientation": {m: orientation(img) for m, img in native.items()},
        "brain_extraction": {"method": extractor.name, "why": why, "description": extractor.description,
                             "atlas_volume_ml": round(float(mask.sum()) / 1000, 1)},
        "registrations": registrations,
        "qc": {"similarity": "sharpness of the normalised mutual information peak: the share of NMI - 1"
                             " lost 5 mm and 5 degrees off the solution (over the brain, 2 mm working grid)",
               "threshold": threshold, "min_nmi": MIN_NMI, "failed": failed, "passed": not failed},
        "reproducibility": reproducibility(cfg),
        "atlas": {"name": ATLAS_NAME, "shape": list(ATLAS_SHAPE), "affine": ATLAS_AFFINE.tolist()},
    }
    with timer("writing"):
        _write(prepared, registrations)
    prepared.record["seconds"] = timer.seconds
    write_text(folder / "prepare.json", json.dumps(prepared.record, indent=1))
    bar.close()
    return prepared


def _write(prepared: PreparedCase, registrations: dict) -> None:
    from .qc import prepare_rows, write_qc

    folder, ref = prepared.folder, prepared.reference
    folder.mkdir(parents=True, exist_ok=True)
    prepared.scans.save(folder / "sequences.json")
    for m, t in prepared.rigid.items():
        save_transform(t, folder / registrations[m]["transform"])
    save_transform(prepared.atlas, folder / "t1c_to_atlas.tfm")
    outputs = {}
    for m in PREPARED_SEQUENCE_ORDER:
        path = prepared.image_path(m)
        if prepared.passed and m in prepared.images:
            outputs[m] = str(write_image(path, prepared.images[m], ref).name)
        elif path.exists():
            path.unlink()  # an earlier run's image must not pass for this one's
    mask_path = folder / f"{prepared.case_id}-brain_mask.nii.gz"
    if prepared.passed:
        outputs["brain_mask"] = str(write_label(mask_path, prepared.mask, ref).name)
    elif mask_path.exists():
        mask_path.unlink()
    prepared.record["outputs"] = outputs
    write_qc(folder / "qc.png", prepare_rows(prepared), prepared)
