"""End to end: the installed extension in a real JupyterLab, driven in headless Chromium.

A notebook builds and registers a pipeline; the diagram renderer draws it; the Pipelines panel
lists it with its stages and steps; inspect, source and export run against the real kernel.
Screenshots go to test-artifacts/extension/.
"""

from __future__ import annotations

import re

import pytest

from pathlib import Path

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "extension"

pytestmark = [pytest.mark.timeout(420), pytest.mark.browser, pytest.mark.slow]

IMPORTS = """\
import torch
import workbench
from workbench import transform, batch, unbatch
nn = transform(torch.nn)"""

BUILD = """\
to_tensor = transform(lambda x: torch.tensor(x, dtype=torch.float32)) - "to_tensor"
scale = transform(lambda t: t / 4) - "scale"
shift = transform(lambda t: t - 1) - "shift"
clf = (to_tensor >> (scale + shift) >> transform(lambda ab: torch.cat(ab)) - "join"
       >> batch.pad(0) >> nn.Linear(8, 3) >> unbatch >> transform(torch.argmax) - "argmax")
workbench.registry.register("clf", clf)
clf"""

TIMEOUT = 90_000  # ms; the first cell imports torch in a new kernel


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def run_js(page, code: str):
    return page.evaluate(code)


@pytest.fixture(scope="module")
def page(notebook_page):
    page, errors = notebook_page("pipelines.ipynb", [IMPORTS, BUILD], TIMEOUT)
    page.wait_for_selector(".jp-OutputArea-output .wb-diagram", timeout=TIMEOUT)
    yield page
    assert not [e for e in errors if "workbench" in e.lower() or "wb-" in e], errors
    page.close()


def test_renderer_draws_the_pipeline_diagram(page):
    diagram = page.locator(".jp-OutputArea-output .wb-diagram").first
    labels = diagram.locator(".wb-leaf .wb-node-label").all_text_contents()
    assert labels == ["to_tensor", "scale", "shift", "join", "Linear(in_features=8, out_features=3, bias=True)",
                      "argmax"]
    assert diagram.locator(".wb-rule").all_text_contents() == ["batch.pad(0)", "unbatch"]  # as the core labels it
    # The rollout's two branches side by side: same top, different left.
    branches = diagram.locator('[data-kind="rollout"] > .wb-group-body > .wb-branch')
    assert branches.count() == 2
    a, b = branches.nth(0).bounding_box(), branches.nth(1).bounding_box()
    assert abs(a["y"] - b["y"]) < 2 and b["x"] >= a["x"] + a["width"] - 1
    # Stages marked by colour class; hover text names type and parameters.
    linear = diagram.locator('.wb-leaf[data-path="[4]"]')
    assert "wb-stage-forward" in linear.get_attribute("class")
    assert "parameters: 27" in linear.get_attribute("title")
    assert "wb-stage-postprocess" in diagram.locator('.wb-leaf[data-path="[6]"]').get_attribute("class")
    assert diagram.locator(".wb-diagram-facts").text_content() == "6 steps · 27 params"
    shot(page, "01-diagram")
    # Collapse the rollout by clicking its header.
    header = diagram.locator('[data-kind="rollout"] > .wb-group-header')
    header.click()
    assert not diagram.locator('.wb-leaf[data-path="[1][0]"]').is_visible()
    header.click()
    assert diagram.locator('.wb-leaf[data-path="[1][0]"]').is_visible()


def open_panel(page):
    tab = page.locator('.jp-SideBar li[data-id="workbench-pipelines"]')
    if "lm-mod-current" not in (tab.get_attribute("class") or ""):
        tab.click()
    panel = page.locator("#workbench-pipelines")
    panel.wait_for(state="visible", timeout=TIMEOUT)
    return panel


def test_panel_lists_the_pipeline_with_stages_and_steps(page):
    panel = open_panel(page)
    item = panel.locator('.wb-pipeline[data-name="clf"]')
    item.wait_for(timeout=TIMEOUT)
    assert item.locator(".wb-pipeline-facts").text_content() == "6 steps · 27 params · cpu"
    item.locator(".wb-pipeline-head").click()
    rows = {r.get_attribute("data-stage"): r.locator(".wb-stage-steps").text_content()
            for r in item.locator(".wb-stage-row").all()}
    assert rows == {"preprocess": "to_tensor, scale, shift, join",
                    "forward": "Linear(in_features=8, out_features=3, bias=True)", "postprocess": "argmax"}
    steps = [s.strip() for s in item.locator(".wb-step-tree > li > .wb-step-label").all_text_contents()]
    assert steps == ["[0] to_tensor", "[1] + rollout", "[2] join", "── batch.pad(0) ──",
                     "[4] Linear(in_features=8, out_features=3, bias=True)", "── unbatch ──", "[6] argmax"]
    shot(page, "02-panel")


