"""data package of brats_seg."""
