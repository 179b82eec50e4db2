"""Scans as the scanner gives them -> a BraTS-form case, and results back to native space.

See :func:`prepare_case` (pipeline), :func:`segment_case` (prepare, predict, map back) and
ARCHITECTURE.md §1: this package imports conventions and data, never models or training.
"""