def test_panel_follows_kernel_changes_without_polling(page):
    panel = open_panel(page)
    run_cell(page, 'workbench.registry.register("small", to_tensor >> scale)')
    panel.locator('.wb-pipeline[data-name="small"]').wait_for(timeout=TIMEOUT)
    assert panel.locator(".wb-pipeline").evaluate_all("els => els.map(e => e.dataset.name)") == ["clf", "small"]
    run_cell(page, 'workbench.registry.unregister("small")')
    panel.locator('.wb-pipeline[data-name="small"]').wait_for(state="detached", timeout=TIMEOUT)


def run_cell(page, code: str) -> None:
    """Append a cell with ``code`` at the end of the notebook and run it."""
    page.evaluate(
        """code => {
            const nb = window.jupyterapp.shell.currentWidget.content;
            nb.activeCellIndex = nb.widgets.length - 1;
            window.jupyterapp.commands.execute('notebook:insert-cell-below');
            nb.activeCell.model.sharedModel.setSource(code);
            return window.jupyterapp.commands.execute('notebook:run-cell');
        }""", code)


def test_inspect_action_opens_the_inspector(page):
    panel = open_panel(page)
    panel.locator('.wb-pipeline[data-name="clf"] .wb-action-inspect').click()
    dialog = page.locator(".jp-Dialog")
    dialog.wait_for(timeout=TIMEOUT)
    dialog.locator("input").fill("[[0.0, 1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 7.0]]")
    shot(page, "03-inspect-dialog")
    dialog.locator(".jp-Dialog-button.jp-mod-accept").click()
    cell = page.locator(".jp-Cell", has_text='workbench.inspect(workbench.registry.get("clf")')
    cell.wait_for(timeout=TIMEOUT)
    select = cell.locator(".jp-OutputArea-output .widget-select select")
    select.wait_for(timeout=TIMEOUT)
    options = select.locator("option").all_text_contents()
    assert any("to_tensor" in o for o in options) and any("argmax" in o for o in options), options
    cell.locator(".jp-OutputArea-output .wb-export-png").wait_for(timeout=TIMEOUT)  # the view is drawn
    assert cell.locator(".jp-OutputArea-output .wb-export-png").count() == 1
    assert not cell.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").count()
    cell.scroll_into_view_if_needed()
    shot(page, "04-inspector")


def test_source_action_shows_the_bundle_source(page):
    panel = open_panel(page)
    panel.locator('.wb-pipeline[data-name="clf"] .wb-action-source').click()
    dialog = page.locator(".jp-Dialog")
    dialog.wait_for(timeout=TIMEOUT)
    assert dialog.locator(".jp-Dialog-header").text_content().strip() == "Source of clf"
    text = dialog.locator("pre.wb-source-dialog").text_content()
    assert "to_tensor" in text and "argmax" in text and "Linear" in text, text
    shot(page, "05-source")
    dialog.locator(".jp-Dialog-button.jp-mod-reject").click()
    dialog.wait_for(state="detached")


