"""training package of brats_seg."""
