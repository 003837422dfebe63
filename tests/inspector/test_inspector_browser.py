"""The inspector drawn in a real JupyterLab 4 in headless Chromium, on an image, a text and a tabular pipeline.

At 1600 and 900 px wide, in the light and the dark theme: the labels and values are in the page,
nothing sticks out of the output area, hovering a pixel, a bar, a row or a token shows its value,
the arrow keys move between examples, the attribution overlay's opacity slider redraws in the page,
and the view exports as PNG and SVG. Screenshots go to test-artifacts/inspector/ (git-ignored).
"""

from __future__ import annotations

import importlib.util
import json
import re
import time
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "_workbench_lab_fixtures", Path(__file__).resolve().parents[1] / "extension" / "conftest.py")
_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fixtures)
lab, browser = _fixtures.lab, _fixtures.browser

pytestmark = [pytest.mark.timeout(600), pytest.mark.browser, pytest.mark.kernel, pytest.mark.slow]
TIMEOUT = 120_000  # ms; the first cell imports torch and the text cell trains a small model
TESTS = Path(__file__).resolve().parents[1]
ARTIFACTS = _fixtures.ARTIFACTS.parent / "inspector"
SENTENCE = "the striker scored a late goal after extra time"

IMAGE = """\
import torch
from workbench import inspect, transform, batch, unbatch

class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.head = torch.nn.Linear(256, 10)

    def forward(self, x):
        return self.head(torch.relu(self.conv1(x)).flatten(1))

torch.manual_seed(0)
images = torch.arange(100 * 64, dtype=torch.float32).reshape(100, 8, 8) / 64
pl = (transform(lambda x: x.unsqueeze(0)) - "prep" >> batch >> transform(Net()) - "cnn" >> unbatch
      >> transform(lambda z: z.softmax(0)) - "probs")
image_view = inspect(pl, images, layers=True, step="prep", class_names=[f"digit {i}" for i in range(10)])
image_view"""

TEXT = f"""\
import sys
sys.path.insert(0, {str(TESTS)!r})
from text_model import build, load_corpus

texts, labels = load_corpus()
text_pl, vocab = build(texts[:150], labels[:150], epochs=10)
text_view = inspect(text_pl, [{SENTENCE!r}] + texts[150:], step="[0]")
text_view"""

TABLE = """\
import numpy as np
from sklearn.datasets import load_wine
from workbench import annotate

wine = load_wine()
rows = ((wine.data - wine.data.mean(0)) / wine.data.std(0)).astype(np.float32)
torch.manual_seed(0)
table_pl = (transform(torch.as_tensor) >> batch >> transform(torch.nn.Linear(13, 3)) >> unbatch
            >> transform(lambda z: z.softmax(0)) - "probs")
annotate(table_pl, class_names=list(wine.target_names), feature_names=list(wine.feature_names))
table_view = inspect(table_pl, rows, step="[0]")
table_view"""

# Every visible element under an output area that reaches outside it, or a box whose content is wider than
# the box (clipped): "tag.class: how".
OVERFLOW = """(area) => {
  const box = area.getBoundingClientRect();
  const bad = [];
  const name = e => `${e.tagName.toLowerCase()}.${(e.getAttribute('class') || '').split(' ').join('.')}`;
  for (const e of area.querySelectorAll('*')) {
    if (e.closest('option') || e.closest('.widget-tab-contents > :not(.p-mod-current, .lm-mod-current)')) continue;
    const r = e.getBoundingClientRect();
    if (!r.width || !r.height || e.offsetParent === null && !(e instanceof SVGElement)) continue;
    if (r.right > box.right + 1 || r.left < box.left - 1) bad.push(`${name(e)}: x ${r.left}..${r.right} outside ${box.left}..${box.right}`);
  }
  for (const e of area.querySelectorAll('.wb-block, .wb-column, .wb-columns, .wb-toolbar, .widget-hbox, .widget-vbox, .widget-dropdown, .widget-select')) {
    if (e.offsetParent !== null && e.scrollWidth > e.clientWidth + 1) bad.push(`${name(e)}: content ${e.scrollWidth} > ${e.clientWidth}`);
  }
  return bad;
}"""


