"""What the browser draws for the inspector's current view: one column per example, as JSON and arrays.

:func:`inspector_view` turns what :class:`InspectorState` computes into the description the front end
(``static/inspector.js``) draws: per example one title, the summary, and blocks - an image or
feature-map ``grid`` (float32 panels, colour map and range), a ``histogram`` (counts computed here),
top-k ``bars``, a feature row as a name/value ``table`` with bars, ``tokens``, ``text``, a ``scalar``.
When two examples are compared, their views share one scale: each channel's colour range, the
histogram's bins and the bars' axis cover both.

Bounded: at most ``max_panels`` panels and :data:`~workbench.inspector.canvas.MAX_VALUES` values per
view (image data beyond it is downsampled by a whole stride, and the caption says so; above
:data:`~workbench.inspector.canvas.HALF_ABOVE` values they go as float16), 512 tokens, 200 table
rows, 5,000 characters of text.

>>> from workbench import transform
>>> from workbench.inspector import InspectorState
>>> state = InspectorState(transform(lambda x: x * 2), [torch.ones(3, 4, 4)])
>>> data, spec = inspector_view(state)
>>> [b["kind"] for b in spec["columns"][0]["blocks"]]
['grid', 'histogram']
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch

from .canvas import HALF_ABOVE, MAX_VALUES, ViewData
from .summary import as_tensor, image_layout, text_of, top_k

__all__ = ["inspector_view", "MAX_TOKENS", "MAX_ROWS"]

MAX_TOKENS = 512
MAX_ROWS = 200
_MAX_TEXT = 5000


def inspector_view(state: Any) -> tuple[ViewData, dict[str, Any]]:
    """The current view of ``state`` (an :class:`InspectorState`): its arrays and its description."""
    indices = [state.example] + ([state.compare] if state.compare is not None else [])
    data = ViewData()
    shown = [_Shown(state, i) for i in indices]
    scale = _SharedScale(shown)
    columns = [_column(state, s, data, scale) for s in shown]
    if scale.shared:
        scale.align(columns)
    step = state.step.name or state.step.where.strip("[]").replace("][", "-") or "pipeline"
    other = f"-vs-{state.compare}" if state.compare is not None else ""
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in f"inspector-{step}-{state.example}{other}")
    return data, {"columns": columns, "navigation": True, "name": name}


class _Shown:
    """One example's shown value, summary and message."""

    def __init__(self, state: Any, index: int):
        self.index = index
        self.summary = state.summary(index)
        self.message = None if self.summary is not None else state.output(index)[1]
        self.value = state.value(index) if self.summary is not None else None
        self.kind = self.summary.kind if self.summary is not None else None
        self.tensor = as_tensor(self.value) if self.summary is not None and self.summary.numeric else None


class _SharedScale:
    """The ranges compared columns share: per-panel colour ranges, histogram range, bar axis."""

    def __init__(self, shown: list[_Shown]):
        self.shared = len(shown) > 1
        finite = [s for s in shown if s.summary is not None and s.summary.min is not None]
        self.hist = (min(s.summary.min for s in finite), max(s.summary.max for s in finite)) if finite else None
        self.panels: dict[tuple[int, tuple[int, ...]], tuple[float, float]] = {}
        self.bars: tuple[float, float] | None = None

    def panel(self, i: int, panel: np.ndarray, lo: float, hi: float) -> tuple[float, float]:
        key = (i, panel.shape)
        if self.shared and key in self.panels:
            lo, hi = min(lo, self.panels[key][0]), max(hi, self.panels[key][1])
        self.panels[key] = (lo, hi)
        return lo, hi

    def align(self, columns: list[dict[str, Any]]) -> None:
        """Give every column the ranges widened over all columns."""
        blocks = [b for c in columns for b in c["blocks"]]
        for b in blocks:
            if b["kind"] == "grid" and not b["rgb"]:
                for i, p in enumerate(b["panels"]):
                    p["lo"], p["hi"] = self.panels[(i, tuple(p["array"]["shape"]))]
        domains = [b["domain"] for b in blocks if b["kind"] in ("bars", "table")]
        for b in blocks:
            if b["kind"] in ("bars", "table"):
                b["domain"] = [min(d[0] for d in domains), max(d[1] for d in domains)]


