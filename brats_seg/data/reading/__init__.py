"""Reading: cases and the layouts that hold them, image files, the checks every command shares,
intensity ranges, and :func:`~.volumes.load_case` (a case's volumes, checked).
"""
