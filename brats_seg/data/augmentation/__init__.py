"""Training augmentation of 3-D patches: one :class:`~.augment_config.AugmentConfig`, the ``monai`` and
``nnunet`` pipelines (:mod:`.pipelines`), the batched GPU version, and scanner-shaped transforms.
"""
