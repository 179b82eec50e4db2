"""Data: reading cases, preprocessing them into the cache, augmenting patches, loading batches.

Sub-packages by job, imported one way (``tests/test_import_direction.py``)::

    reading/        cases, layouts/ (where a dataset keeps them), image_io, checks, intensity, volumes
    preprocessing/  grid (crop, resample, restore), normalization, preprocess, cache   -> reading
    augmentation/   augment_config, pipelines (monai, nnunet), nnunet_augment, gpu_augment,
                    scanner_augment, metatensor                                       -> subsets
    synth/          synthetic BraTS-like cases                                         -> reading
    subsets.py      sequence subsets, modality dropout
    loaders.py      patches and batches from the cache  -> preprocessing, augmentation, subsets
"""
