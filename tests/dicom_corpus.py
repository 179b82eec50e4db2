"""A DICOM test corpus written with pydicom from a crop of a real case, the ways scanners and PACS
write it (issue 24). Each variant is a folder and what reading it must give: the source volume
(voxels ``(X, Y, Z)`` and LPS geometry) or the fragment of the one-line refusal.

    from dicom_corpus import write_corpus
    corpus = write_corpus(volume, tmp_path)      # {name: Variant}
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
    generate_uid,
)

MR = "1.2.840.10008.5.1.4.1.1.4"
ENHANCED_MR = "1.2.840.10008.5.1.4.1.1.4.1"
SPACING = (0.9375, 0.9375, 3.0)
ORIGIN = (-20.0, -25.0, 10.0)


@dataclass
class Source:
    """What a series holds: ``values`` ``(X, Y, Z)`` (what a reader must give) and LPS geometry
    (``direction`` columns: row, column and slice axes)."""

    values: np.ndarray
    direction: np.ndarray
    origin: np.ndarray
    spacing: tuple[float, float, float] = SPACING

    def position(self, k: float) -> np.ndarray:
        return self.origin + self.direction[:, 2] * self.spacing[2] * k

    def ras_affine(self) -> np.ndarray:
        aff = np.eye(4)
        aff[:3, :3] = self.direction * np.asarray(self.spacing)
        aff[:3, 3] = self.origin
        return np.diag([-1.0, -1.0, 1.0, 1.0]) @ aff


@dataclass
class Variant:
    """``folder`` to read; ``source`` it must equal, or ``refusal`` (a fragment of its one line)."""

    folder: Path
    source: Source | None = None
    refusal: str | None = None
    description: str = ""


def crop(volume: np.ndarray, size=(40, 36, 10)) -> np.ndarray:
    """A centred ``size`` crop of a real volume, as int16 values."""
    start = [(n - s) // 2 for n, s in zip(volume.shape, size)]
    return np.round(volume[tuple(slice(a, a + s) for a, s in zip(start, size))]).astype(np.int16)


def rotation(deg_x: float, deg_y: float) -> np.ndarray:
    a, b = np.radians(deg_x), np.radians(deg_y)
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    return rx @ ry


STUDY = {"PatientName": "CORPUS^ANON", "PatientID": "CORPUS01", "StudyDescription": "MRI BRAIN W/WO CONTRAST",
         "StudyDate": "20240105", "StudyTime": "101500", "AccessionNumber": "A12345", "Manufacturer": "SIEMENS",
         "ManufacturerModelName": "Skyra", "MagneticFieldStrength": "3", "PatientSex": "O", "StudyID": "1"}


class Writer:
    """Writes series of one study the way a scanner does (one UID per study, per frame of reference)."""

    def __init__(self, root: Path):
        self.root = root
        self.study = generate_uid()
        self.frame_of_reference = generate_uid()

    def slices(self, source: Source, description: str, number: int, *, image_type="ORIGINAL\\PRIMARY\\M\\ND",
               positions=None, orientation=None, rescale=None, extra=None) -> list[Dataset]:
        """One classic MR dataset per slice; ``positions`` / ``orientation`` (per slice) override the grid's."""
        series, out = generate_uid(), []
        for k in range(source.values.shape[2]):
            ds = Dataset()
            for key, value in STUDY.items():
                setattr(ds, key, value)
            ori = source.direction if orientation is None else orientation[k]
            stored = source.values[:, :, k].T  # (rows, columns)
            if rescale is not None:
                slope, intercept = rescale
                ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = f"{slope}", f"{intercept}", "US"
                stored = np.round((stored - intercept) / slope)
            ds.update({"SOPClassUID": MR, "SOPInstanceUID": generate_uid(), "StudyInstanceUID": self.study,
                       "SeriesInstanceUID": series, "FrameOfReferenceUID": self.frame_of_reference,
                       "Modality": "MR", "SeriesDescription": description, "SeriesNumber": number,
                       "InstanceNumber": k + 1, "ImageType": image_type.split("\\"),
                       "ImagePositionPatient": [f"{v:.6f}" for v in (source.position(k) if positions is None
                                                                     else positions[k])],
                       "ImageOrientationPatient": [f"{v:.8f}" for v in (*ori[:, 0], *ori[:, 1])],
                       "PixelSpacing": [f"{source.spacing[1]}", f"{source.spacing[0]}"],
                       "SliceThickness": f"{source.spacing[2]}", "SamplesPerPixel": 1,
                       "PhotometricInterpretation": "MONOCHROME2", "Rows": stored.shape[0],
                       "Columns": stored.shape[1], "BitsAllocated": 16, "BitsStored": 16, "HighBit": 15,
                       "PixelRepresentation": 1})
            for key, value in (extra or {}).items():
                setattr(ds, key, value)
            ds.PixelData = np.ascontiguousarray(stored.astype(np.int16)).tobytes()
            ds.file_meta = FileMetaDataset()
            ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = MR, ds.SOPInstanceUID
            ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
            out.append(ds)
        return out

    def enhanced(self, source: Source, description: str, number: int) -> Dataset:
        """One Enhanced MR object: all slices as frames, geometry in the functional groups."""
        first = self.slices(source, description, number)[0]
        ds = copy.deepcopy(first)
        for key in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "SliceThickness",
                    "InstanceNumber"):
            delattr(ds, key)
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = ENHANCED_MR
        ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "NONE"]
        ds.NumberOfFrames = source.values.shape[2]
        shared = Dataset()
        measures, orient = Dataset(), Dataset()
        measures.PixelSpacing = [f"{source.spacing[1]}", f"{source.spacing[0]}"]
        measures.SliceThickness = f"{source.spacing[2]}"
        d = source.direction
        orient.ImageOrientationPatient = [f"{v:.8f}" for v in (*d[:, 0], *d[:, 1])]
        shared.PixelMeasuresSequence, shared.PlaneOrientationSequence = [measures], [orient]
        ds.SharedFunctionalGroupsSequence = [shared]
        frames = []
        for k in range(source.values.shape[2]):
            frame, pos, content = Dataset(), Dataset(), Dataset()
            pos.ImagePositionPatient = [f"{v:.6f}" for v in source.position(k)]
            content.InStackPositionNumber, content.StackID = k + 1, "1"
            frame.PlanePositionSequence, frame.FrameContentSequence = [pos], [content]
            frames.append(frame)
        ds.PerFrameFunctionalGroupsSequence = frames
        ds.PixelData = np.ascontiguousarray(np.transpose(source.values, (2, 1, 0)).astype(np.int16)).tobytes()
        return ds

    def save(self, datasets: list[Dataset], folder: str, *, syntax=ExplicitVRLittleEndian, names=None,
             subfolders: int = 0, seed: int = 0) -> Path:
        """Write ``datasets`` into ``root/folder`` in ``syntax`` (compressed ones encoded by pydicom's
        encoders: RLE native, JPEG-LS through pyjpegls, JPEG 2000 through pylibjpeg-openjpeg); ``names``
        ``random``: shuffled meaningless file names; ``subfolders``: spread over that many nested folders."""
        target = self.root / folder
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(datasets)) if names == "random" else np.arange(len(datasets))
        for i, k in enumerate(order):
            ds = copy.deepcopy(datasets[k])
            if syntax in (RLELossless, JPEG2000Lossless, JPEGLSLossless):
                ds.compress(syntax)
            else:
                ds.file_meta.TransferSyntaxUID = syntax
                if syntax == ExplicitVRBigEndian:
                    bits = np.frombuffer(ds.PixelData, np.int16).astype(">i2")
                    ds.PixelData = bits.tobytes()
            name = f"{rng.integers(1 << 40):010x}" if names == "random" else f"IM{i + 1:04d}.dcm"
            sub = target.joinpath(*[f"{i % subfolders:02d}"] * 2) if subfolders else target
            sub.mkdir(parents=True, exist_ok=True)
            ds.save_as(sub / name, enforce_file_format=True,
                       little_endian=syntax != ExplicitVRBigEndian, implicit_vr=syntax == ImplicitVRLittleEndian)
        return target


