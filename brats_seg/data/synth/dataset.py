"""Writing synthetic datasets (:func:`synthesize_dataset`) in the brats2021, brats2023 or msd layout.

Case ids say they are synthetic and how to make the case again: case ``i`` uses seed
``seed + i`` and is named by it, ``Synth_00002`` (brats2021, msd) or ``BraTS-SYNTH-00002-000``
(brats2023: the 2023 form, with the challenge tag SYNTH), never a real BraTS id.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ...conventions import MODALITIES, MSD_CHANNEL_ORDER, get_scheme
from ...errors import BratsSegError
from ...files import atomic_path
from ..reading.image_io import Image, write_image
from .anatomy import load_anatomy
from .generate import SynthCase, grid_shape, synthesize_case

# output file naming per layout: (case id format, file name format, modality -> file tag)
LAYOUT_FILES: Mapping[str, tuple[str, str, Mapping[str, str]]] = {
    "brats2021": ("Synth_{:05d}", "{case}/{case}_{tag}.nii.gz",
                  {"t1n": "t1", "t1c": "t1ce", "t2w": "t2", "t2f": "flair", "label": "seg"}),
    "brats2023": ("BraTS-SYNTH-{:05d}-000", "{case}/{case}-{tag}.nii.gz",
                  {"t1n": "t1n", "t1c": "t1c", "t2w": "t2w", "t2f": "t2f", "label": "seg"}),
    "msd": ("Synth_{:05d}", "{tag}/{case}.nii.gz", {"image": "imagesTr", "label": "labelsTr"}),
}
LAYOUT_SCHEMES = {"brats2021": "brats2021", "brats2023": "brats2023", "msd": "msd"}
SCHEME_IDS: Mapping[str, str] = {"brats2024-gli": "BraTS-GLI-SYNTH-{:05d}-100",
                                 "brats2024-ped": "BraTS-PED-SYNTH-{:05d}-000"}
"""Case ids of the 2024 tasks synth writes (brats2023 layout): the sub-challenge tag lets the scheme be
detected (:data:`~brats_seg.conventions.NAMING_SCHEMES`), SYNTH says it is no real case."""

MSD_DATASET = {
    "name": "BRATS", "description": "synthetic cases written by brats-seg synth (MNI ICBM152 anatomy)",
    "tensorImageSize": "4D", "reference": "MNI ICBM152 2009a template (Fonov et al. 2011), via nilearn",
    "modality": {"0": "FLAIR", "1": "T1w", "2": "t1gd", "3": "T2w"},
    "labels": {"0": "background", "1": "edema", "2": "non-enhancing tumor", "3": "enhancing tumour"},
}


def _reference(affine: np.ndarray, shape: tuple[int, ...]) -> Image:
    import nibabel as nib

    header = nib.Nifti1Header()
    header.set_qform(affine, 1)
    header.set_sform(affine, 1)
    header.set_xyzt_units("mm", "sec")
    return Image(np.broadcast_to(np.zeros((), np.int16), shape), affine, header)


def case_ids(layout: str, n_cases: int, seed: int = 0, scheme: str | None = None) -> list[str]:
    """Case ids :func:`synthesize_dataset` writes for ``layout`` (and a 2024 ``scheme``), numbered by each
    case's seed ``seed + i``."""
    fmt = SCHEME_IDS.get(scheme or "", LAYOUT_FILES[layout][0])
    return [fmt.format(seed + i) for i in range(n_cases)]


def write_case(out: Path, case_id: str, case: SynthCase, layout: str, scheme: str | None = None) -> list[Path]:
    """Write one case in ``layout`` (labels in ``scheme``, default the layout's; atomic writes); returns the files."""
    _, pattern, tags = LAYOUT_FILES[layout]
    scheme = scheme or LAYOUT_SCHEMES[layout]
    ref = _reference(case.affine, next(iter(case.images.values())).shape)
    files = []
    if layout == "msd":
        stacked = np.stack([case.images[m] for m in MSD_CHANNEL_ORDER], axis=-1)
        files.append(write_image(out / pattern.format(case=case_id, tag=tags["image"]), stacked, ref))
    else:
        for m in MODALITIES:
            files.append(write_image(out / pattern.format(case=case_id, tag=tags[m]), case.images[m], ref))
    files.append(write_image(out / pattern.format(case=case_id, tag=tags["label"]),
                             case.labels(scheme).astype(np.uint8), ref))
    return files


def _one_thread() -> None:
    """Pool initializer: one torch thread per worker process (the workers are the parallelism)."""
    import torch

    torch.set_num_threads(1)


