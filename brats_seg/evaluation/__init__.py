"""evaluation package of brats_seg."""
