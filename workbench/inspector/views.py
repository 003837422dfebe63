"""Matplotlib drawings of one step's output: histogram, image or feature-map grid, top-k bars, text.

Figures are built with :class:`matplotlib.figure.Figure` directly (not pyplot), so nothing is
registered globally, nothing leaks when many are drawn, and any backend works (Agg in tests).

>>> import torch
>>> from workbench.inspector.views import view_figure, ViewOptions
>>> fig = view_figure([("example 0", torch.rand(8, 4, 4), None)], ViewOptions(max_panels=4))
>>> [t.get_text() for ax in fig.axes for t in ax.texts]   # four channel panels in one mosaic
['ch 0', 'ch 1', 'ch 2', 'ch 3']
"""

from __future__ import annotations

import io
import math
import os
import textwrap
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

from .summary import Summary, as_tensor, image_layout, summarize, text_of, top_k

__all__ = ["ViewOptions", "Column", "view_figure", "histogram_figure", "figure_png", "save_png"]

Column = tuple[str, Any, "str | None"]
"""(title, value, message): ``message`` replaces the value's views (e.g. "step did not run")."""


@dataclass
class ViewOptions:
    """How values are drawn: histogram bins, panel cap for feature maps, top-k size, class names."""

    bins: int = 30
    max_panels: int = 16
    top_k: int = 5
    class_names: Sequence[str] | Mapping[int, str] | None = None
    feature_names: Sequence[str] | None = None
    features: bool = False  # vectors are feature rows (preprocessing), drawn as named bars, not top-k scores
    width: float = 5.0
    height: float = 5.0
    dpi: int = 100


_IMAGE_KINDS = ("image", "rgb", "maps")
_TEXT_LINES = 28
_TITLE_WIDTH = 70
_TEXT_WIDTH = 90


def view_figure(columns: Sequence[Column], options: ViewOptions | None = None) -> Figure:
    """One column per value (two for a comparison): title with statistics, main view, histogram."""
    options = options or ViewOptions()
    fig = Figure(figsize=(options.width * len(columns), options.height), dpi=options.dpi,
                 layout="constrained")
    subfigs = fig.subfigures(1, len(columns), squeeze=False)[0]
    for subfig, (title, value, message) in zip(subfigs, columns):
        _draw_column(subfig, title, value, message, options)
    return fig


def _draw_column(fig: Any, title: str, value: Any, message: str | None, options: ViewOptions) -> None:
    if message is not None:
        fig.suptitle(textwrap.fill(title, _TITLE_WIDTH), fontsize=9, parse_math=False)
        _draw_text(fig.add_subplot(), message)
        return
    s = summarize(value)
    if options.features and s.kind == "scores":
        s.kind = "features"
    stats = s.stats_text()
    title = textwrap.fill(title, _TITLE_WIDTH)
    head = f"{title}\n{s.type_name} {s.shape_text} {s.dtype or ''}".rstrip()
    fig.suptitle(head + (f"\n{stats}" if stats else ""), fontsize=9, parse_math=False)
    if s.numeric and (s.numel or 0) > 1 and s.min is not None:
        top, bottom = fig.subfigures(2, 1, height_ratios=[3, 1.2])
        _draw_main(top, value, s, options)
        _draw_histogram(bottom.add_subplot(), value, options.bins)
    else:
        _draw_main(fig, value, s, options)


def _draw_main(fig: Any, value: Any, s: Summary, options: ViewOptions) -> None:
    if s.kind in _IMAGE_KINDS:
        _draw_images(fig, value, options.max_panels)
    elif s.kind == "scores":
        _draw_topk(fig.add_subplot(), value, options)
    elif s.kind == "features":
        _draw_features(fig.add_subplot(), value, options.feature_names)
    elif s.kind == "text":
        _draw_text(fig.add_subplot(), text_of(value) or "")
    elif s.kind == "scalar":
        ax = fig.add_subplot()
        ax.axis("off")
        ax.text(0.5, 0.5, f"{as_tensor(value).item():.6g}", ha="center", va="center", fontsize=28)
    elif s.kind == "empty":
        _draw_text(fig.add_subplot(), "(no elements)")
    else:
        _draw_text(fig.add_subplot(), s.preview or repr(value))


def _draw_images(fig: Any, value: Any, max_panels: int) -> None:
    """One image, or a grid of panels tiled into one mosaic (one ``imshow`` is fast to draw and export).

    In a grid each panel is scaled to its own range, so weak and strong channels are both visible;
    NaN shows as red, gaps between panels as white.
    """
    layout = image_layout(value, max_panels)
    ax = fig.add_subplot()
    ax.set_xticks([])
    ax.set_yticks([])
    if layout.shown == 1:
        panel = layout.panels[0]
        if layout.rgb:
            ax.imshow(panel, interpolation="nearest")
        else:
            image = ax.imshow(np.ma.masked_invalid(np.asarray(panel, dtype=np.float32)), cmap=_cmap("gray"),
                              interpolation="nearest")
            fig.colorbar(image, ax=ax, shrink=0.8)
        if layout.note:
            ax.set_xlabel(layout.note, fontsize=8, parse_math=False)
        return
    mosaic, origins = _mosaic([np.asarray(p, dtype=np.float32) for p in layout.panels])
    ax.imshow(mosaic, interpolation="nearest")
    for (row, col), title in zip(origins, layout.titles):
        ax.text(col, row, title, fontsize=6, parse_math=False, color="white", va="top", ha="left",
                bbox={"facecolor": "black", "alpha": 0.5, "pad": 0.5, "linewidth": 0})
    ax.set_xlabel(layout.note, fontsize=8, parse_math=False)
    for spine in ax.spines.values():
        spine.set_visible(False)


