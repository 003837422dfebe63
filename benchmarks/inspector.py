"""The inspector's view drawn in the browser vs the PNG it used to send: bytes per view and time to draw.

Run: ``python benchmarks/inspector.py`` (needs Chromium at /usr/bin/chromium, driven by Playwright).
For each view, both implementations in the same run, with the example's trace already cached (tracing
costs the same for both):

- bytes: what the kernel sends for the view on a page that has nothing yet - the description (JSON)
  and the arrays as raw float32/float16/uint8 buffers - vs the PNG of the matplotlib figure (sent as raw
  bytes by an ipywidgets Image);
- kernel: building the description and arrays (``inspector_view``) vs drawing the figure and
  encoding the PNG (``state.figure()`` + ``figure_png``);
- browser: drawing the description with the front end (canvas, SVG, HTML; layout forced) vs
  decoding the PNG and laying it out, timed in Chromium;
- select -> drawn: kernel + browser (the loopback transfer is left out; see bytes).

Goal: at least 2x faster to draw and fewer bytes for feature-map grids. Medians of several runs.
"""

from __future__ import annotations

import base64
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits

from workbench import batch, transform, unbatch
from workbench.inspector import InspectorState
from workbench.inspector.payload import inspector_view
from workbench.inspector.views import figure_png

REPEATS = 7
STATIC = Path(__file__).resolve().parents[1] / "workbench" / "inspector" / "static"
CHROMIUM = os.environ.get("WORKBENCH_CHROMIUM", "/usr/bin/chromium")


def _median(fn, repeats: int = REPEATS) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def _cases() -> list[tuple[str, InspectorState]]:
    torch.manual_seed(0)
    digits = torch.tensor(load_digits().images[:20], dtype=torch.float32) / 16
    large = torch.nn.functional.interpolate(digits[:, None], size=(28, 28), mode="bilinear")[:, 0]
    small_cnn = torch.nn.Sequential(torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.ReLU(),
                                    torch.nn.Flatten(), torch.nn.Linear(16 * 64, 10))
    large_cnn = torch.nn.Sequential(torch.nn.Conv2d(1, 32, 3, padding=1), torch.nn.ReLU(),
                                    torch.nn.Flatten(), torch.nn.Linear(32 * 28 * 28, 10))

    def pipeline(model):
        return (transform(lambda x: x.unsqueeze(0)) - "prep" >> batch >> transform(model) - "cnn" >> unbatch
                >> transform(lambda z: z.softmax(0)) - "probs")

    cases = []
    state = InspectorState(pipeline(small_cnn), digits, layers=True)
    state.select_step("0")
    cases.append(("feature maps 16x8x8 (digits conv)", state))
    state = InspectorState(pipeline(large_cnn), large, layers=True, max_panels=32)
    state.select_step("0")
    cases.append(("feature maps 32x28x28", state))
    state = InspectorState(pipeline(small_cnn), digits, layers=True)
    state.select_step("0")
    state.set_compare(1)
    cases.append(("compare two 16x8x8 grids", state))
    state = InspectorState(pipeline(large_cnn), large)
    state.select_step("prep")
    cases.append(("image 1x28x28", state))
    state = InspectorState(pipeline(small_cnn), digits, class_names=[f"digit {i}" for i in range(10)])
    state.select_step("probs")
    cases.append(("top-k of 10 scores", state))
    return cases


PAGE_SCRIPT = """
window.drawNew = (spec, arrays, repeats) => {
  const decoded = {};
  for (const [key, item] of Object.entries(arrays)) {
    const bytes = Uint8Array.from(atob(item.b64), c => c.charCodeAt(0));
    decoded[key] = item.dtype === 'float32' ? new Float32Array(bytes.buffer)
      : item.dtype === 'float16' ? halfToFloat(new Uint16Array(bytes.buffer)) : bytes;
  }
  const el = document.getElementById('root');
  const times = [];
  for (let i = 0; i < repeats; i++) {
    const start = performance.now();
    drawSpec(el, spec, ref => decoded[ref.key]);
    void el.offsetHeight;
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
};
window.drawPng = async (b64, repeats) => {
  const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
  const el = document.getElementById('root');
  const times = [];
  for (let i = 0; i < repeats; i++) {
    const start = performance.now();
    const img = new Image();
    img.src = URL.createObjectURL(new Blob([bytes], { type: 'image/png' }));
    await img.decode();
    el.replaceChildren(img);
    void el.offsetHeight;
    times.push(performance.now() - start);
    URL.revokeObjectURL(img.src);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
};
"""


def main() -> None:
    from playwright.sync_api import sync_playwright

    rows = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_content("<html><body class='wb-inspector'><div id='root' style='width:1200px'></div></body></html>")
        page.add_style_tag(content=(STATIC / "inspector.css").read_text())
        page.add_script_tag(content=(STATIC / "inspector.js").read_text() + PAGE_SCRIPT, type="module")
        page.wait_for_function("() => window.drawNew !== undefined")
        for name, state in _cases():
            state.columns()  # trace the shown examples once: both implementations start from the cache
            new_kernel, (data, spec) = _median(lambda: inspector_view(state))
            old_kernel, png = _median(lambda: figure_png(state.figure()))
            spec = {**spec, "serial": 1}
            new_bytes = len(json.dumps(spec, separators=(",", ":"))) + sum(len(d) for _, d in data.arrays.values()) \
                + len(json.dumps({"type": "arrays", "arrays": [r for r, _ in data.arrays.values()]}))
            arrays = {key: {"dtype": ref["dtype"], "b64": base64.b64encode(d).decode()}
                      for key, (ref, d) in data.arrays.items()}
            new_browser = page.evaluate("([s, a, n]) => drawNew(s, a, n)", [spec, arrays, REPEATS]) / 1000
            old_browser = page.evaluate("([b, n]) => drawPng(b, n)", [base64.b64encode(png).decode(), REPEATS]) / 1000
            rows.append((name, new_bytes, len(png), new_kernel, old_kernel, new_browser, old_browser))
        browser.close()

    print(f"{'view':34} {'bytes new':>10} {'PNG':>8} {'ratio':>6}   {'kernel ms new/PNG':>17}   "
          f"{'browser ms new/PNG':>18}   {'select->drawn ms new/PNG':>24} {'speed-up':>8}")
    for name, nb, ob, nk, ok, nbw, obw in rows:
        new_total, old_total = nk + nbw, ok + obw
        print(f"{name:34} {nb:>10,} {ob:>8,} {nb / ob:>6.2f}   {nk * 1e3:>8.1f}/{ok * 1e3:<8.1f}   "
              f"{nbw * 1e3:>9.1f}/{obw * 1e3:<8.1f}   {new_total * 1e3:>12.1f}/{old_total * 1e3:<11.1f} "
              f"{old_total / new_total:>7.1f}x")


if __name__ == "__main__":
    main()