def _cell(page, i):
    return page.locator(".jp-Notebook .jp-Cell").nth(i)


def _area(page, i):
    return _cell(page, i).locator(".jp-OutputArea-output").filter(has=page.locator(".wb-inspector")).first


def _idle(page):
    page.wait_for_function("() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel"
                           ".status === 'idle'", timeout=TIMEOUT)


def _wait_text(area, selector, text):
    area.locator(selector, has_text=text).first.wait_for(timeout=TIMEOUT)


def _readout_after_hover(page, target, readout, **position):
    target.hover(**position)
    page.wait_for_function("e => e.textContent.trim().length > 1", arg=readout.element_handle(), timeout=10_000)
    return readout.inner_text()


def _check(page, name):
    """No overflow in any of the three views; a screenshot of each."""
    page.wait_for_timeout(400)
    for i, kind in enumerate(("image", "text", "table")):
        area = _area(page, i)
        area.scroll_into_view_if_needed()
        area.screenshot(path=str(ARTIFACTS / f"{kind}-{name}.png"))
        bad = area.evaluate(OVERFLOW)
        assert bad == [], "\n".join([kind, name, *bad])


@pytest.fixture(scope="module")
def page(lab, browser):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page, errors = _fixtures.open_notebook(lab, browser, "views.ipynb", [IMAGE, TEXT, TABLE], TIMEOUT)
    page.set_viewport_size({"width": 1600, "height": 1400})
    for i in range(3):
        _area(page, i).locator(".wb-columns").wait_for(timeout=TIMEOUT)
    _idle(page)
    yield page
    assert not errors, errors
    page.close()


