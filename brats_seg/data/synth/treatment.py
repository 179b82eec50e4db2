"""Fluid-filled compartments for the BraTS 2024 tasks (issue 20): a resection cavity (brats2024-gli) or a
cyst (brats2024-ped) at the synthetic tumor's necrotic core (:func:`add_fluid`).

* brats2024-gli, post-treatment: the necrotic core less a one-voxel shell becomes a resection cavity
  (label 4, no longer tumor): fluid at a former tumor site, with tumor (the shell, NETC; the enhancing
  rim, ET) and edema around it.
* brats2024-ped: the same interior is a cystic component (label 3, part of the tumor core).

Fluid reads as cerebrospinal fluid: each sequence's CSF contrast (:data:`.generate.CONTRAST`, relative to
white matter) times the case's median brain intensity outside the tumor, with 3 % noise; a cyst is
brighter on FLAIR (proteinaceous fluid is not fully suppressed).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy import ndimage

FLUID_LABEL: Mapping[str, int] = {"brats2024-gli": 4, "brats2024-ped": 3}
"""Scheme -> the label of its fluid compartment (RC, CC)."""
FLAIR_CYST = 0.6
"""A cyst's FLAIR level relative to white matter (CSF: 0.28)."""


def add_fluid(images: dict[str, np.ndarray], regions: np.ndarray, scheme: str, rng: np.random.Generator,
              contrast: Mapping[str, Mapping[str, float]]) -> np.ndarray:
    """Write fluid into ``images`` (modality -> ``(H, W, D)`` int16, in place) at the interior of the necrotic
    core (``regions`` ``(3, H, W, D)`` WT, TC, ET); a cavity also leaves ``regions`` (in place). Returns the
    fluid mask ``(H, W, D)`` bool (never empty: the whole necrotic core when it has no interior)."""
    necrosis = regions[1] & ~regions[2]
    fluid = ndimage.binary_erosion(necrosis, np.ones((3, 3, 3), bool))
    if not fluid.any():
        fluid = necrosis
    n = int(fluid.sum())
    for m, image in images.items():
        healthy = (image > 0) & ~regions[0]
        level = float(np.median(image[healthy])) * (FLAIR_CYST if m == "t2f" and scheme == "brats2024-ped"
                                                     else contrast[m]["csf"])
        image[fluid] = np.clip(np.rint(level * (1 + 0.03 * rng.standard_normal(n))), 1, 32767)
    if scheme == "brats2024-gli":
        regions[:, fluid] = False
    return fluid
