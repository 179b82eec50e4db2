"""``brats-seg show CASE [--pred FILE] [--out PNG]``: overlay picture of a case.

The case is read through the checks of ``brats-seg check`` (every sequence it has, not only the one
drawn; :func:`brats_seg.data.reading.checks.read_case`), ``--pred`` through those of a label map: a problem
is one line naming the file and exit 2, and no picture is written. The prediction's scheme is
``--pred-scheme``, else the one brats_seg recorded beside it (``predict``'s ``<case>.json``,
``segment``'s ``segment.json``), else ``--label-scheme``, else detected from its values: the
toolkit's own output is never ambiguous to it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .arguments import add_data_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("case", type=Path, help="a case folder (any supported layout)")
    parser.add_argument("--pred", type=Path, help="a predicted label map to draw beside the reference")
    parser.add_argument("--pred-scheme", help="label scheme of --pred (default: the one brats-seg predict or segment"
                        " recorded beside it, else --label-scheme, else detected from its values)")
    parser.add_argument("--modality", default="t2f", help="background modality (default t2f, FLAIR)")
    add_data_arguments(parser)
    parser.add_argument("--out", type=Path, help="PNG to write (default: <case_id>_overlay.png here)")


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from ..conventions import MODALITIES, canonical_modality, detect_scheme, get_scheme
    from ..data.reading.checks import geometry_error, read_label_map
    from ..data.reading.layouts import discover_cases, recorded_scheme
    from ..data.reading.volumes import load_case
    from ..errors import CaseError
    from ..evaluation.overlays import overlay_figure

    cases = discover_cases(args.case, layout=args.layout, label_scheme=args.label_scheme)
    if len(cases) != 1:
        raise CaseError(f"{args.case}: expected one case, found {len(cases)}; give a case folder")
    case = cases[0]
    modality = canonical_modality(args.modality)
    others = tuple(m for m in MODALITIES if m != modality)
    vol = load_case(case, channels=(modality, *others), allow_missing=others)  # checks all, draws channel 0
    maps = {}
    if vol.label is not None:
        maps["reference"] = (vol.label, vol.label_scheme if case.scheme_given else detect_scheme(
            np.unique(vol.label), hint=case.label_scheme, case_id=case.case_id))
    if args.pred is not None:
        pred = read_label_map(args.pred)  # the checks of brats-seg check: complete, 3-D, integer values
        if problem := geometry_error("prediction", pred.image, f"case {case.case_id}", vol.reference):
            raise CaseError(f"{args.pred}: {problem}")
        labels = pred.image.array.astype(np.uint8)
        stated = args.pred_scheme or recorded_scheme(args.pred) or (case.label_scheme if case.scheme_given else None)
        if stated and not set(np.unique(labels).tolist()) <= get_scheme(stated).values:
            raise CaseError(f"{args.pred}: label values {np.unique(labels).tolist()} are outside scheme {stated}")
        maps["prediction"] = (labels, stated or detect_scheme(np.unique(labels), hint=case.label_scheme,
                                                              case_id=case.case_id))
    out = args.out or Path(f"{case.case_id}_overlay.png")
    overlay_figure(vol.image[0], maps, out, title=f"{case.case_id} ({modality})")
    print(out)
    return 0
