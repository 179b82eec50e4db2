"""experiments package of brats_seg."""