def _one(out: Path, layout: str, case_id: str, seed: int, spacing: float,
         scheme: str | None = None) -> tuple[str, float, float]:
    t0 = time.perf_counter()
    case = synthesize_case(seed, spacing, scheme)
    t1 = time.perf_counter()
    write_case(out, case_id, case, layout, scheme)
    return case_id, t1 - t0, time.perf_counter() - t1


def _generate(jobs: list[tuple], workers: int, progress: bool) -> list[tuple[str, float, float]]:
    """Run :func:`_one` over ``jobs`` (in ``workers`` processes when > 1), with a progress bar."""
    from tqdm.auto import tqdm

    results = []
    with tqdm(total=len(jobs), desc="synth", unit="case", disable=not progress) as bar:
        if workers <= 1 or len(jobs) == 1:
            for job in jobs:
                results.append(_one(*job))
                bar.update(1)
            return results
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=workers, initializer=_one_thread) as pool:
            for res in pool.map(_one, *zip(*jobs)):
                results.append(res)
                bar.update(1)
    return results


def _write_msd_index(out: Path, ids: list[str]) -> None:
    """``OUT/dataset.json`` listing these cases and those written earlier (other seeds)."""
    listed = {c: {"image": f"./imagesTr/{c}.nii.gz", "label": f"./labelsTr/{c}.nii.gz"} for c in ids}
    try:
        for entry in json.loads((out / "dataset.json").read_text()).get("training", []):
            listed.setdefault(Path(entry["image"]).name.split(".")[0], entry)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    training = [listed[c] for c in sorted(listed)]
    meta = dict(MSD_DATASET, numTraining=len(training), numTest=0, test=[], training=training)
    with atomic_path(out / "dataset.json") as tmp:
        tmp.write_text(json.dumps(meta, indent=1))


def synthesize_dataset(out: str | Path, n_cases: int, layout: str = "brats2021", seed: int = 0,
                       spacing: float = 1.0, *, workers: int = 1, progress: bool = True,
                       label_scheme: str | None = None) -> dict:
    """Write ``n_cases`` synthetic cases into ``out`` in ``layout`` (brats2021, brats2023, msd).

    Case ``i`` uses seed ``seed + i`` and is named by it (:func:`case_ids`: ``Synth_<seed+i>``,
    ``BraTS-SYNTH-<seed+i>-000``), so any case is reproducible on its own and runs with other seeds
    add cases beside it. Labels are in the layout's scheme (brats2021: 1, 2, 4; brats2023: 1, 2, 3;
    msd: 1 edema, 2 non-enhancing, 3 enhancing, with 4-D images and ``dataset.json``). ``workers`` > 1
    runs cases in processes. ``label_scheme`` brats2024-gli writes post-treatment cases with a resection
    cavity (4), brats2024-ped cases with a cyst (3), both in the brats2023 layout, ids
    ``BraTS-GLI-SYNTH-<seed+i>-100`` / ``BraTS-PED-SYNTH-<seed+i>-000`` (:mod:`.treatment`). Returns a summary
    dict (``cases``, ``template_seconds``,
    ``seconds_per_case`` generating and writing), also written as ``OUT/synth.json``.
    """
    if layout not in LAYOUT_FILES:
        raise BratsSegError(f"unknown synthetic layout {layout!r}; valid: {', '.join(LAYOUT_FILES)}")
    if n_cases < 1:
        raise BratsSegError(f"--cases must be at least 1, got {n_cases}")
    scheme = get_scheme(label_scheme or LAYOUT_SCHEMES[layout]).name
    if scheme != LAYOUT_SCHEMES[layout] and (scheme not in SCHEME_IDS or layout != "brats2023"):
        raise BratsSegError(f"synth writes label scheme {scheme} only as brats2024-gli or brats2024-ped in the"
                            f" brats2023 layout, or as the layout's own ({LAYOUT_SCHEMES[layout]} for {layout})")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ids = case_ids(layout, n_cases, seed, scheme)
    t0 = time.perf_counter()
    if workers <= 1 or n_cases == 1:
        load_anatomy(float(spacing))  # once per process; timed apart from the cases
    template_s = time.perf_counter() - t0
    results = _generate([(out, layout, cid, seed + i, float(spacing), scheme) for i, cid in enumerate(ids)],
                        workers, progress)
    if layout == "msd":
        _write_msd_index(out, ids)
    summary = {"layout": layout, "label_scheme": scheme, "seed": seed, "spacing": float(spacing),
               "shape": list(grid_shape(spacing)), "cases": ids,
               "template_seconds": round(template_s, 3),
               "seconds_per_case": {"generate": float(np.mean([r[1] for r in results])),
                                    "write": float(np.mean([r[2] for r in results]))}}
    with atomic_path(out / "synth.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=1))
    return summary
