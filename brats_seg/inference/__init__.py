"""inference package of brats_seg."""
