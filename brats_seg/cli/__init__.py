"""The ``brats-seg`` command: one console script, thin subcommands.

Each subcommand lives in ``brats_seg/cli/<name>.py`` and defines
``add_arguments(parser)`` and ``run(args) -> int``. Modules are imported only
when their subcommand runs, so ``brats-seg --help`` is instant.

Errors: a :class:`~brats_seg.errors.BratsSegError` prints one line
``brats-seg <cmd>: error: <message>`` and exits with 2; ``--debug`` shows the
traceback instead. A closed output pipe (``brats-seg models --json | head``) ends
the command quietly with 141 (128 + SIGPIPE, as Unix tools end), whichever
command was writing.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

# name -> one-line help. The module brats_seg.cli.<name> implements it.
COMMANDS: dict[str, str] = {
    "check": "check a dataset's cases: layout, label scheme, modalities, problems",
    "synth": "write synthetic BraTS-like cases (MNI anatomy, tumors, bias, noise)",
    "preprocess": "crop, normalize (and optionally N4/resample) cases into a .npy cache",
    "models": "list the registered architectures with parameters and GFLOPs",
    "search": "differentiable V-NAS architecture search; writes genotype.json",
    "train": "train a segmentation model (one output per group of its label scheme)",
    "adapt": "adapt a trained model to a new site's unlabelled scans (TENT); writes a new checkpoint",
    "pretrain": "self-supervised (Models Genesis-style) pretraining on unlabeled scans",
    "predict": "segment raw scans with one or more checkpoints (sliding window, TTA, ensemble)",
    "prepare": "scanner output (DICOM/NIfTI, skull on, any orientation) -> a BraTS-form case in the MNI frame",
    "segment": "prepare, predict and write the labels on the patient's own scans (NIfTI, DICOM SEG)",
    "export": "export a checkpoint to TorchScript or ONNX",
    "evaluate": "score predictions against references: Dice, HD95, lesion-wise",
    "rank": "BraTS rank-then-aggregate over several evaluated prediction sets",
    "benchmark": "set an evaluation summary beside published challenge results",
    "quickstart": "end to end on a laptop: data, training, prediction, evaluation, report",
    "show": "overlay picture of a case and optionally a prediction",
    "experiment": "run one of the review's comparisons (architectures, transfer, ensembles, modalities)",
}


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="brats-seg",
        description="3-D brain tumor segmentation on BraTS multi-modal MRI.",
    )
    parser.add_argument("--version", action="version", version=f"brats-seg {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def _command_parser(name: str) -> tuple[argparse.ArgumentParser, object]:
    module = importlib.import_module(f"{__name__}.{name}")
    parser = argparse.ArgumentParser(prog=f"brats-seg {name}", description=COMMANDS[name])
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    module.add_arguments(parser)
    return parser, module


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point. Returns the exit status (0 ok, 1 some cases failed, 2 bad input)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    top = build_parser()
    # split off global flags before the subcommand
    debug = False
    while argv and argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version"):
        if argv[0] == "--debug":
            debug = True
            argv.pop(0)
        else:
            break
    if not argv or argv[0] in ("-h", "--help", "--version") or argv[0] not in COMMANDS:
        args = top.parse_args(argv)  # prints help/version or the usage error (exit 2)
        top.print_help()
        return 2
    name, rest = argv[0], argv[1:]
    parser, module = _command_parser(name)
    args = parser.parse_args(rest)
    args.debug = args.debug or debug
    from ..errors import BratsSegError

    try:
        code = int(module.run(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except BrokenPipeError:
        return _stdout_closed()
    except BratsSegError as e:
        if args.debug:
            raise
        print(f"brats-seg {name}: error: {_flags_it_has(str(e), parser)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"brats-seg {name}: interrupted", file=sys.stderr)
        return 130


def _flags_it_has(message: str, parser: argparse.ArgumentParser) -> str:
    """``message`` with the advice ``(--label-scheme)`` of the library's ambiguity error replaced where the
    command has no such flag (the manifest column is then the way to say it): an error names only flags
    its command has (``tests/test_cli_flags.py``)."""
    if "(--label-scheme)" in message and "--label-scheme" not in parser._option_string_actions:
        return message.replace("(--label-scheme)", "(a CSV manifest's label_scheme column)")
    return message


def _stdout_closed() -> int:
    """The reader of stdout went away: point stdout at /dev/null (so the interpreter's last flush
    cannot fail again) and exit quietly with 141."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 141


def entry() -> None:  # pragma: no cover - console script wrapper
    sys.exit(main())
