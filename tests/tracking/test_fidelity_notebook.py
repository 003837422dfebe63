"""Bundle fidelity in a real notebook: every scenario built over many cells in one kernel (nbclient),
saved from the kernel, loaded in fresh processes and compared exactly with the kernel's outputs."""

from __future__ import annotations

import json

import nbformat
import pytest
from nbclient import NotebookClient

from ._harness import REPO, load_and_compare
from .scenarios import SCENARIOS, SETUP

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

SAVE_ALL = """\
SAVED = {}
for _name, (_pl, _inputs) in CASES.items():
    _outputs = [_pl.infer_apply(_x) for _x in _inputs]
    with open(os.path.join(OUT, _name + '.pkl'), 'wb') as _f:
        pickle.dump({'inputs': _inputs, 'outputs': _outputs}, _f)
    try:
        workbench.save(_pl, os.path.join(OUT, _name + '.wb'))
        SAVED[_name] = 'ok'
    except Exception as _e:
        SAVED[_name] = f'{type(_e).__name__}: {_e}'
print(json.dumps(SAVED))
"""


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    out = tmp_path_factory.mktemp("fidelity")
    cells = [nbformat.v4.new_code_cell(SETUP + f"OUT = {str(out)!r}")]
    for _, scenario_cells in SCENARIOS:
        cells += [nbformat.v4.new_code_cell(c) for c in scenario_cells]
    cells.append(nbformat.v4.new_code_cell(SAVE_ALL))
    nb = nbformat.v4.new_notebook(cells=cells)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(REPO)}}).execute()
    last = nb.cells[-1].outputs
    text = "".join(o.get("text", "") for o in last if o.get("output_type") == "stream")
    status = json.loads(text.strip().splitlines()[-1])
    cases = [
        {"name": name, "bundle": str(out / f"{name}.wb"), "expected": str(out / f"{name}.pkl")}
        for name, s in status.items()
        if s == "ok"
    ]
    loaded = load_and_compare(cases) if cases else {}
    return status, loaded


@pytest.mark.parametrize("name", [name for name, _ in SCENARIOS])
def test_bundle_matches_kernel(saved, name):
    status, loaded = saved
    assert status[name] == "ok", f"save failed in the kernel: {status[name]}"
    assert loaded[name]["ok"], loaded[name]["detail"]
