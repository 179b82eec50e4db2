"""Synthetic BraTS-like cases: real brain anatomy, per-sequence tissue contrast, tumors, bias, noise.

- :mod:`.anatomy`: the MNI ICBM152 2009a template's tissue maps, as nilearn's wheel ships them;
- :mod:`.warp`: the template placed in the BraTS grid (rotation, scale, shift, smooth warp);
- :mod:`.tumor`: core, necrosis, enhancing rim and edema as soft compartments;
- :mod:`.generate`: one case, with contrast per sequence, bias field, Rician noise (:func:`synthesize_case`);
- :mod:`.dataset`: a dataset on disk in the brats2021, brats2023 or msd layout (:func:`synthesize_dataset`).

The template is one averaged brain (smoother than a single subject), so each case gets its own
affine and smooth nonlinear deformation, mass effect, bias field and noise. Case ids say they
are synthetic (``Synth_00002``, ``BraTS-SYNTH-00002-000``) and which seed makes them.
"""

from .anatomy import Anatomy, load_anatomy, template_dir
from .dataset import LAYOUT_FILES, LAYOUT_SCHEMES, case_ids, synthesize_dataset, write_case
from .generate import CONTRAST, WM_LEVEL, SynthCase, grid_affine, grid_shape, synthesize_case

__all__ = ["Anatomy", "load_anatomy", "template_dir", "LAYOUT_FILES", "LAYOUT_SCHEMES", "case_ids",
           "synthesize_dataset", "write_case", "CONTRAST", "WM_LEVEL", "SynthCase", "grid_affine", "grid_shape",
           "synthesize_case"]
