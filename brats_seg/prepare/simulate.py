"""Scanner-like cases made from a prepared BraTS case, with the answer known.

Used by the tests and ``benchmarks/bench_prepare.py`` to measure what preparation
recovers. From a BraTS case (skull-stripped, co-registered, 1 mm) each sequence gets:

* a random rigid motion of the patient (rotation about a random axis through the brain
  centre, ``max_deg``; translation ``max_mm``; at least half of each), applied to the
  file's affine only, so the truth is exact and nothing is interpolated;
* T2/FLAIR: thick axial slices (``thick_mm``, in-plane 1 mm): each slice averages the
  original over a Gaussian slice profile whose FWHM is the slice thickness;
* T1c stored in RAS voxel order (the BraTS files are LPS-ordered), so orientations differ;
* T1n optionally written as a DICOM series (SimpleITK's GDCM writer, MR image storage).

``truth.json`` holds, per sequence, the 4x4 RAS motion ``M`` (original world -> scanner
world of that sequence). A registration ``T`` (T1c-native point -> sequence-native point,
LPS as ITK gives it) is right when ``T(y) = M_seq M_t1c^-1 y``; :func:`registration_error`
measures the distance over brain voxels.
"""

from __future__ import annotations

import hashlib
import json
import locale
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.reading.image_io import Image, read_image, write_image
from ..files import write_text
from .sitk_images import LPS_FROM_RAS

SIMULATED_FILES = {"t1c": "t1c.nii.gz", "t2w": "t2w.nii.gz", "t2f": "t2f.nrrd", "t1n": "t1n"}
"""File (or DICOM folder) name per sequence in a simulated case."""


@dataclass(frozen=True)
class SimulationConfig:
    """``max_deg``/``max_mm``: largest rotation and translation per sequence; ``thick_mm``:
    slice thickness of T2/FLAIR (one value drawn per sequence in this range); ``dicom``:
    write T1n as a DICOM series (else NIfTI); ``patient_id`` goes into the DICOM files."""

    max_deg: float = 15.0
    max_mm: float = 20.0
    thick_mm: tuple[float, float] = (4.0, 5.0)
    dicom: bool = True
    patient_id: str = "SIM-0001"


def random_motion(rng: np.random.Generator, centre: np.ndarray, max_deg: float, max_mm: float) -> np.ndarray:
    """A 4x4 RAS rigid motion: rotation (between half and all of ``max_deg``) about a random
    axis through ``centre``, then a translation of between half and all of ``max_mm``."""
    axis = rng.standard_normal(3)
    axis /= np.linalg.norm(axis)
    angle = math.radians(max_deg) * rng.uniform(0.5, 1.0)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    rot = np.eye(3) + math.sin(angle) * k + (1 - math.cos(angle)) * k @ k
    shift = rng.standard_normal(3)
    shift *= max_mm * rng.uniform(0.5, 1.0) / np.linalg.norm(shift)
    motion = np.eye(4)
    motion[:3, :3] = rot
    motion[:3, 3] = centre - rot @ centre + shift
    return motion


