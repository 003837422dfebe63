"""The inspector in a real JupyterLab 4 in headless Chromium: picking a step and an example in the page
updates what the widget shows (the round trip page -> kernel -> page)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

# The JupyterLab server and browser fixtures of the extension's end-to-end tests.
_spec = importlib.util.spec_from_file_location(
    "_workbench_lab_fixtures", Path(__file__).resolve().parents[1] / "extension" / "conftest.py")
_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fixtures)
lab, browser = _fixtures.lab, _fixtures.browser

pytestmark = pytest.mark.timeout(300)
TIMEOUT = 90_000  # ms; the first cell imports torch in a new kernel

CELL = """\
import torch
from workbench import inspect, transform, batch, unbatch

class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.head = torch.nn.Linear(256, 10)

    def forward(self, x):
        return self.head(torch.relu(self.conv1(x)).flatten(1))

images = torch.arange(100 * 64, dtype=torch.float32).reshape(100, 8, 8)
pl = (transform(lambda x: x.unsqueeze(0)) - "prep" >> batch >> transform(Net()) - "cnn" >> unbatch
      >> transform(lambda z: z.softmax(0)) - "probs")
w = inspect(pl, images, layers=True, step="prep")
w"""


def test_picking_a_step_and_an_example_in_jupyterlab_updates_the_view(lab, browser):
    page, errors = _fixtures.open_notebook(lab, browser, "inspector.ipynb", [CELL], TIMEOUT)
    try:
        output = page.locator(".jp-OutputArea-output").first
        select = output.locator(".widget-select select")
        select.wait_for(timeout=TIMEOUT)
        summary = output.locator(".workbench-summary").first
        summary.wait_for(timeout=TIMEOUT)
        # Example 0 through "prep": the values 0..63, so the max is 63.
        assert "63" in summary.inner_text() and "1x8x8" in summary.inner_text()

        options = [o.replace("\xa0", " ") for o in select.locator("option").all_text_contents()]
        assert options[0].startswith("post") and any(".conv1 Conv2d(1, 4" in o for o in options), options
        select.select_option(index=next(i for i, o in enumerate(options) if ".conv1" in o))
        page.wait_for_function("() => document.body.innerText.includes('showing 4 of 4 channels')",
                               timeout=TIMEOUT)
        assert "1x4x8x8" in summary.inner_text()

        number = output.locator("input[type=number]").first
        number.fill("7")
        number.press("Enter")
        page.wait_for_function("() => document.body.innerText.includes('example 7 ·')", timeout=TIMEOUT)
        select.select_option(index=[i for i, o in enumerate(options) if "[0] prep" in o][0])
        # Example 7 through "prep": the values 448..511.
        page.wait_for_function(
            "() => [...document.querySelectorAll('.workbench-summary')].some(t => t.innerText.includes('511'))",
            timeout=TIMEOUT)
        page.wait_for_function("() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel"
                               ".status === 'idle'", timeout=TIMEOUT)
        image = output.locator("img.widget-image").first
        assert image.evaluate("img => img.naturalWidth") == 500
        output.scroll_into_view_if_needed()
        _fixtures.ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(_fixtures.ARTIFACTS.parent / "inspector-lab.png"))
        assert not errors, errors
    finally:
        page.close()
