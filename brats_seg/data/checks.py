"""Integrity checks of cases before any work starts (``brats-seg check``).

Per case: every modality present and not duplicated; same shape and affine
(within :data:`AFFINE_ATOL` mm + :data:`AFFINE_RTOL` relative) across modalities
and the label; finite values; no all-zero volume; 3-D where 3-D is expected
(4-D only for MSD's one-file-per-case images); files readable and complete;
integer label values inside the label scheme; a scheme that is known, not
guessed (values that fit several schemes without a layout hint are an error
unless the whole dataset's values decide it).

Each file is read once. ``.nii.gz`` files are decompressed in one piece (ISA-L's
``igzip`` when the ``isal`` package is installed, else :mod:`gzip`), which
verifies the gzip CRC and length: a truncated or bit-flipped file is reported
even where nibabel's streaming reader would not notice (it reads only the bytes
the header asks for and never reaches the CRC).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np

# ISA-L's gzip (a dependency): the same format and CRC check, about 1.6x faster than zlib (benchmarks/bench_check.py)
from isal.igzip import decompress as _gunzip

from ..conventions import MODALITIES, AmbiguousSchemeError, detect_dataset_schemes, detect_scheme, get_scheme
from ..errors import BratsSegError, CaseError
from .cases import Case
from .io import Image, read_image
from .layouts import discover_cases

AFFINE_ATOL = 1e-3
"""Absolute affine tolerance (mm, and mm per voxel for the rotation/zoom part)."""
AFFINE_RTOL = 1e-4
"""Relative affine tolerance."""


@dataclass
class CheckResult:
    """The verdict on one case. ``ok`` is True exactly when ``errors`` is empty.

    ``shape``: the spatial shape of the images (of the label when no image is
    readable), or None. ``label_values``: the distinct label values (None without
    a readable label). ``ambiguity``: the error text when the label values fit
    several schemes and nothing decided (:func:`check_dataset` may resolve it).
    """

    case: str
    ok: bool
    layout: str
    label_scheme: str | None
    modalities: list[str]
    shape: list[int] | None
    errors: list[str]
    label_values: list[int] | None = None
    ambiguity: str | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        """The JSON record of ``brats-seg check --json``."""
        return {"case": self.case, "ok": self.ok, "layout": self.layout, "label_scheme": self.label_scheme,
                "modalities": list(self.modalities), "shape": self.shape, "errors": list(self.errors)}


def _fmt(shape: Sequence[int]) -> str:
    return "x".join(str(int(s)) for s in shape)


def read_volume(path: str | Path) -> Image:
    """Read a volume in its stored data type, verifying a ``.nii.gz`` stream to its end.

    Raises :class:`CaseError` naming the file when it is missing, unreadable,
    truncated or corrupt.
    """
    path = Path(path)
    if not str(path).lower().endswith(".nii.gz") or not path.is_file():
        return read_image(path, dtype=None)
    try:
        data = _gunzip(path.read_bytes())
    except Exception as e:  # EOFError (truncated), BadGzipFile (CRC, not gzip), zlib errors
        raise CaseError(f"{path}: corrupt or truncated file ({e})") from None
    try:
        img = nib.Nifti1Image.from_bytes(data)
        array = np.asanyarray(img.dataobj)
    except Exception as e:  # nibabel raises many types for bad headers
        detail = str(e).splitlines()[0] if str(e) else e.__class__.__name__
        raise CaseError(f"{path}: unreadable ({detail})") from None
    return Image(np.asarray(array), np.asarray(img.affine, dtype=np.float64), img.header, path)


def _affine_error(affine: np.ndarray, reference: np.ndarray) -> float | None:
    """Largest affine difference, or None when within tolerance."""
    if np.allclose(affine, reference, rtol=AFFINE_RTOL, atol=AFFINE_ATOL):
        return None
    return float(np.abs(affine - reference).max())


def _volume_errors(name: str, array: np.ndarray) -> list[str]:
    errors = []
    if array.dtype.kind in "fc":
        bad = array.size - int(np.count_nonzero(np.isfinite(array)))
        if bad:
            errors.append(f"{name} has {bad} NaN/Inf voxels")
    if not array.any():
        errors.append(f"{name} is all zero")
    return errors


def _label_values(array: np.ndarray) -> tuple[list[int] | None, list[str]]:
    """Distinct integer values of a label map, or the errors that make it no label map."""
    if array.dtype.kind == "b":
        array = array.view(np.uint8)
    if array.dtype.kind in "fc":
        finite = np.isfinite(array)
        if not finite.all():
            return None, [f"label has {array.size - int(np.count_nonzero(finite))} NaN/Inf voxels"]
        fractional = array[array != np.rint(array)]
        if fractional.size:
            return None, [f"label has non-integer values (e.g. {float(fractional.flat[0]):g});"
                          " a label map holds integer classes"]
    if not array.size:
        return [], []
    lo, hi = int(array.min()), int(array.max())
    if hi - lo < 32:  # the usual case (0..4): one comparison pass per value is far faster than np.unique's sort
        return [v for v in range(lo, hi + 1) if (array == v).any()], []
    return [int(v) for v in np.unique(array)], []


def _scheme_of(values: list[int], case: Case, forced: str | None) -> tuple[str | None, str | None, bool]:
    """(scheme, error, ambiguous) for a case's label values."""
    if forced is not None:
        scheme = get_scheme(forced)
        outside = sorted(set(values) - scheme.values)
        if outside:
            return None, (f"label values {outside} are outside scheme {scheme.name}"
                          f" (valid {sorted(scheme.values)})"), False
        return scheme.name, None, False
    try:
        return detect_scheme(values, hint=case.label_scheme, case_id=case.case_id), None, False
    except BratsSegError as e:
        return None, f"label: {e}", isinstance(e, AmbiguousSchemeError)