def test_image_view_draws_pixels_with_their_values_and_follows_keys_and_pickers(page):
    area = _area(page, 0)
    # Example 0 through "prep": 0/64 .. 63/64 in an 8x8 canvas, grey colour map with its range shown.
    assert area.locator(".wb-title").count() == 1 and area.locator(".wb-title").inner_text().startswith("example 0 ·")
    summary = area.locator(".workbench-summary").inner_text()
    assert "1x8x8" in summary and "0.9844" in summary, summary
    grid = area.locator(".wb-grid")
    assert grid.locator("canvas.wb-pixels").evaluate("c => [c.width, c.height]") == [8, 8]
    assert grid.locator(".wb-colourbar-lo").inner_text() == "0" and grid.locator(".wb-colourbar-hi").inner_text() == "0.9844"
    canvas = grid.locator("canvas.wb-pixels")
    box = canvas.bounding_box()
    assert box["width"] >= 200, box  # scaled up, crisp (pixelated), not a thumbnail
    text = _readout_after_hover(page, canvas, grid.locator(".wb-readout"),
                                position={"x": box["width"] * 4.5 / 8, "y": box["height"] * 2.5 / 8})
    assert text == f"(row 2, col 4) = {2 * 8 / 64 + 4 / 64:.4g}", text
    hist = area.locator(".wb-histogram")
    text = _readout_after_hover(page, hist.locator("rect.wb-hit").first, hist.locator(".wb-readout"))
    assert re.fullmatch(r"\[0, 0\.0328\d*\): 3", text), text  # 30 bins over [0, 0.984]: 0, 1/64, 2/64

    # The step picker's lines, in one font so their columns line up; a conv layer's channels as a grid.
    select = area.locator(".wb-steps select")
    assert "monospace" in select.evaluate("s => getComputedStyle(s).fontFamily").lower() or \
        "mono" in select.evaluate("s => getComputedStyle(s).fontFamily").lower()
    options = [o.replace("\xa0", " ") for o in select.locator("option").all_text_contents()]
    assert options[0].startswith("post") and any(".conv1 Conv2d(1, 4" in o for o in options), options
    select.select_option(index=next(i for i, o in enumerate(options) if ".conv1" in o))
    _wait_text(area, ".wb-caption", "showing 4 of 4 channels")
    assert area.locator(".wb-grid canvas.wb-pixels").count() == 4
    assert [c.split(" [")[0] for c in area.locator(".wb-panel figcaption").all_inner_texts()] == \
        ["ch 0", "ch 1", "ch 2", "ch 3"]
    assert area.locator(".wb-grid .wb-colourbar-label").inner_text() == "viridis, each panel scaled to its own range"
    area.screenshot(path=str(ARTIFACTS / "image-maps-light-1600.png"))

    # Arrow keys in the view move between examples (and steps); the number box follows.
    area.locator(".wb-title").click()
    started = time.perf_counter()
    page.keyboard.press("ArrowRight")
    _wait_text(area, ".wb-title", "example 1 ·")
    timings = {"select_example_to_drawn_ms": round((time.perf_counter() - started) * 1000, 1)}
    assert area.locator("input[type=number]").first.input_value() == "1"

    # The whole pipeline's output: the top-k as SVG bars with class names and values, none clipped.
    select.select_option(index=0)
    bars = area.locator(".wb-bars")
    bars.wait_for(timeout=TIMEOUT)
    labels = bars.locator("text.wb-label").all_text_contents()
    values = bars.locator("text.wb-value").all_text_contents()
    assert len(labels) == 5 and all(re.fullmatch(r"\d: digit \d", label) for label in labels), labels
    assert all(re.fullmatch(r"[-0-9.e]+", v) for v in values), values
    text = _readout_after_hover(page, bars.locator("g.wb-bar-row").first, bars.locator(".wb-readout"))
    assert text == f"{labels[0]}: {values[0]}"

    # Compared with example 5: two columns, one title each, the bars on one axis (the overflow test
    # below checks this state at both widths).
    area.locator(".widget-checkbox input").check()
    page.wait_for_function("a => a.querySelectorAll('.wb-title').length === 2", arg=area.element_handle(),
                           timeout=TIMEOUT)
    assert [t.split(" · ")[0] for t in area.locator(".wb-title").all_inner_texts()] == ["example 1", "example 1"]
    number = area.locator("input[type=number]").nth(1)
    number.fill("5")
    number.press("Enter")
    _wait_text(area, ".wb-title", "example 5 ·")
    assert area.locator(".wb-bars").count() == 2
    area.screenshot(path=str(ARTIFACTS / "image-compare-light-1600.png"))
    (ARTIFACTS / "timings.json").write_text(json.dumps(timings))


def test_text_view_shows_tokens_and_coloured_attributions(page):
    area = _area(page, 1)
    assert area.locator(".workbench-raw-text").inner_text().strip() == SENTENCE
    tokens = area.locator(".wb-tokens .wb-token")
    assert tokens.all_inner_texts() == SENTENCE.split()
    assert area.locator(".wb-tokens .wb-caption").inner_text() == "9 tokens"
    area.locator(".lm-TabBar-tab", has_text="Attribution").click()
    attribution = area.locator(".wb-tokens", has=page.locator(".wb-token-value"))
    attribution.wait_for(timeout=TIMEOUT)
    _idle(page)
    coloured = attribution.locator(".wb-token")
    words = [t.split("\n")[0] for t in coloured.all_inner_texts()]
    assert words == SENTENCE.split(), words
    backgrounds = coloured.evaluate_all("ts => ts.map(t => getComputedStyle(t).backgroundColor)")
    assert len(set(backgrounds)) > 2, backgrounds  # coloured by value, not one colour
    assert "blue: against the target" in area.inner_text()
    text = _readout_after_hover(page, coloured.first, attribution.locator(".wb-readout"))
    assert re.fullmatch(r"the: -?[0-9.e-]+", text), text
    summary = area.locator(".workbench-summary", has_text="method").inner_text()
    assert "layer_integrated_gradients @ embedding" in summary and "predicted" in summary, summary


