"""Matplotlib drawings of one step's output: histogram, image or feature-map grid, top-k bars, text.

Figures are built with :class:`matplotlib.figure.Figure` directly (not pyplot), so nothing is
registered globally, nothing leaks when many are drawn, and any backend works (Agg in tests).

>>> import torch
>>> from workbench.inspector.views import view_figure, ViewOptions
>>> fig = view_figure([("example 0", torch.rand(8, 4, 4), None)], ViewOptions(max_panels=4))
>>> sum(1 for ax in fig.axes if ax.images)   # four channel panels
4
"""

from __future__ import annotations

import io
import math
import os
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
    width: float = 5.0
    height: float = 5.0
    dpi: int = 100


_IMAGE_KINDS = ("image", "rgb", "maps")
_TEXT_LINES = 28
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
        fig.suptitle(title, fontsize=10)
        _draw_text(fig.add_subplot(), message)
        return
    s = summarize(value)
    stats = s.stats_text()
    head = f"{title}\n{s.type_name} {s.shape_text} {s.dtype or ''}".rstrip()
    fig.suptitle(head + (f"\n{stats}" if stats else ""), fontsize=9)
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
    layout = image_layout(value, max_panels)
    n = layout.shown
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, panel, title in zip(axes, layout.panels, layout.titles):
        data = np.asarray(panel, dtype=np.float32) if not layout.rgb else panel
        if layout.rgb:
            ax.imshow(data, interpolation="nearest")
        else:
            data = np.ma.masked_invalid(data)
            ax.imshow(data, cmap="gray" if n == 1 else "viridis", interpolation="nearest")
        if title:
            ax.set_title(title, fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[n:]:
        ax.axis("off")
    if layout.note:
        fig.supxlabel(layout.note, fontsize=8)


def _draw_topk(ax: Any, value: Any, options: ViewOptions) -> None:
    k = top_k(value, options.top_k, options.class_names)
    labels = [f"{label}" if label == str(i) else f"{i}: {label}" for i, label, _ in k.rows()]
    ax.barh(range(len(k.values))[::-1], k.values, color="#4c72b0")
    ax.set_yticks(range(len(k.values))[::-1], labels, fontsize=8)
    for y, v in zip(range(len(k.values))[::-1], k.values):
        ax.text(v, y, f" {v:.4g}", va="center", fontsize=7)
    ax.set_title(f"top {len(k.indices)} of {k.length}", fontsize=8)
    ax.tick_params(axis="x", labelsize=7)


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
            transform=ax.transAxes)


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
