"""Execute the notebooks with nbclient (kernel ``python3`` = this interpreter, via ipykernel) and check
what they print: the quickstart's held-out Dice, the explorer's region volumes on a real case."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def execute(name: str) -> tuple[nbformat.NotebookNode, str]:
    """Run ``notebooks/NAME`` top to bottom in its folder; return the notebook and all printed text."""
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(nb, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs
                   if o.output_type == "stream" and o.get("name") == "stdout")
    return nb, text


def images(nb: nbformat.NotebookNode) -> int:
    return sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)


@pytest.mark.parametrize("name", ["quickstart.ipynb", "explore_case.ipynb"])
def test_notebooks_are_stored_clean(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)  # outputs cleared in git


def test_quickstart_notebook(tmp_path, monkeypatch):
    monkeypatch.delenv("BRATS_SEG_DATA", raising=False)  # synthetic cases: self-contained
    monkeypatch.setenv("BRATS_SEG_NOTEBOOK_WORK", str(tmp_path))
    nb, text = execute("quickstart.ipynb")
    dice = {r: float(v) for r, v in re.findall(r"^(WT|TC|ET): Dice ([0-9.]+)", text, re.M)}
    assert set(dice) == {"WT", "TC", "ET"} and all(0.0 <= v <= 1.0 for v in dice.values()), text
    assert dice["WT"] > 0.0, text  # a few training steps already find the tumor's bulk
    assert images(nb) == 2 and (tmp_path / "prediction.png").stat().st_size > 10_000
    assert (tmp_path / "run" / "checkpoints" / "best.pt").is_file()


def test_explore_case_notebook_on_a_real_case(shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("BRATS_SEG_DATA", str(shared_data / "brats2018"))
    monkeypatch.setenv("BRATS_SEG_NOTEBOOK_WORK", str(tmp_path))
    nb, text = execute("explore_case.ipynb")
    assert "case Brats18_2013_3_1 (brats2021): shape (240, 240, 155)" in text, text
    volumes = {r: float(v) for r, v in re.findall(r"^(WT|TC|ET) volume: ([0-9.]+) mL", text, re.M)}
    assert volumes["WT"] >= volumes["TC"] >= volumes["ET"] > 0, text  # nested regions
    labels = {int(v): float(ml) for v, ml in re.findall(r"^label (\d): \d+ voxels, ([0-9.]+) mL", text, re.M)}
    assert set(labels) == {1, 2, 4} and sum(labels.values()) == pytest.approx(volumes["WT"], abs=0.2)
    assert len(re.findall(r"^t1n|^t1c|^t2w|^t2f", text, re.M)) == 4  # a summary line per modality
    assert images(nb) == 3


def test_notebooks_match_their_generator(tmp_path):
    """The committed .ipynb files are exactly what notebooks/build_notebooks.py writes (no hand edits lost)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("build_notebooks", NOTEBOOKS / "build_notebooks.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    for name, cells in (("quickstart.ipynb", gen.QUICKSTART), ("explore_case.ipynb", gen.EXPLORE)):
        assert gen.build(cells, tmp_path / name).read_text() == (NOTEBOOKS / name).read_text(), name
