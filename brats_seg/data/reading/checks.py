"""Integrity checks of cases: the one gate every command reads scans through.

Per case: every modality present and not duplicated; same shape and affine
(within :data:`AFFINE_ATOL` mm + :data:`AFFINE_RTOL` relative) across modalities
and the label; finite values; no all-zero volume; 3-D where 3-D is expected
(4-D only for MSD's one-file-per-case images); files readable and complete;
integer label values inside the label scheme; a scheme that is known, not
guessed (values that fit several schemes without a layout hint are an error
unless the whole dataset's values decide it).

``brats-seg check`` reports these (:func:`check_case`, :func:`check_dataset`).
Every other command reads a case through :func:`read_case` (what
:func:`brats_seg.data.reading.volumes.load_case` runs): the same checks on the arrays it
reads, and a case with any problem is refused in one line (:class:`CaseError`)
before any work. Label maps alone (``evaluate``'s references and predictions) go
through :func:`read_label_map` and :func:`geometry_error`.

Each file is read once. ``.nii.gz`` files are decompressed in one piece (ISA-L's ``igzip``),
which verifies the gzip CRC and length: a truncated or bit-flipped file is reported even where
nibabel's streaming reader, which never reaches the CRC, would not notice."""

from __future__ import annotations

import os
import sys
from collections.abc import Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np

# ISA-L's gzip (a dependency): the same format and CRC check, about 1.6x faster than zlib (benchmarks/bench_check.py)
from isal.igzip import decompress as _gunzip

from ...conventions import MODALITIES, AmbiguousSchemeError, detect_dataset_schemes, detect_scheme, get_scheme
from ...errors import BratsSegError, CaseError
from .cases import Case, CaseVolumes
from .image_io import Image, read_image
from .intensity import intensity_stats
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
    missing: list[str] = field(default_factory=list)
    """Modalities absent that the caller allowed to be missing (not errors)."""
    findings: list[str] = field(default_factory=list)
    """Facts worth reporting that do not make the case invalid (an allowed missing modality)."""
    intensity: dict = field(default_factory=dict)
    """Per sequence, raw intensity statistics inside the brain (:mod:`.intensity`); empty for an invalid case."""

    def to_dict(self) -> dict:
        """The JSON record of ``brats-seg check --json``."""
        return {"case": self.case, "ok": self.ok, "layout": self.layout, "label_scheme": self.label_scheme,
                "modalities": list(self.modalities), "shape": self.shape, "errors": list(self.errors),
                "missing": list(self.missing), "findings": list(self.findings), "intensity": self.intensity}


def _fmt(shape: Sequence[int]) -> str:
    return "x".join(str(int(s)) for s in shape)


# --------------------------------------------------------------------------- one file

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


def _volume_errors(name: str, array: np.ndarray) -> list[str]:
    errors = []
    if array.dtype.kind in "fc":
        bad = array.size - int(np.count_nonzero(np.isfinite(array)))
        if bad:
            errors.append(f"{name} has {bad} NaN/Inf voxels")
    if not array.any():
        errors.append(f"{name} is all zero")
    return errors


def _label_values(array: np.ndarray) -> tuple[list[int] | None, str | None]:
    """Distinct integer values of a label map, or the error that makes it no label map."""
    if array.dtype.kind == "b":
        array = array.view(np.uint8)
    if array.dtype.kind in "fc":
        finite = np.isfinite(array)
        if not finite.all():
            return None, f"label has {array.size - int(np.count_nonzero(finite))} NaN/Inf voxels"
        fractional = array[array != np.rint(array)]
        if fractional.size:
            return None, (f"label has non-integer values (e.g. {float(fractional.flat[0]):g});"
                          " a label map holds integer classes")
    if not array.size:
        return [], None
    lo, hi = int(array.min()), int(array.max())
    if hi - lo < 32:  # the usual case (0..4): one comparison pass per value is far faster than np.unique's sort
        return [v for v in range(lo, hi + 1) if (array == v).any()], None
    return [int(v) for v in np.unique(array)], None


@dataclass
class LabelMap:
    """A label map read and checked: ``image.array`` (H, W, D) holds integer classes
    (float files with integral values become int32); ``values``: its distinct values."""

    image: Image
    values: list[int]


def read_label_map(path: str | Path) -> LabelMap:
    """Read a label map through :func:`read_volume` and refuse what is no label map: not 3-D
    (trailing axes of size 1 are dropped), NaN/Inf or non-integer values. Raises :class:`CaseError`
    naming the file."""
    img = read_volume(path)
    array = img.array
    while array.ndim > 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 3:
        raise CaseError(f"{path}: label is {array.ndim}-D with shape {_fmt(array.shape)}; expected a 3-D volume")
    values, error = _label_values(array)
    if error:
        raise CaseError(f"{path}: {error}")
    if array.dtype.kind in "fc":
        array = array.astype(np.int32)
    return LabelMap(Image(array, img.affine, img.header, img.path), values)


