"""Pipelines defined in notebook cells: source from the exact cells, origins in the manifest.

The notebook runs in a real kernel (``workbench.export``, nbclient); the bundle is then loaded here,
in a process that never ran the notebook.
"""

from __future__ import annotations

import json

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

import workbench
from workbench.export import export_notebook

pytestmark = [pytest.mark.kernel, pytest.mark.slow]


def test_cells_are_the_source_and_the_manifest_names_them(tmp_path):
    cells = [
        new_code_cell("import torch\nfrom workbench import transform\nSCALE = 2.0"),
        new_code_cell("def scale(x):\n    return torch.as_tensor(x) * SCALE"),
        new_code_cell("class Shift:\n    by = 1.0\n    def __call__(self, t):\n        return t + self.by"),
        new_code_cell("pl = transform(scale) >> transform(Shift)()\nSCALE = 10.0\nShift.by = -0.5"),
        new_code_cell("def scale(x):\n    return x  # redefined after the pipeline was built"),
    ]
    for i, cell in enumerate(cells):
        cell["id"] = f"cell-{i}"
    notebook = tmp_path / "work.ipynb"
    nbformat.write(new_notebook(cells=cells), str(notebook))
    out = tmp_path / "pl.wb"
    export_notebook(notebook, "pl", out)

    manifest = json.loads((out / "manifest.json").read_text())
    defs = {d["name"]: d for d in manifest["definitions"]}
    assert defs["scale"]["origin"]["kind"] == "cell"
    assert defs["scale"]["origin"]["notebook"] == "work.ipynb"  # relative to the notebook's directory
    assert defs["scale"]["origin"]["cell_id"] == "cell-1"
    assert defs["Shift"]["origin"]["cell_id"] == "cell-2"
    source = (out / "source.py").read_text()
    assert "return torch.as_tensor(x) * SCALE" in source and "redefined" not in source
    assert "SCALE = 10.0" in source and "Shift.by = -0.5" in source
    for path in sorted(p for p in out.rglob("*") if p.is_file()):  # no absolute paths of the author's machine
        text = path.read_bytes()
        assert str(tmp_path).encode() not in text and b"ipykernel_" not in text, path.name

    pl = workbench.load(out)
    import torch

    assert torch.equal(pl.infer_apply([1.0, 2.0]), torch.tensor([9.5, 19.5]))
