"""The inspector in a real Jupyter kernel: displayed as a widget, and its state reaches the frontend."""

import base64

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
    assert {"SelectModel", "BoundedIntTextModel", "TabModel", "ImageModel", "HTMLModel"} <= models
    # After the picker moved in the kernel, the frontend's copy of the summary shows example 3.
    htmls = [m["state"].get("value", "") for m in state.values() if m["model_name"] == "HTMLModel"]
    assert any("workbench-summary" in h and ">3000<" in h for h in htmls)
    images = [m for m in state.values() if m["model_name"] == "ImageModel"]
    png = [b for m in images for b in m.get("buffers", []) if b.get("path") == ["value"]]
    assert png and base64.b64decode(png[0]["data"])[:8] == b"\x89PNG\r\n\x1a\n"