@dataclass
class _Reference:
    """The first good modality of a case: shapes and affines are compared with it."""

    name: str
    image: Image


def _read_files(case: Case, errors: list[str]) -> dict[Path, Image | None]:
    """Each image file of ``case`` read once (None where unreadable, with the error added)."""
    files: dict[Path, Image | None] = {}
    for path in dict.fromkeys(case.images[m] for m in case.modalities):
        try:
            files[path] = read_volume(path)
        except CaseError as e:
            errors.append(_short(e, path))
            files[path] = None
    return files


def _modality_array(case: Case, modality: str, files: dict[Path, Image | None], errors: list[str]) -> np.ndarray | None:
    """The 3-D volume of ``modality`` (one volume of a 4-D MSD file), or None (error added)."""
    img = files[case.images[modality]]
    if img is None:
        return None
    array, fname = img.array, case.images[modality].name
    if modality in case.channel_index:
        index = case.channel_index[modality]
        if array.ndim != 4 or index >= array.shape[3]:
            order = sorted((i, m) for m, i in case.channel_index.items() if case.images.get(m) == img.path)
            errors.append(f"{fname} has shape {_fmt(array.shape)}; expected 4-D with {len(order)} volumes"
                          f" ({', '.join(m for _, m in order)}) along the 4th axis")
            files[img.path] = None  # one error per file
            return None
        return array[..., index]
    if array.ndim != 3:
        errors.append(f"{modality} file {fname} is {array.ndim}-D with shape {_fmt(array.shape)};"
                      " expected a 3-D volume")
        return None
    return array


def _geometry_errors(name: str, img: Image, ref: _Reference) -> list[str]:
    """Shape, then affine, of ``img`` against the reference modality's."""
    if img.shape != ref.image.shape:
        return [f"{name} has shape {_fmt(img.shape)}, {ref.name} has {_fmt(ref.image.shape)}"]
    if (diff := _affine_error(img.affine, ref.image.affine)) is not None:
        return [f"{name} affine differs from {ref.name}'s by up to {diff:.4g} mm"
                f" ({img.path.name} vs {ref.image.path.name})"]
    return []


def _image_errors(case: Case, errors: list[str]) -> _Reference | None:
    """Check every modality's volume (values, shape, affine); returns the reference modality."""
    files = _read_files(case, errors)
    ref = None
    for modality in case.modalities:
        array = _modality_array(case, modality, files, errors)
        if array is None:
            continue
        errors.extend(_volume_errors(modality, array))
        img = files[case.images[modality]]
        img = Image(array, img.affine, img.header, img.path)
        if ref is None:
            ref = _Reference(modality, img)
        else:
            errors.extend(_geometry_errors(modality, img, ref))
    return ref


