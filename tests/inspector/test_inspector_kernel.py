"""The inspector in a real Jupyter kernel: displayed as a widget, and its state reaches the frontend."""

import nbformat
import pytest
from nbclient import NotebookClient

CELLS = [
    """
import torch
from workbench import inspect, transform

maps = transform(lambda i: torch.arange(4 * 5 * 5, dtype=torch.float32).reshape(4, 5, 5) + 1000 * i) - "maps"
w = inspect(maps >> transform(lambda x: x.mean((1, 2))) - "scores", list(range(10)), step="maps")
w
""",
    """
w.example_picker.value = 3
print(w.state.example, w.state.summary().min)
""",
]


@pytest.mark.timeout(180)
@pytest.mark.kernel
@pytest.mark.slow
def test_inspector_displays_as_a_widget_in_a_kernel_and_syncs_its_state(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c.strip()) for c in CELLS])
    client = NotebookClient(nb, timeout=120, kernel_name="python3", store_widget_state=True,
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    shown = nb.cells[0].outputs[0]["data"]
    assert "application/vnd.jupyter.widget-view+json" in shown
    root_id = shown["application/vnd.jupyter.widget-view+json"]["model_id"]
    assert nb.cells[1].outputs[0]["text"].split() == ["3", "3000.0"]

    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    assert state[root_id]["model_name"] == "VBoxModel"
    models = {m["model_name"] for m in state.values()}
    assert {"SelectModel", "BoundedIntTextModel", "TabModel", "AnyModel", "HTMLModel"} <= models
    # After the picker moved in the kernel, the frontend's copy of the view describes example 3:
    # one title, its summary, the four channels as float32 arrays (sent as buffers, not pictures).
    canvas = next(m["state"] for m in state.values() if m["model_name"] == "AnyModel")
    (column,) = canvas["spec"]["columns"]
    assert column["title"].startswith("example 3 ·") and dict(column["summary"])["min"] == "3000"
    grid = column["blocks"][0]
    assert grid["kind"] == "grid" and [p["array"]["dtype"] for p in grid["panels"]] == ["float32"] * 4
    assert (grid["panels"][0]["lo"], grid["panels"][0]["hi"]) == (3000.0, 3024.0)