def _mosaic(panels: list[np.ndarray]) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """An RGBA mosaic of the panels, each scaled to [0, 1] and coloured with viridis, in a near-square grid.

    NaN pixels are red, +Inf/-Inf the top/bottom of the scale, gaps between panels white. Returns the
    mosaic and the top-left corner (row, column) of each panel.
    """
    import matplotlib

    n = len(panels)
    h, w = panels[0].shape
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    gap = max(1, min(h, w) // 8)
    mosaic = np.ones((rows * (h + gap) - gap, cols * (w + gap) - gap, 4), dtype=np.float32)
    colours = matplotlib.colormaps["viridis"]
    origins = []
    for i, panel in enumerate(panels):
        finite = np.isfinite(panel)
        scaled = np.zeros_like(panel)  # a constant panel (e.g. a dead ReLU channel) is drawn dark
        if finite.any():
            lo, hi = float(panel[finite].min()), float(panel[finite].max())
            if hi > lo:
                scaled = (panel - lo) / (hi - lo)
        scaled = np.where(np.isposinf(panel), 1.0, np.where(np.isneginf(panel), 0.0, scaled))
        rgba = colours(np.nan_to_num(scaled, nan=0.0)).astype(np.float32)
        rgba[np.isnan(panel)] = (0.84, 0.15, 0.16, 1.0)
        r, c = divmod(i, cols)
        top, left = r * (h + gap), c * (w + gap)
        mosaic[top:top + h, left:left + w] = rgba
        origins.append((top - 0.5, left - 0.5))
    return mosaic, origins


def _cmap(name: str) -> Any:
    import matplotlib

    cmap = matplotlib.colormaps[name].copy()
    cmap.set_bad("#d62728")
    return cmap


def _draw_topk(ax: Any, value: Any, options: ViewOptions) -> None:
    k = top_k(value, options.top_k, options.class_names)
    labels = [f"{label}" if label == str(i) else f"{i}: {label}" for i, label, _ in k.rows()]
    ax.barh(range(len(k.values))[::-1], k.values, color="#4c72b0")
    ax.set_yticks(range(len(k.values))[::-1], labels, fontsize=8, parse_math=False)
    for y, v in zip(range(len(k.values))[::-1], k.values):
        ax.text(v, y, f" {v:.4g}", va="center", fontsize=7)
    ax.set_title(f"top {len(k.indices)} of {k.length}", fontsize=8)
    ax.tick_params(axis="x", labelsize=7)


def _draw_features(ax: Any, value: Any, names: Sequence[str] | None) -> None:
    """A feature row as one horizontal bar per feature, labelled with its name (or position)."""
    values = _squeeze_vector(value)
    n = len(values)
    labels = list(names) if names is not None and len(names) == n else [str(i) for i in range(n)]
    shown = min(n, 40)
    positions = np.arange(shown)
    ax.barh(positions, values[:shown], color=np.where(values[:shown] >= 0, "#4c72b0", "#c44e52"))
    ax.set_yticks(positions, labels[:shown], fontsize=7 if shown > 16 else 8, parse_math=False)
    ax.invert_yaxis()
    ax.axvline(0, color="0.4", linewidth=0.6)
    ax.set_title(f"features ({n})" + ("" if shown == n else f", first {shown} shown"), fontsize=8)
    ax.tick_params(axis="x", labelsize=7)


def _squeeze_vector(value: Any) -> np.ndarray:
    t = as_tensor(value)
    while t.dim() > 1 and t.shape[0] == 1:
        t = t[0]
    return np.nan_to_num(t.reshape(-1).to(torch.float64).numpy())


def _draw_histogram(ax: Any, value: Any, bins: int) -> None:
    t = as_tensor(value)
    data = t.to(torch.float64).flatten().numpy()
    data = data[np.isfinite(data)]
    ax.hist(data, bins=bins, color="#777777")
    ax.set_title("histogram (finite values)", fontsize=8)
    ax.tick_params(labelsize=7)


def _draw_text(ax: Any, text: str) -> None:
    lines = []
    for line in text.splitlines() or [""]:
        while len(line) > _TEXT_WIDTH:
            lines.append(line[:_TEXT_WIDTH])
            line = line[_TEXT_WIDTH:]
        lines.append(line)
    if len(lines) > _TEXT_LINES:
        lines = lines[:_TEXT_LINES - 1] + [f"... ({len(lines) - _TEXT_LINES + 1} more lines)"]
    ax.axis("off")
    ax.text(0.0, 1.0, "\n".join(lines), ha="left", va="top", family="monospace", fontsize=8,
            transform=ax.transAxes, parse_math=False)


def histogram_figure(value: Any, bins: int = 30) -> Figure:
    """A histogram of the finite values of a numeric value."""
    fig = Figure(figsize=(5, 3), layout="constrained")
    _draw_histogram(fig.add_subplot(), value, bins)
    return fig


def figure_png(fig: Figure, dpi: int | None = None) -> bytes:
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def save_png(fig: Figure, path: str | os.PathLike[str], dpi: int | None = None) -> str:
    """Write the figure to ``path`` as PNG (written to a temporary name first, then moved into place)."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"cannot export PNG to {path!r}: directory {directory!r} does not exist")
    data = figure_png(fig, dpi)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path
