"""notebooks/run.py, the runner behind `make demo`: real kernels, real subprocesses."""

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

RUNNER = Path(__file__).resolve().parents[1] / "notebooks" / "run.py"


def _notebook(path: Path, *sources: str) -> Path:
    cells = [new_markdown_cell("# a notebook")] + [new_code_cell(s) for s in sources]
    nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                            "language": "python"}})
    nbformat.write(nb, path)
    return path


def _run(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(RUNNER), str(path)], capture_output=True, text=True, timeout=300)


def test_prints_every_cells_outputs_in_order_and_leaves_the_notebook_alone(tmp_path):
    path = _notebook(tmp_path / "ok.ipynb",
                     "print('first')\nx = 41",
                     "import os\nos.getcwd() == %r" % str(tmp_path),
                     "x + 1",
                     "pass")
    before = path.read_bytes()
    result = _run(path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.index("first") < out.index("True") < out.index("42")  # outputs in order; cwd is the notebook's
    assert "--- cell 2/5" in out and "--- cell 4/5" in out and "cell 5/5" not in out  # silent cells are skipped
    assert "every cell ran" in out
    assert path.read_bytes() == before


def test_a_failing_cell_is_named_with_its_number_first_line_and_error(tmp_path):
    path = _notebook(tmp_path / "bad.ipynb", "print('before')", "\ny = 1\nundefined_name + y", "print('after')")
    result = _run(path)
    assert result.returncode == 1
    assert "before" in result.stdout and "after" not in result.stdout
    assert "cell 3 ('y = 1') failed: NameError: name 'undefined_name' is not defined" in result.stderr
    assert "\x1b[" not in result.stderr  # no terminal colour codes when not on a terminal


def test_an_unreadable_notebook_is_refused_before_any_kernel_starts(tmp_path):
    garbage = tmp_path / "garbage.ipynb"
    garbage.write_text("{not json")
    result = _run(garbage)
    assert result.returncode == 2 and "cannot read" in result.stderr and "garbage.ipynb" in result.stderr
    result = _run(tmp_path / "missing.ipynb")
    assert result.returncode == 2 and "no notebook at" in result.stderr
