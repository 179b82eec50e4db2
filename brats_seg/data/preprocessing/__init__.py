"""Preprocessing: crop to the brain, resample, normalize, and the ``.npy`` cache it writes;
:func:`~.grid.restore` puts a prediction back on the input's grid.
"""