def thick_slices(array: np.ndarray, thick_mm: float) -> tuple[np.ndarray, float]:
    """``(X, Y, Z)`` at 1 mm -> ``(X, Y, z)`` slices ``thick_mm`` apart (slice profile: Gaussian,
    FWHM = thickness). Returns the array and the exact slice spacing used."""
    from scipy import ndimage as ndi

    smooth = ndi.gaussian_filter1d(array.astype(np.float32), thick_mm / 2.355, axis=2, mode="nearest")
    n = int(array.shape[2] // thick_mm)
    z = np.arange(n) * thick_mm + (array.shape[2] - 1 - (n - 1) * thick_mm) / 2
    lo = np.floor(z).astype(int)
    hi = np.minimum(lo + 1, array.shape[2] - 1)
    w = (z - lo).astype(np.float32)
    return smooth[:, :, lo] * (1 - w) + smooth[:, :, hi] * w, float(thick_mm)


def _shifted_affine(affine: np.ndarray, first_z: float, thick: float) -> np.ndarray:
    out = affine @ np.diag([1.0, 1.0, thick, 1.0])
    out[:3, 3] = affine[:3, :3] @ np.array([0.0, 0.0, first_z]) + affine[:3, 3]
    return out


def ras_ordered(array: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The same image stored with voxel axes along +R, +A, +S (flips only, exact)."""
    for axis in range(3):
        if affine[axis, axis] < 0:
            array = np.flip(array, axis)
            flip = np.eye(4)
            flip[axis, axis], flip[axis, 3] = -1, array.shape[axis] - 1
            affine = affine @ flip
    return np.ascontiguousarray(array), affine


def simulate_case(images: Mapping[str, str | Path], out: str | Path, seed: int = 0,
                  config: SimulationConfig | None = None) -> dict:
    """Write a scanner-like version of a BraTS case (``images``: modality -> file) into ``out``.

    Returns the truth (also written to ``out/truth.json``): per sequence the file, the
    motion ``M`` (4x4 RAS) and the slice thickness; and the brain centre used."""
    cfg = config or SimulationConfig()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    source = {m: read_image(p) for m, p in images.items()}
    ref = source["t1c"]
    brain = np.argwhere(ref.array > 0)
    centre = ref.affine[:3, :3] @ brain.mean(0) + ref.affine[:3, 3]
    truth: dict = {"seed": seed, "centre": centre.tolist(), "sequences": {}}
    for m in sorted(source):
        img = source[m]
        motion = random_motion(rng, centre, cfg.max_deg, cfg.max_mm)
        array, affine, thick = img.array, motion @ img.affine, None
        if m in ("t2w", "t2f"):
            thick = float(rng.uniform(*cfg.thick_mm))
            first = (array.shape[2] - 1 - (int(array.shape[2] // thick) - 1) * thick) / 2
            array, thick = thick_slices(array, thick)
            affine = _shifted_affine(affine, first, thick)
        if m == "t1c":
            array, affine = ras_ordered(array, affine)
        path = out / SIMULATED_FILES[m]
        if m == "t1n" and cfg.dicom:
            write_dicom_series(path, array, affine, patient_id=cfg.patient_id, description="T1 AX 3D",
                               series_number=3)
        else:
            if m == "t1n":
                path = out / "t1n.nii.gz"
            write_image(path, array.astype(np.float32), Image(array, affine))
        truth["sequences"][m] = {"file": path.name, "motion": motion.tolist(), "thick_mm": thick}
    write_text(out / "truth.json", json.dumps(truth, indent=1))
    return truth


def write_dicom_series(folder: str | Path, array: np.ndarray, affine: np.ndarray, *, patient_id: str,
                       description: str, series_number: int = 1, image_type: str = "ORIGINAL\\PRIMARY\\M\\ND",
                       study_uid: str | None = None, positions: np.ndarray | None = None) -> Path:
    """Write ``array`` ``(X, Y, Z)`` (RAS ``affine``) as one MR DICOM file per slice into ``folder``.

    ``positions``: optional slice positions (mm along the slice normal, one per slice) to
    write instead of the grid's (tests use it to make uneven spacing)."""
    import SimpleITK as sitk

    from .sitk_images import to_sitk

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stored = np.clip(np.round(array), -32768, 32767).astype(np.int16)  # MR units are arbitrary: no rescale
    vol = sitk.Cast(to_sitk(Image(stored, affine)), sitk.sitkInt16)
    direction = np.asarray(vol.GetDirection()).reshape(3, 3)
    study = study_uid or "1.2.826.0.1.3680043.8.498." + str(int(hashlib.sha1(patient_id.encode()).hexdigest()[:10], 16))
    series = f"{study}.{series_number}"
    tags = {
        "0008|0060": "MR", "0008|0016": "1.2.840.10008.5.1.4.1.1.4", "0008|0008": image_type,
        "0010|0010": f"SIM^{patient_id}", "0010|0020": patient_id, "0020|000d": study, "0020|000e": series,
        "0020|0052": f"{study}.0", "0008|103e": description, "0020|0011": str(series_number),
        "0020|0037": "\\".join(f"{x:.8f}" for x in (*direction[:, 0], *direction[:, 1])),
        "0018|0050": f"{vol.GetSpacing()[2]:.4f}", "0008|0020": "20200101", "0008|0030": "120000",
    }
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    kept = locale.setlocale(locale.LC_ALL)  # GDCM's writer leaves the process in the "C" (ASCII) locale
    try:
        _write_slices(writer, vol, folder, tags, series, direction, positions)
    finally:
        locale.setlocale(locale.LC_ALL, kept)
    return folder


def _write_slices(writer, vol, folder: Path, tags: dict, series: str, direction: np.ndarray, positions) -> None:
    for k in range(vol.GetDepth()):
        sl = vol[:, :, k]
        for key, value in tags.items():
            sl.SetMetaData(key, value)
        pos = vol.TransformIndexToPhysicalPoint((0, 0, k))
        if positions is not None:
            pos = np.asarray(vol.GetOrigin()) + direction[:, 2] * positions[k]
        sl.SetMetaData("0020|0032", "\\".join(f"{x:.6f}" for x in pos))
        sl.SetMetaData("0020|0013", str(k + 1))
        sl.SetMetaData("0008|0018", f"{series}.{k + 1}")
        writer.SetFileName(str(folder / f"IM{k + 1:04d}.dcm"))
        writer.Execute(sl)


def registration_error(transform, truth: dict, sequence: str, brain_points_ras: np.ndarray) -> np.ndarray:
    """Distances (mm) between where ``transform`` (ITK, T1c-native -> ``sequence``-native, LPS)
    sends each T1c-native brain point ``(N, 3)`` RAS and where the known motions say it belongs."""
    seqs = truth["sequences"]
    true = np.asarray(seqs[sequence]["motion"]) @ np.linalg.inv(np.asarray(seqs["t1c"]["motion"]))
    pts = np.c_[brain_points_ras, np.ones(len(brain_points_ras))]
    expected = (pts @ true.T)[:, :3]
    lps = (pts @ LPS_FROM_RAS.T)[:, :3]
    got = np.array([transform.TransformPoint(tuple(p)) for p in lps]) * np.array([-1.0, -1.0, 1.0])
    return np.linalg.norm(got - expected, axis=1)