def test_export_action_saves_a_bundle_and_reports_errors(page, lab):
    panel = open_panel(page)
    target = lab.root / "clf-export.wb"
    assert not target.exists()
    panel.locator('.wb-pipeline[data-name="clf"] .wb-action-export').click()
    dialog = page.locator(".jp-Dialog")
    dialog.wait_for(timeout=TIMEOUT)
    # The default path is the kernel's, free of collisions; replacing is off until ticked.
    assert dialog.locator("input.wb-export-path").input_value() == "clf-export.wb"
    assert dialog.locator("input[type=checkbox]").is_checked() is False
    assert "Replace an existing bundle" in dialog.locator(".wb-export-form").text_content()
    shot(page, "06-export-dialog")
    dialog.locator(".jp-Dialog-button.jp-mod-accept").click()
    done = page.locator(".jp-Dialog", has_text="Exported clf")
    done.wait_for(timeout=TIMEOUT)
    assert re.search(r"Saved the bundle to .*clf-export\.wb", done.text_content())
    assert target.exists()
    shot(page, "06-exported")
    done.locator(".jp-Dialog-button.jp-mod-accept").click()
    done.wait_for(state="detached")

    # Next time the default has moved on; the same path without the checkbox is refused, saying why.
    panel.locator('.wb-pipeline[data-name="clf"] .wb-action-export').click()
    dialog = page.locator(".jp-Dialog")
    dialog.wait_for(timeout=TIMEOUT)
    assert dialog.locator("input.wb-export-path").input_value() == "clf-export-2.wb"
    dialog.locator("input.wb-export-path").fill("clf-export.wb")
    dialog.locator(".jp-Dialog-button.jp-mod-accept").click()
    failed = page.locator(".jp-Dialog", has_text="Export clf failed")
    failed.wait_for(timeout=TIMEOUT)
    body = failed.locator(".jp-Dialog-body").text_content()
    assert "clf-export.wb already exists" in body and 'tick "Replace an existing bundle"' in body
    shot(page, "07-export-error")
    failed.locator(".jp-Dialog-button").first.click()
    failed.wait_for(state="detached")

    # Ticked: replaced.
    stamp = (target / "manifest.json").stat().st_mtime_ns
    panel.locator('.wb-pipeline[data-name="clf"] .wb-action-export').click()
    dialog = page.locator(".jp-Dialog")
    dialog.wait_for(timeout=TIMEOUT)
    dialog.locator("input.wb-export-path").fill("clf-export.wb")
    dialog.locator("input[type=checkbox]").check()
    dialog.locator(".jp-Dialog-button.jp-mod-accept").click()
    done = page.locator(".jp-Dialog", has_text="Exported clf")
    done.wait_for(timeout=TIMEOUT)
    assert (target / "manifest.json").stat().st_mtime_ns != stamp
    done.locator(".jp-Dialog-button.jp-mod-accept").click()
    done.wait_for(state="detached")


def test_panel_says_when_a_pipeline_holds_a_redefined_function(page):
    panel = open_panel(page)
    run_cell(page, "def encode(s):\n    return s.split()")
    run_cell(page, 'workbench.registry.register("topic", transform(encode) >> transform(len))')
    item = panel.locator('.wb-pipeline[data-name="topic"]')
    item.wait_for(timeout=TIMEOUT)
    assert item.locator(".wb-pipeline-stale").count() == 0
    run_cell(page, "def encode(s):\n    return s.lower().split()")
    stale = item.locator(".wb-pipeline-stale")
    stale.wait_for(timeout=TIMEOUT)
    assert stale.text_content() == "⚠ holds an old encode: redefined since it was built"
    assert re.search(r"function 'encode' from cell In\[\d+\].* was redefined in cell In\[\d+\]",
                     stale.get_attribute("title"))
    shot(page, "09-stale")
    page.set_viewport_size({"width": 900, "height": 800})
    shot(page, "09-stale-narrow")
    page.evaluate("window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})")
    page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'", timeout=TIMEOUT)
    panel.locator('.wb-pipeline[data-name="topic"] .wb-action-export').click()
    dialog = page.locator(".jp-Dialog")
    dialog.wait_for(timeout=TIMEOUT)
    shot(page, "10-dark-stale-and-export-dialog")
    dialog.locator(".jp-Dialog-button.jp-mod-reject").click()
    dialog.wait_for(state="detached")
    page.evaluate("window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Light'})")
    page.wait_for_function("() => document.body.dataset.jpThemeLight === 'true'", timeout=TIMEOUT)
    page.set_viewport_size({"width": 1500, "height": 1000})
    run_cell(page, 'workbench.registry.unregister("topic")')
    item.wait_for(state="detached", timeout=TIMEOUT)


def test_panel_follows_a_kernel_restart(page):
    panel = open_panel(page)
    page.evaluate("window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.restart()")
    status = panel.locator(".wb-panel-status")
    page.wait_for_function(
        "() => document.querySelector('#workbench-pipelines .wb-panel-status').textContent"
        ".includes('workbench is not loaded in this kernel')", timeout=TIMEOUT)
    assert panel.locator(".wb-pipeline").count() == 0
    shot(page, "08-restarted")
    page.wait_for_function(
        "() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle'",
        timeout=TIMEOUT)
    run_cell(page, IMPORTS)
    page.wait_for_function(
        "() => document.querySelector('#workbench-pipelines .wb-panel-status').textContent.includes('no pipelines yet')",
        timeout=TIMEOUT)
    run_cell(page, BUILD)
    panel.locator('.wb-pipeline[data-name="clf"]').wait_for(timeout=TIMEOUT)
    assert "1 pipeline" in status.text_content()
