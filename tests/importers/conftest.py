"""Fixtures of the importer tests: small crops of two real shared cases."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

CROPS = {"BraTS2021_00002": ((100, 156), (20, 68), (40, 80)), "BraTS2021_00003": ((110, 166), (90, 138), (115, 155))}
"""Case -> box in voxels (nibabel axes): tumor and some background outside the brain, 56 x 48 x 40."""


@pytest.fixture(scope="session")
def crops(shared_data, tmp_path_factory):
    """Case id -> (case folder in the BraTS 2021 layout, its files in nnU-Net's channel order)."""
    from nnunet_folder import write_crop

    out = tmp_path_factory.mktemp("crops")
    return {case: write_crop(shared_data, case, box, out) for case, box in CROPS.items()}
