import subprocess
import sys

import brats_seg


def test_every_public_name_resolves():
    for name in brats_seg.__all__:
        assert getattr(brats_seg, name) is not None, name


def test_import_is_cheap_and_help_is_instant():
    code = "import sys, brats_seg; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
    out = subprocess.run([sys.executable, "-m", "brats_seg.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "quickstart" in out.stdout
