"""Scoring segmentations the way the BraTS challenges do.

- :mod:`.metrics`: per-group metrics (Dice, HD95, sensitivity, specificity, volumes)
  with the 2017-2021 empty-mask rules; ``evaluate_case``.
- :mod:`.distances`: surface distances, on voxel surfaces (official package, MONAI) and
  on area-weighted surfels (DeepMind, the BraTS 2023+ lesion-wise code).
- :mod:`.lesionwise`: BraTS 2023+ lesion-wise Dice and HD95, per sub-challenge.
- :mod:`.scoring`: one prediction file against its reference (label schemes, groups).
- :mod:`.pairing`, :mod:`.report`, :mod:`.plots`: a folder of predictions against
  references -> metrics.csv, summary.json/.md, box plots (``evaluate_folder``).
- :mod:`.ranking`: BraTS rank-then-aggregate over several evaluated runs.
- :mod:`.challenge`: published results (``reference_scores.csv``) beside ours.
"""