def _tilted(source: Source, degrees: float) -> list[np.ndarray]:
    """Slice positions of a gantry tilt: each slice shifted along the column axis by step * tan(tilt)."""
    shift = source.spacing[2] * np.tan(np.radians(degrees))
    return [source.position(k) + source.direction[:, 1] * shift * k for k in range(source.values.shape[2])]


def write_corpus(volume: np.ndarray, root: Path) -> dict[str, Variant]:
    """Every variant below ``root`` from ``volume`` ``(X, Y, Z)`` int16 (a crop of a real case)."""
    w = Writer(root)
    axial = Source(volume, np.eye(3), np.asarray(ORIGIN))
    oblique = Source(volume, rotation(20.0, -12.0), np.asarray(ORIGIN))
    t1c = w.slices(axial, "AX T1 MPRAGE POST GD", 7)
    out: dict[str, Variant] = {}

    def exact(name, folder, source=axial, description=""):
        out[name] = Variant(folder, source, description=description)

    def refused(name, folder, fragment):
        out[name] = Variant(folder, refusal=fragment)

    for name, syntax in (("explicit little endian", ExplicitVRLittleEndian),
                         ("implicit little endian", ImplicitVRLittleEndian),
                         ("explicit big endian", ExplicitVRBigEndian), ("deflate", DeflatedExplicitVRLittleEndian),
                         ("RLE lossless", RLELossless), ("JPEG 2000 lossless", JPEG2000Lossless),
                         ("JPEG-LS lossless", JPEGLSLossless)):
        exact(name, w.save(t1c, name.replace(" ", "_"), syntax=syntax))
    enhanced = root / "enhanced"
    enhanced.mkdir()
    ds = w.enhanced(axial, "AX T1 MPRAGE POST GD", 8)
    ds.save_as(enhanced / "MF0001", enforce_file_format=True)
    exact("Enhanced MR multi-frame", enhanced)
    exact("random order, meaningless names", w.save(t1c, "random_names", names="random", seed=3))
    exact("nested folders", w.save(t1c, "nested", subfolders=3))
    exact("DICOMDIR (pydicom FileSet)", _dicomdir(t1c, root / "dicomdir"))
    scaled = Source(volume.astype(np.float32) * 0.5 + 10.0, axial.direction, axial.origin)
    exact("rescale slope 0.5 / intercept 10", w.save(w.slices(scaled, "AX T1 POST", 9, rescale=(0.5, 10.0)),
                                                       "rescale"), scaled)
    exact("oblique (20 and -12 degrees)", w.save(w.slices(oblique, "OBL T1 POST GD", 10), "oblique"), oblique)
    no_for = [copy.deepcopy(d) for d in t1c]
    for d in no_for:
        del d.FrameOfReferenceUID
    exact("no Frame of Reference UID", w.save(no_for, "no_frame_of_reference"))
    exact("non-ASCII patient name (ISO_IR 192)", w.save(
        w.slices(axial, "AX T1 POST Kontrastmittel", 11,
                 extra={"SpecificCharacterSet": "ISO_IR 192", "PatientName": "Müller^Zoë=ミュラー"}), "non_ascii"))
    refused("gantry tilt 12 degrees", w.save(w.slices(axial, "AX T1 POST", 12, positions=_tilted(axial, 12.0)),
                                              "gantry_tilt"), "gantry tilt 12.0 degrees")
    missing = t1c[:4] + t1c[5:]
    refused("missing slice", w.save(missing, "missing_slice"), "uneven slice spacing (3.00 to 6.00 mm")
    uneven = [axial.position(k + (0.4 if k > 6 else 0.0)) for k in range(volume.shape[2])]
    refused("uneven spacing", w.save(w.slices(axial, "AX T1 POST", 13, positions=uneven), "uneven"),
            "uneven slice spacing")
    diffusion = w.slices(axial, "DWI 4 directions", 14)
    diffusion = diffusion + [copy.deepcopy(d) for d in diffusion]
    for d in diffusion[volume.shape[2]:]:
        d.SOPInstanceUID = d.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    refused("4-D diffusion", w.save(diffusion, "diffusion"), "a 4-D series (2 volumes of")
    planes = [np.eye(3), np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]]), np.array([[0, 0, 1.0], [1, 0, 0], [0, 1, 0]])]
    localizer = w.slices(axial, "3-plane localizer", 1, orientation=[planes[k % 3] for k in range(volume.shape[2])])
    refused("3-plane localizer", w.save(localizer, "localizer"), "several orientations")
    return out


