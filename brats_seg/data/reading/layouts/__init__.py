"""Dataset layouts: one reader per layout, and :func:`discover_cases` over the registry.

=========  =====================================================================================
brats2021  BraTS 2017-2021: ``BraTS2021_00000/BraTS2021_00000_t1ce.nii.gz`` (also ``Brats18_*``,
           ``BraTS20_Training_*``); suffixes t1, t1ce, t2, flair, seg  (:mod:`.brats`)
brats2023  BraTS 2023+: ``BraTS-GLI-00000-000/BraTS-GLI-00000-000-t1c.nii.gz`` (GLI, MEN, MET, PED,
           SSA, ...); suffixes t1n, t1c, t2w, t2f, seg  (:mod:`.brats`)
msd        Medical Segmentation Decathlon Task01_BrainTumour: ``dataset.json``, 4-D
           ``imagesTr/BRATS_001.nii.gz``, ``labelsTr/BRATS_001.nii.gz``, ``imagesTs``  (:mod:`.msd`)
nnunet     nnU-Net raw data: ``imagesTr/<case>_0000.nii.gz``, ``labelsTr/<case>.nii.gz``, ``dataset.json``
           naming the channels (v2 ``channel_names`` or v1 ``modality``)  (:mod:`.nnunet`)
csv        a manifest ``cases.csv`` with columns case_id, t1n, t1c, t2w, t2f (any modality alias), optional
           label and label_scheme; relative paths are relative to the CSV's folder  (:mod:`.csv_manifest`)
=========  =====================================================================================

Discovery only lists folders and reads ``dataset.json``/the CSV. Problems it sees in a case
(duplicate or unrecognised modality files) are recorded in :attr:`Case.problems` for
:mod:`brats_seg.data.reading.checks` to report; problems of the dataset itself (an unknown channel
name in ``dataset.json`` or a CSV header) raise :class:`~brats_seg.errors.CaseError` naming the file.
"""

from .discovery import LAYOUTS, Layout, detect_layout, discover_cases, get_layout, register_layout
from .recorded import recorded_scheme

__all__ = ["LAYOUTS", "Layout", "detect_layout", "discover_cases", "get_layout", "recorded_scheme",
           "register_layout"]
