"""``workbench export`` on notebooks saved in a state the export cannot reproduce: it says so.

Real kernels through the console script: a notebook last run out of order, whose stored outputs
differ from what a top-to-bottom run gives, and that saves its own bundle to the export's path.
"""

from __future__ import annotations

import json

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from workbench.export import execution_order_warning

from ._cli import call_cli, run_cli

CELLS = [
    ("from workbench import transform\nWORDS = {'striker': 'sport'}", 1, None),
    ("def label(s):\n    return next((WORDS[w] for w in s.split() if w in WORDS), 'other')", 5, None),
    ("topic = transform(label)", 3, None),
    ("topic.infer_apply('the striker scored')", 6, "'news'"),  # what the author's kernel showed
    ("len(WORDS)", 7, "1"),  # does not use the pipeline: never compared
    ("%wb_save topic topic.wb --overwrite", 8, None),
]


def _notebook(path, cells=CELLS):
    made = []
    for source, count, shown in cells:
        cell = new_code_cell(source, execution_count=count)
        if shown is not None:
            cell.outputs = [new_output("execute_result", data={"text/plain": shown}, execution_count=count)]
        made.append(cell)
    nbformat.write(new_notebook(cells=made), str(path))
    return path


def test_execution_order_warning_names_the_cells():
    nb = nbformat.reads(nbformat.writes(new_notebook(cells=[
        new_code_cell("a = 1", execution_count=1), new_code_cell("b = 2", execution_count=4),
        new_code_cell("c = 3", execution_count=2), new_code_cell("", execution_count=None)])), as_version=4)
    message = execution_order_warning(nb)
    assert "cell 2 ran as [4] but cell 3 below it as [2]" in message and "top to bottom" in message
    nb.cells[2].execution_count = 9
    assert execution_order_warning(nb) is None


@pytest.mark.kernel
@pytest.mark.slow
def test_export_warns_compares_outputs_and_owns_its_output_path(tmp_path):
    notebook = _notebook(tmp_path / "news.ipynb")
    out = tmp_path / "topic.wb"
    result = run_cli("export", notebook, "--pipeline", "topic", "--out", out)
    assert result.returncode == 0, result.stderr
    err = result.stderr
    assert "warning: the notebook was last run out of order (cell 2 ran as [5] but cell 3 below it as [3])" in err
    assert ("warning: cell 4 (\"topic.infer_apply('the striker scored')\") uses 'topic' and showed \"'news'\" "
            "in the saved notebook but \"'sport'\" in the export run") in err
    assert "warning: cell 5" not in err  # it does not use the pipeline
    # The notebook's own `%wb_save ... --overwrite` to the same path was skipped: the export wrote it,
    # which it could not have done without --overwrite had the notebook's save gone through.
    assert "warning: cell 6 ('%wb_save topic topic.wb --overwrite') saves to the export's output path" in err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["structure"]["label"] == "label"

    # An existing bundle is replaced only with the export's own --overwrite.
    stamp = (out / "manifest.json").read_bytes()
    again = call_cli("export", notebook, "--pipeline", "topic", "--out", out)
    assert again.returncode == 2 and "already exists; pass --overwrite" in again.stderr
    assert (out / "manifest.json").read_bytes() == stamp
    quiet = run_cli("export", notebook, "--pipeline", "topic", "--out", out, "--overwrite", "--quiet")
    assert quiet.returncode == 0, quiet.stderr
    assert "workbench export: warning: the notebook was last run out of order" in quiet.stderr
    assert (out / "manifest.json").read_bytes() != stamp