def _column(state: Any, shown: _Shown, data: ViewData, scale: _SharedScale) -> dict[str, Any]:
    column: dict[str, Any] = {"title": state.title(shown.index), "blocks": []}
    if shown.summary is None:
        column["message"] = shown.message
        return column
    column["summary"] = [[k, v] for k, v in shown.summary.rows() if k != "view"]
    blocks = column["blocks"]
    kind = shown.kind
    if kind in ("image", "rgb", "maps"):
        blocks.append(_grid(shown.value, state.options.max_panels, data, scale))
    elif kind == "scores":
        blocks.append(_top_k(shown.value, state))
    elif kind == "features":
        blocks.append(_features(shown.value, state.feature_names))
    elif kind == "tokens":
        tokens = state.tokens(shown.index) or []
        real = sum(not pad for _, pad in tokens)
        caption = f"{real} tokens" + (f" + {len(tokens) - real} padding" if real != len(tokens) else "")
        if len(tokens) > MAX_TOKENS:
            caption += f" (first {MAX_TOKENS} shown)"
        blocks.append({"kind": "tokens", "caption": caption,
                       "tokens": [{"text": t, "pad": p} for t, p in tokens[:MAX_TOKENS]]})
    elif kind == "text":
        text = text_of(shown.value) or ""
        blocks.append({"kind": "text", "text": text[:_MAX_TEXT] + ("…" if len(text) > _MAX_TEXT else "")})
    elif kind == "scalar":
        blocks.append({"kind": "scalar", "value": _number(float(as_tensor(shown.value).item()))})
    elif kind == "empty":
        blocks.append({"kind": "note", "text": "(no elements)"})
    elif kind in ("vector", "numeric"):
        values = np.array2string(shown.tensor.numpy(), threshold=200, precision=4, max_line_width=100)
        blocks.append({"kind": "text", "text": values[:_MAX_TEXT]})
    elif not shown.summary.numeric:
        blocks.append({"kind": "text", "text": shown.summary.preview or repr(shown.value)[:_MAX_TEXT]})
    if shown.tensor is not None and (shown.summary.numel or 0) > 1 and shown.summary.min is not None \
            and kind not in ("tokens", "features"):
        blocks.append(_histogram(shown.tensor, state.options.bins, scale.hist))
    return column


def _grid(value: Any, max_panels: int, data: ViewData, scale: _SharedScale) -> dict[str, Any]:
    layout = image_layout(value, max_panels)
    panels = [np.asarray(p) for p in layout.panels]
    per_value = 3 if layout.rgb else 1
    total = sum(p.shape[0] * p.shape[1] for p in panels) * per_value
    stride = max(1, math.ceil(math.sqrt(total / MAX_VALUES))) if total > MAX_VALUES else 1
    caption = layout.note
    if stride > 1:
        note = f"downsampled 1:{stride} (at most {MAX_VALUES:,} values per view)"
        caption = f"{caption} · {note}" if caption else note
    block: dict[str, Any] = {"kind": "grid", "caption": caption, "rgb": layout.rgb,
                             "cmap": None if layout.rgb else ("gray" if len(panels) == 1 else "viridis"),
                             "shared": scale.shared and not layout.rgb, "panels": []}
    for i, (panel, title) in enumerate(zip(panels, layout.titles)):
        small = panel[::stride, ::stride]
        if layout.rgb:
            block["panels"].append({"title": title, "stride": stride,
                                    "array": data.array(np.round(np.clip(small, 0, 1) * 255).astype(np.uint8))})
            continue
        small = small.astype(np.float32)
        finite = small[np.isfinite(small)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
        lo, hi = scale.panel(i, small, lo, hi)
        block["panels"].append({"title": title, "stride": stride, "lo": lo, "hi": hi,
                                "array": data.array(small, half=total // stride ** 2 > HALF_ABOVE)})
    return block


def _histogram(t: torch.Tensor, bins: int, shared: tuple[float, float] | None) -> dict[str, Any]:
    values = t.to(torch.float64).flatten().numpy()
    values = values[np.isfinite(values)]
    lo, hi = shared if shared is not None else (float(values.min()), float(values.max()))
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    counts, edges = np.histogram(values, bins=bins, range=(lo, hi))
    return {"kind": "histogram", "caption": f"histogram of {values.size:,} finite values",
            "counts": counts.tolist(), "edges": [_number(e) for e in edges]}


def _top_k(value: Any, state: Any) -> dict[str, Any]:
    k = top_k(value, state.options.top_k, state.options.class_names)
    rows = [{"label": label if label == str(i) else f"{i}: {label}", "value": _number(v)} for i, label, v in k.rows()]
    return {"kind": "bars", "caption": f"top {len(k.indices)} of {k.length}", "rows": rows,
            "domain": _domain([r["value"] for r in rows])}


def _features(value: Any, names: Sequence[str] | None) -> dict[str, Any]:
    t = as_tensor(value)
    while t.dim() > 1 and t.shape[0] == 1:
        t = t[0]
    values = np.nan_to_num(t.reshape(-1).to(torch.float64).numpy())
    n = len(values)
    labels = [str(v) for v in names] if names is not None and len(names) == n else [str(i) for i in range(n)]
    shown = min(n, MAX_ROWS)
    rows = [{"label": label, "value": _number(v)} for label, v in zip(labels[:shown], values[:shown])]
    return {"kind": "table", "caption": f"features ({n})" + ("" if shown == n else f", first {shown} shown"),
            "rows": rows, "domain": _domain([r["value"] for r in rows])}


def _domain(values: Sequence[float]) -> list[float]:
    finite = [v for v in values if math.isfinite(v)]
    return [min([0.0, *finite]), max([0.0, *finite])]


def _number(v: float) -> float | None:
    """A float JSON can carry (NaN and Inf have no JSON spelling: they become ``None``)."""
    v = float(v)
    return v if math.isfinite(v) else None