def geometry_error(name: str, img: Image, ref_name: str, ref: Image) -> str | None:
    """Shape, then affine, of ``img`` against ``ref`` (None when they agree within tolerance)."""
    if img.shape[:3] != ref.shape[:3]:
        return f"{name} has shape {_fmt(img.shape[:3])}, {ref_name} has {_fmt(ref.shape[:3])}"
    if not np.allclose(img.affine, ref.affine, rtol=AFFINE_RTOL, atol=AFFINE_ATOL):
        return f"{name} affine differs from {ref_name} by up to {np.abs(img.affine - ref.affine).max():.4g} mm"
    return None


# --------------------------------------------------------------------------- one case

@dataclass
class _Read:
    """What the checks read of a case: each modality's 3-D volume, the reference modality
    (shapes and affines are compared with it) and the label map."""

    volumes: dict[str, Image] = field(default_factory=dict)
    ref: str | None = None
    label: LabelMap | None = None


def _named(modality: str, path: Path) -> str:
    return f"{modality} ({path.name})"


def _read_files(case: Case, modalities: Sequence[str], errors: list[str]) -> dict[Path, Image | None]:
    """Each file of ``modalities`` read once (None where unreadable, with the error added)."""
    files: dict[Path, Image | None] = {}
    for path in dict.fromkeys(case.images[m] for m in modalities):
        try:
            files[path] = read_volume(path)
        except CaseError as e:
            errors.append(_short(e, path))
            files[path] = None
    return files


def _modality_image(case: Case, modality: str, files: dict[Path, Image | None], errors: list[str]) -> Image | None:
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
        return Image(array[..., index], img.affine, img.header, img.path)
    if array.ndim != 3:
        errors.append(f"{modality} file {fname} is {array.ndim}-D with shape {_fmt(array.shape)};"
                      " expected a 3-D volume")
        return None
    return img


def _image_checks(case: Case, modalities: Sequence[str], read: _Read, errors: list[str]) -> None:
    """Read and check each modality's volume (values, then shape and affine against the first good one)."""
    files = _read_files(case, modalities, errors)
    for modality in modalities:
        img = _modality_image(case, modality, files, errors)
        if img is None:
            continue
        errors.extend(_volume_errors(_named(modality, img.path), img.array))
        if read.ref is None:
            read.ref = modality
        else:
            ref = read.volumes[read.ref]
            if problem := geometry_error(_named(modality, img.path), img, _named(read.ref, ref.path), ref):
                errors.append(problem)
        read.volumes[modality] = img


def _scheme_of(values: list[int], case: Case, forced: str | None) -> tuple[str | None, str | None, bool]:
    """(scheme, error, ambiguous) for a case's label values."""
    forced = forced if forced is not None or not case.scheme_given else case.label_scheme
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
        return None, str(e), isinstance(e, AmbiguousSchemeError)


def _label_checks(case: Case, read: _Read, result: CheckResult, forced: str | None) -> None:
    """Read and check the label map into ``read.label``: values, geometry, scheme (into ``result``)."""
    try:
        read.label = lab = read_label_map(case.label)
    except CaseError as e:
        result.errors.append(_short(e, case.label))
        return
    if read.ref is not None:
        ref = read.volumes[read.ref]
        if problem := geometry_error(_named("label", case.label), lab.image, _named(read.ref, ref.path), ref):
            result.errors.append(problem)
    result.label_values = lab.values
    result.shape = result.shape or list(lab.image.shape)
    scheme, error, ambiguous = _scheme_of(lab.values, case, forced)
    if error:
        result.errors.append(f"{case.label.name}: {error}")
        result.ambiguity = result.errors[-1] if ambiguous else None
    result.label_scheme = scheme


def _inspect(case: Case, modalities: Sequence[str], scheme: str | None, allow_missing: Collection[str],
             with_label: bool) -> tuple[CheckResult, _Read]:
    """Read ``modalities`` of ``case`` (and its label) once and check everything; never raises for bad data."""
    result = CheckResult(case.case_id, False, case.layout, (scheme and get_scheme(scheme).name) or case.label_scheme,
                         list(case.modalities), None, list(case.problems))
    absent = [m for m in modalities if m not in case.images]
    result.missing = [m for m in absent if m in allow_missing] if case.images else []  # none at all: an error
    found = ", ".join(case.modalities) or "none"
    if result.missing:
        result.findings.append(f"missing modality {', '.join(result.missing)} (allowed; found {found})")
    if len(result.missing) < len(absent):
        result.errors.append(f"missing modality {', '.join(m for m in absent if m not in result.missing)}"
                             f" (found {found})")
    read = _Read()
    _image_checks(case, [m for m in modalities if m in case.images], read, result.errors)
    if read.ref is not None:
        result.shape = list(read.volumes[read.ref].shape)
    if with_label and case.label is not None:
        _label_checks(case, read, result, scheme)
    result.ok = not result.errors
    return result, read