def _dicomdir(datasets: list[Dataset], folder: Path) -> Path:
    """A media folder as a CD export holds it: a DICOMDIR and pydicom's nested, meaningless file names."""
    from pydicom.fileset import FileSet

    fs = FileSet()
    for ds in datasets:
        fs.add(copy.deepcopy(ds))
    folder.mkdir(parents=True)
    fs.write(folder)
    return folder


def write_study(volume: np.ndarray, root: Path) -> Path:
    """One study folder with several series side by side (files of all series mixed in one folder):
    pre- and post-contrast T1, T2, FLAIR, a 3-plane localizer, an ADC map and a 4-D diffusion."""
    w = Writer(root)
    axial = Source(volume, np.eye(3), np.asarray(ORIGIN))
    planes = [np.eye(3), np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])]
    series = [w.slices(axial, "3-plane localizer", 1, orientation=[planes[k % 2] for k in range(volume.shape[2])]),
              w.slices(axial, "AX T1 SE", 3), w.slices(axial, "AX T1 SE +C", 9), w.slices(axial, "AX T2 TSE", 4),
              w.slices(axial, "AX T2 FLAIR", 5),
              w.slices(axial, "ADC (10^-6 mm²/s)", 601, image_type="DERIVED\\PRIMARY\\DIFFUSION\\ADC")]
    dwi = w.slices(axial, "AX DWI b0 b1000", 6)
    series.append(dwi + [copy.deepcopy(d) for d in dwi])
    for d in series[-1][len(dwi):]:
        d.SOPInstanceUID = d.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    everything = [d for s in series for d in s]
    return w.save(everything, "study", names="random", seed=5)
