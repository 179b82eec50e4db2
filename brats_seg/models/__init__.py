"""models package of brats_seg."""
