"""Shipped training recipes: one ``NAME.yaml`` per recipe, plain data read by :mod:`brats_seg.training.recipes`."""