RELEASED_CHANNELS: dict[str, tuple[str, ...]] = {"brats2024-men-rt": ("t1c",)}
"""Label scheme -> the sequences its data is released with, where not all four (MEN-RT: T1c only)."""


def check_case(case: Case, scheme: str | None = None, *, allow_missing: Collection[str] = ()) -> CheckResult:
    """Check one case's files (see the module docstring); never raises for bad data.

    ``scheme``: the label scheme the labels must follow; None detects it from the
    values and the layout's hint (``case.label_scheme``). ``allow_missing``: modalities
    whose absence is a finding (``result.findings``), not an error (a model trained
    for the subset without them).
    """
    expected = RELEASED_CHANNELS.get(scheme or case.label_scheme or "", MODALITIES)
    result, read = _inspect(case, tuple(dict.fromkeys([*expected, *case.modalities])), scheme, allow_missing, True)
    if result.ok and read.volumes:
        names = list(read.volumes)
        result.intensity = intensity_stats(np.stack([read.volumes[m].array for m in names]), names)
    return result


def read_case(case: Case, channels: Sequence[str] = MODALITIES, *, with_label: bool = True,
              scheme: str | None = None, allow_missing: Collection[str] = ()) -> CaseVolumes:
    """The gate: read ``channels`` (and the label) once, apply every check of :func:`check_case`
    to them, and return the volumes; raise :class:`CaseError` (one line: the case and each problem,
    naming its file) on any problem.

    A label scheme left open by the case's own values is not an error here (the caller
    may decide it over the dataset); ``vol.label_scheme`` is then the layout's hint.
    Channels in ``allow_missing`` that the case lacks are left out of ``vol.image`` and
    ``vol.channels``.
    """
    result, read = _inspect(case, tuple(channels), scheme, allow_missing, with_label)
    errors = [e for e in result.errors if e != result.ambiguity]
    if errors:
        raise CaseError(f"case {case.case_id}: {'; '.join(errors)}")
    present = tuple(m for m in channels if m in read.volumes)
    if not present:
        raise CaseError(f"case {case.case_id}: none of the modalities {', '.join(channels)} is present")
    image = np.empty((len(present), *read.volumes[present[0]].shape), np.float32)
    for i, m in enumerate(present):
        image[i] = read.volumes[m].array
    label = None
    if read.label is not None:
        label = read.label.image.array.astype(np.uint8)  # values checked: a scheme's, so 0..4
    return CaseVolumes(case.case_id, image, present, label, read.volumes[present[0]],
                       result.label_scheme or case.label_scheme)


def _short(error: CaseError, path: Path) -> str:
    """A read error with the file's name instead of its full path (the case is known)."""
    return str(error).replace(str(path), path.name, 1)


# --------------------------------------------------------------------------- a dataset

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
                workers: int | None = None, allow_missing: Collection[str] = ()) -> list[CheckResult]:
    """:func:`check_case` over ``cases`` on a thread pool (decompression and numpy release
    the GIL), in the order given, with a tqdm bar on stderr for more than a few cases."""
    from tqdm.auto import tqdm

    if scheme is not None:
        get_scheme(scheme)  # an unknown name is bad input, not a bad case
    workers = workers or min(4, os.cpu_count() or 1, max(1, len(cases)))
    with ThreadPoolExecutor(workers) as pool, tqdm(total=len(cases), desc="check", unit="case", file=sys.stderr,
                                                 disable=not progress or len(cases) <= 4) as bar:
        results = []
        for result in pool.map(lambda c: check_case(c, scheme, allow_missing=allow_missing), cases):
            results.append(result)
            bar.update()
    if scheme is None:
        _resolve_ambiguity(cases, results)
    return results


def check_dataset(root: str | Path, layout: str | None = None, scheme: str | None = None, *,
                  progress: bool = True, allow_missing: Collection[str] = ()) -> list[CheckResult]:
    """Discover the cases under ``root`` (see :func:`~brats_seg.data.reading.layouts.discover_cases`) and check
    each. Raises :class:`CaseError` only when no case can be found; bad cases are results."""
    return check_cases(discover_cases(root, layout), scheme, progress=progress, allow_missing=allow_missing)