def _label_checks(case: Case, ref: _Reference | None, scheme: str | None, label_scheme: str | None,
                  errors: list[str]) -> tuple[list[int] | None, str | None, str | None, list[int] | None]:
    """(label values, scheme, ambiguity error, label shape) of the case's label map; errors added.
    ``label_scheme`` is returned unchanged when the values cannot be read."""
    try:
        lab = read_volume(case.label)
    except CaseError as e:
        errors.append(_short(e, case.label))
        return None, label_scheme, None, None
    if lab.array.ndim != 3:
        errors.append(f"label file {case.label.name} is {lab.array.ndim}-D with shape {_fmt(lab.shape)};"
                      " expected a 3-D volume")
        return None, label_scheme, None, None
    if ref is not None:
        errors.extend(_geometry_errors("label", lab, ref))
    values, value_errors = _label_values(lab.array)
    errors.extend(value_errors)
    ambiguity = None
    if values is not None:
        label_scheme, error, ambiguous = _scheme_of(values, case, scheme)
        if error:
            errors.append(error)
            ambiguity = error if ambiguous else None
    return values, label_scheme, ambiguity, list(lab.shape)


def check_case(case: Case, scheme: str | None = None) -> CheckResult:
    """Check one case's files (see the module docstring); never raises for bad data.

    ``scheme``: the label scheme the labels must follow; None detects it from the
    values and the layout's hint (``case.label_scheme``).
    """
    errors = list(case.problems)
    missing = [m for m in MODALITIES if m not in case.images]
    if missing:
        found = ", ".join(case.modalities) or "none"
        errors.append(f"missing modality {', '.join(missing)} (found {found})")
    ref = _image_errors(case, errors)
    shape = list(ref.image.shape) if ref is not None else None
    values, label_scheme, ambiguity = None, (scheme and get_scheme(scheme).name) or case.label_scheme, None
    if case.label is not None:
        values, label_scheme, ambiguity, label_shape = _label_checks(case, ref, scheme, label_scheme, errors)
        shape = shape or label_shape
    return CheckResult(case.case_id, not errors, case.layout, label_scheme, list(case.modalities), shape,
                       errors, values, ambiguity)


def _short(error: CaseError, path: Path) -> str:
    """A read error with the file's name instead of its full path (the case is known)."""
    return str(error).replace(str(path), path.name, 1)


def _resolve_ambiguity(cases: Sequence[Case], results: list[CheckResult]) -> None:
    """Decide the schemes per dataset (:func:`~brats_seg.conventions.detect_dataset_schemes`).

    A dataset follows one convention: cases whose naming and hint allow the same schemes
    are read in the scheme all their values together settle (a BraTS-PED case holding
    only 0-3 is brats2024-ped when another case of the dataset holds a 4).
    """
    maps = {i: (r.label_values, c.label_scheme, c.case_id) for i, (c, r) in enumerate(zip(cases, results))
            if r.label_values is not None and (r.ambiguity or r.label_scheme)}
    for i, name in detect_dataset_schemes(maps).items():
        r = results[i]
        if isinstance(name, str):
            if r.ambiguity:
                r.errors.remove(r.ambiguity)
            r.label_scheme, r.ambiguity, r.ok = name, None, not r.errors


def check_cases(cases: Sequence[Case], scheme: str | None = None, *, progress: bool = True,
                workers: int | None = None) -> list[CheckResult]:
    """:func:`check_case` over ``cases`` on a thread pool (decompression and numpy release
    the GIL), in the order given, with a tqdm bar on stderr for more than a few cases."""
    from tqdm.auto import tqdm

    if scheme is not None:
        get_scheme(scheme)  # an unknown name is bad input, not a bad case
    workers = workers or min(4, os.cpu_count() or 1, max(1, len(cases)))
    with ThreadPoolExecutor(workers) as pool, tqdm(total=len(cases), desc="check", unit="case", file=sys.stderr,
                                                 disable=not progress or len(cases) <= 4) as bar:
        results = []
        for result in pool.map(lambda c: check_case(c, scheme), cases):
            results.append(result)
            bar.update()
    if scheme is None:
        _resolve_ambiguity(cases, results)
    return results


def check_dataset(root: str | Path, layout: str | None = None, scheme: str | None = None, *,
                  progress: bool = True) -> list[CheckResult]:
    """Discover the cases under ``root`` (see :func:`~brats_seg.data.layouts.discover_cases`) and check
    each. Raises :class:`CaseError` only when no case can be found; bad cases are results."""
    return check_cases(discover_cases(root, layout), scheme, progress=progress)
