"""Networks behind one interface (see :mod:`brats_seg.models.base`), built by name.

``build_model(name, in_channels=4, out_channels=3, preset="base"|"tiny", deep_supervision=False, **kwargs)``
from :mod:`brats_seg.models.registry`; ``list_models()`` for the names. Networks import only
torch, MONAI and :mod:`brats_seg.conventions`/:mod:`brats_seg.errors`: they read no files and
know no datasets. V-NAS search space and genotype files: :mod:`brats_seg.models.nas`.
"""
