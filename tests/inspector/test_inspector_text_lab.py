"""The inspector on a text pipeline in a real JupyterLab 4 in headless Chromium: the sentence, its words
and the class names are visible, and no figure is drawn wider than its natural size (two widths, light
and dark themes). Screenshots go to test-artifacts/inspector-text-*.png."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "_workbench_lab_fixtures", Path(__file__).resolve().parents[1] / "extension" / "conftest.py")
_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fixtures)
lab, browser = _fixtures.lab, _fixtures.browser

pytestmark = pytest.mark.timeout(400)
TIMEOUT = 120_000  # ms; the first cell imports torch and trains a small model in a new kernel
TESTS = Path(__file__).resolve().parents[1]
ARTIFACTS = _fixtures.ARTIFACTS.parent
SENTENCE = "the striker scored a late goal after extra time"

CELL = f"""\
import sys
sys.path.insert(0, {str(TESTS)!r})
from text_model import build, load_corpus
from workbench import inspect

texts, labels = load_corpus()
pl, vocab = build(texts[:150], labels[:150], epochs=10)
w = inspect(pl, [{SENTENCE!r}] + texts[150:])
w.tabs.selected_index = list(w.tabs.titles).index("Attribution")
w"""


def _figures_at_natural_size(page) -> list[dict]:
    """Every widget image in the page with its drawn and natural widths."""
    return page.evaluate(
        "() => [...document.querySelectorAll('.jp-OutputArea-output img.widget-image')]"
        ".filter(img => img.offsetParent !== null && img.naturalWidth > 0)"
        ".map(img => ({drawn: img.getBoundingClientRect().width, natural: img.naturalWidth}))")


def _check_and_shoot(page, name: str) -> None:
    figures = _figures_at_natural_size(page)
    assert figures, "no figure is shown"
    for f in figures:
        assert f["drawn"] <= f["natural"] + 0.5, f"a figure is stretched: {f}"
    page.locator(".jp-OutputArea-output").first.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / f"inspector-text-{name}.png"))


def test_text_inspector_shows_words_and_class_names_at_natural_size(lab, browser):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page, errors = _fixtures.open_notebook(lab, browser, "text-inspector.ipynb", [CELL], TIMEOUT)
    try:
        output = page.locator(".jp-OutputArea-output").first
        raw = output.locator(".workbench-raw-text").first
        raw.wait_for(timeout=TIMEOUT)
        assert raw.is_visible() and raw.inner_text().strip() == SENTENCE
        page.wait_for_function("() => document.body.innerText.includes('attributions (9,) for target')",
                               timeout=TIMEOUT)
        page.wait_for_function("() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel"
                               ".status === 'idle'", timeout=TIMEOUT)
        text = output.inner_text()
        assert "predicted 0 (sport)" in text, text[-800:]
        def dropdown(label: str):
            return output.locator(".widget-dropdown", has=page.locator("label", has_text=label)).locator("select")

        targets = " ".join(dropdown("target").locator("option").all_text_contents())
        for name in ("sport", "politics", "science"):
            assert name in targets, targets
        # The layer picker names the layer the explanation used, not "input".
        assert dropdown("layer").evaluate("s => s.options[s.selectedIndex].text") == "embedding"
        assert dropdown("method").evaluate("s => s.options[s.selectedIndex].text") == "layer_integrated_gradients"
        # The words of the sentence, in the attribution figure's source: the explanation's tokens.
        assert all(word in raw.inner_text() for word in SENTENCE.split())
        _check_and_shoot(page, "light-1500")

        page.set_viewport_size({"width": 900, "height": 1000})
        page.wait_for_timeout(500)
        _check_and_shoot(page, "light-900")

        page.evaluate("window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})")
        page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'", timeout=TIMEOUT)
        page.wait_for_timeout(800)
        assert raw.is_visible()
        colour = raw.evaluate("e => getComputedStyle(e).color")
        assert colour != "rgb(0, 0, 0)", "the sentence is drawn black on the dark theme"
        _check_and_shoot(page, "dark-900")
        page.set_viewport_size({"width": 1500, "height": 1000})
        page.wait_for_timeout(500)
        _check_and_shoot(page, "dark-1500")
        assert not errors, errors
    finally:
        page.close()