def test_table_view_names_each_feature_with_its_value_and_bar(page):
    area = _area(page, 2)
    table = area.locator(".wb-table")
    names = table.locator("th").all_inner_texts()
    assert names[0] == "alcohol" and names[-1] == "proline" and len(names) == 13
    values = table.locator("td.wb-num").all_inner_texts()
    assert all(re.fullmatch(r"-?[0-9.e-]+", v) for v in values), values
    assert table.locator(".wb-cell-bar").count() == 13
    text = _readout_after_hover(page, table.locator("tr").last, area.locator(".wb-table").locator("..").locator(".wb-readout"))
    assert text == f"proline: {values[-1]}"
    select = area.locator(".wb-steps select")
    select.select_option(index=0)
    bars = area.locator(".wb-bars")
    bars.wait_for(timeout=TIMEOUT)
    assert set(bars.locator("text.wb-label").all_text_contents()) == {"0: class_0", "1: class_1", "2: class_2"}


def test_no_overflow_at_two_widths_and_both_themes(page):
    _check(page, "light-1600")
    page.set_viewport_size({"width": 900, "height": 1400})
    _check(page, "light-900")
    page.evaluate("window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})")
    page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'", timeout=TIMEOUT)
    page.wait_for_timeout(800)
    title = _area(page, 0).locator(".wb-title").first
    colour = title.evaluate("e => getComputedStyle(e).color")
    channels = [int(c) for c in re.findall(r"\d+", colour)[:3]]
    assert sum(channels) / 3 > 150, f"the title is drawn {colour} on the dark theme"
    _check(page, "dark-900")
    page.set_viewport_size({"width": 1600, "height": 1400})
    _check(page, "dark-1600")
    page.evaluate("window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Light'})")
    page.wait_for_function("() => document.body.dataset.jpThemeLight === 'true'", timeout=TIMEOUT)


def test_overlay_opacity_redraws_in_the_page_and_the_view_exports(page):
    area = _area(page, 0)
    area.locator(".lm-TabBar-tab", has_text="Attribution").click()
    overlay = area.locator(".wb-overlay")
    overlay.wait_for(timeout=TIMEOUT)
    _idle(page)
    over = overlay.locator("canvas.wb-over")
    before = over.evaluate("c => c.toDataURL()")
    slider = overlay.locator("input.wb-alpha")
    slider.evaluate("s => { s.value = '0.1'; s.dispatchEvent(new Event('input')); }")
    # Redrawn at once, in the page: no kernel round trip before the pixels change.
    assert over.evaluate("c => c.dataset.alpha") == "0.1" and over.evaluate("c => c.toDataURL()") != before
    assert overlay.locator(".wb-alpha-value").inner_text() == "0.10"
    box = over.bounding_box()
    text = _readout_after_hover(page, over, overlay.locator(".wb-readout"),
                                position={"x": box["width"] / 2, "y": box["height"] / 2})
    assert re.fullmatch(r"attribution · \(row 4, col 4\) = -?[0-9.e-]+", text), text
    view = area.locator(".wb-inspector", has=page.locator(".wb-overlay"))
    for kind, signature in (("svg", b"<svg"), ("png", b"\x89PNG")):
        try:
            with page.expect_download(timeout=30_000) as download:
                view.locator(f".wb-export-{kind}").click()
        except Exception as exc:
            raise AssertionError(f"no {kind} download; the view says {view.locator('.wb-status').inner_text()!r}") from exc
        data = Path(download.value.path()).read_bytes()
        assert data.startswith(signature) and len(data) > 1000, (kind, len(data))
        (ARTIFACTS / f"export.{kind}").write_bytes(data)
    assert "wb-overlay" in (ARTIFACTS / "export.svg").read_text()
