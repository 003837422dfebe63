"""Drawing attributions and debugging tables with matplotlib; every function returns a ``Figure``.

Figures are built without pyplot, so nothing piles up in pyplot's figure registry, and they carry
their own PNG representation, so returning one from a notebook cell shows it (once) whatever the
matplotlib backend. Attributions are drawn on a symmetric colour scale centred on
zero (red: evidence for the target, blue: against); an all-zero attribution draws as neutral
colour, never a division by zero.

>>> fig = plot_explanation(explanation)               # doctest: +SKIP
>>> fig = plot_explanation(explanation, shape=(8, 8))  # a flat 64-vector drawn as an 8x8 image  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import torch

from .._text import shorten

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .explain import Explanation

__all__ = ["plot_explanation", "plot_confusion_matrix", "attribution_kind", "draw_overlay", "overlay_arrays", "CMAP"]

#: Diverging colour map: blue negative, white zero, red positive.
CMAP = "RdBu_r"


def _figure(width: float, height: float) -> "Figure":
    return _display_figure_class()(figsize=(width, height), layout="constrained")


_DISPLAY_FIGURE: type | None = None


def _display_figure_class() -> type:
    """A ``Figure`` subclass that Jupyter shows as a PNG even when pyplot was never imported."""
    global _DISPLAY_FIGURE
    if _DISPLAY_FIGURE is None:
        from matplotlib.figure import Figure

        class AttributionFigure(Figure):
            def _repr_png_(self) -> bytes:
                import io

                buffer = io.BytesIO()
                self.savefig(buffer, format="png", dpi=100)
                return buffer.getvalue()

        _DISPLAY_FIGURE = AttributionFigure
    return _DISPLAY_FIGURE


def _scale(values: np.ndarray) -> float:
    """The colour scale's half range: the largest magnitude, or 1 when everything is zero (or not finite)."""
    finite = values[np.isfinite(values)]
    scale = float(np.abs(finite).max()) if finite.size else 0.0
    return scale if scale > 0 else 1.0


def _image_of(item: Any) -> np.ndarray | None:
    """``item`` as an [H, W] or [H, W, 3] array for ``imshow``, or None when it is not image-like."""
    if not isinstance(item, torch.Tensor) or not item.is_floating_point():
        return None
    t = item.detach().float().cpu()
    if t.dim() == 3 and t.shape[0] in (1, 3, 4) and min(t.shape[1:]) > 1:
        t = t[0] if t.shape[0] == 1 else t[:3].permute(1, 2, 0)
    elif not (t.dim() == 2 and min(t.shape) > 1):
        return None
    array = np.nan_to_num(t.numpy())
    low, high = float(array.min()), float(array.max())
    return (array - low) / (high - low) if high > low else np.zeros_like(array)


def attribution_kind(explanation: "Explanation", shape: Sequence[int] | None = None) -> str:
    """How the explanation is drawn: ``"image"``, ``"text"`` or ``"bars"``."""
    scores = explanation.scores
    if explanation.tokens is not None and scores.dim() == 1 and len(explanation.tokens) == scores.shape[0]:
        return "text"
    if shape is not None or scores.dim() == 2:
        return "image"
    return "bars"


def plot_explanation(explanation: "Explanation", *, shape: Sequence[int] | None = None, alpha: float = 0.6,
                     cmap: str = CMAP, labels: Sequence[str] | None = None, title: str | None = None) -> "Figure":
    """Draw ``explanation`` on its input: a heatmap overlay for images, coloured tokens for text, bars otherwise.

    ``shape`` reshapes a flat input and its scores to an image (``(8, 8)`` for flattened digits);
    ``alpha`` is the overlay's opacity; ``labels`` name the bars of a feature vector.
    """
    kind = attribution_kind(explanation, shape)
    if kind == "text":
        title = title if title is not None else _title(explanation, classes=False)
        return _plot_tokens(explanation.tokens or [], _numpy(explanation.scores), cmap, title, _summary(explanation))
    title = title if title is not None else _title(explanation)
    if kind == "image":
        fig = _figure(7.0, 3.4)
        left, right = fig.subplots(1, 2)
        draw_overlay(left, right, explanation, shape=shape, alpha=alpha, cmap=cmap)
        fig.suptitle(title, fontsize=10)
        return fig
    return _plot_bars(_numpy(explanation.scores).reshape(-1), labels or explanation.tokens or explanation.feature_names,
                      cmap, title)


def overlay_arrays(explanation: "Explanation", shape: Sequence[int] | None = None
                   ) -> tuple[np.ndarray | None, np.ndarray]:
    """What an image overlay shows: the input scaled to [0, 1] (``[H, W]`` or ``[H, W, 3]``, ``None`` when
    it is not image-like) and the attributions as ``[H, W]`` (a coarser layer map is upsampled to the
    input's size). ``shape`` reshapes a flat input and its scores, e.g. ``(8, 8)``."""
    item = explanation.input[0] if isinstance(explanation.input, tuple) else explanation.input
    scores = explanation.scores
    if shape is not None:
        shape = tuple(shape)
        item = item.reshape(shape) if isinstance(item, torch.Tensor) and item.numel() == int(np.prod(shape)) else item
        if scores.numel() == int(np.prod(shape)):
            scores = scores.reshape(shape)
    image = _image_of(item)
    if scores.dim() != 2:
        raise ValueError(f"cannot draw attributions of shape {tuple(scores.shape)} as an image; pass shape=(h, w)")
    if image is not None and tuple(scores.shape) != image.shape[:2]:
        # A layer's coarser map (Grad-CAM) is upsampled to the input's size.
        scores = torch.nn.functional.interpolate(scores[None, None].float(), size=image.shape[:2],
                                                 mode="bilinear", align_corners=False)[0, 0]
    return image, np.nan_to_num(_numpy(scores))


def draw_overlay(input_ax: Any, overlay_ax: Any | None, explanation: "Explanation", *,
                 shape: Sequence[int] | None = None, alpha: float = 0.6, cmap: str = CMAP,
                 colorbar: bool = True) -> None:
    """Draw the input image on ``input_ax`` and the attribution heatmap over it on ``overlay_ax``.

    With ``overlay_ax=None`` the heatmap goes over the image on ``input_ax``.
    """
    image, heat = overlay_arrays(explanation, shape)
    scale = _scale(heat)
    gray = "gray_r" if image is not None and image.ndim == 2 else None
    target_ax = overlay_ax if overlay_ax is not None else input_ax
    if image is not None:
        input_ax.imshow(image, cmap=gray, vmin=0.0, vmax=1.0)
        if overlay_ax is not None:
            overlay_ax.imshow(image.mean(-1) if image.ndim == 3 else image, cmap="gray_r", vmin=0.0, vmax=1.0)
        shown = target_ax.imshow(heat, cmap=cmap, vmin=-scale, vmax=scale, alpha=alpha)
    else:
        shown = target_ax.imshow(heat, cmap=cmap, vmin=-scale, vmax=scale)
    input_ax.set_title("input", fontsize=9)
    if overlay_ax is not None:
        overlay_ax.set_title("attribution", fontsize=9)
    for ax in (input_ax, overlay_ax):
        if ax is not None:
            ax.set_xticks([])
            ax.set_yticks([])
    if colorbar:
        target_ax.figure.colorbar(shown, ax=target_ax, shrink=0.8)


def _plot_tokens(tokens: Sequence[str], scores: np.ndarray, cmap: str, title: str,
                 summary: str = "", width_chars: int = 72) -> "Figure":
    """Coloured tokens, each with its value beneath, wrapped into lines, over a colour scale.

    The figure is as wide as its longest line (never stretched to a page); token text is black on
    light colours and white on strong ones, and the figure has its own white background, so it
    reads the same on light and dark notebook themes.
    """
    import textwrap

    import matplotlib
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    colours = matplotlib.colormaps[cmap]
    scores = np.nan_to_num(np.asarray(scores, dtype=float).reshape(-1))
    scale = _scale(scores)
    cells: list[list[tuple[str, str, float, int]]] = [[]]
    used = 0
    for token, score in zip(tokens, scores):
        text = str(token).replace("\n", "⏎") or "␣"
        text = shorten(text, 24)
        value = f"{score:+.2f}"
        width = max(len(text), len(value)) + 1
        if used and used + width > width_chars:
            cells.append([])
            used = 0
        cells[-1].append((text, value, float(score), used))
        used += width
    widest = max(sum(max(len(t), len(v)) + 1 for t, v, _, _ in line) for line in cells) if cells[0] else 10
    char = 11 * 0.61 / 72  # the width of one monospace character at 11 pt, in inches
    fig_width = max(4.2, widest * char + 0.5)
    wrap = max(30, int((fig_width - 0.3) / (9.5 * 0.62 / 72)))
    heading = "\n".join(textwrap.fill(part, wrap) for part in (title, summary) if part)
    head_lines = heading.count("\n") + 1
    fig = _figure(fig_width, 0.25 * head_lines + 0.55 * len(cells) + 0.75)
    fig.set_facecolor("white")
    grid = fig.add_gridspec(2, 1, height_ratios=[max(0.55 * len(cells), 0.5), 0.22])
    ax = fig.add_subplot(grid[0])
    ax.set_axis_off()
    ax.set_xlim(0, (fig_width - 0.3) / char)  # one data unit is one character
    ax.set_ylim(len(cells), 0)
    for row, line in enumerate(cells):
        for text, value, score, column in line:
            rgba = colours(0.5 + 0.5 * score / scale)
            luminance = 0.299 * rgba[0] + 0.587 * rgba[1] + 0.114 * rgba[2]
            ax.text(column, row + 0.36, text, family="monospace", fontsize=11, va="center", ha="left",
                    color="white" if luminance < 0.5 else "black",
                    bbox={"facecolor": rgba, "edgecolor": "0.75", "linewidth": 0.4, "pad": 1.8})
            ax.text(column, row + 0.8, value, family="monospace", fontsize=7.5, va="center", ha="left", color="0.25")
    ax.set_title(heading, fontsize=9.5, loc="left", color="black")
    bar_ax = fig.add_subplot(grid[1])
    bar = fig.colorbar(ScalarMappable(Normalize(-scale, scale), cmap=colours), cax=bar_ax, orientation="horizontal")
    bar.set_label("attribution: blue against the target · red for it", fontsize=8, color="black")
    bar.ax.tick_params(labelsize=7, colors="black")
    return fig


def _plot_bars(scores: np.ndarray, labels: Sequence[str] | None, cmap: str, title: str) -> "Figure":
    """Bars, one per feature: named features as labelled horizontal bars with their values, long
    unnamed vectors as vertical bars."""
    import textwrap

    import matplotlib

    colours = matplotlib.colormaps[cmap]
    scores = np.nan_to_num(scores)
    scale = _scale(scores)
    colour = [colours(0.5 + 0.5 * s / scale) for s in scores]
    named = labels is not None and len(labels) == len(scores) and len(scores) <= 40
    if named:
        names = [str(label) for label in labels]  # type: ignore[union-attr]
        longest = max(len(n) for n in names)
        width = min(9.0, 3.6 + 0.075 * longest)
        fig = _figure(width, 0.9 + 0.24 * len(scores))
        ax = fig.add_subplot()
        positions = np.arange(len(scores))
        ax.barh(positions, scores, color=colour, edgecolor="0.3", linewidth=0.3)
        ax.set_yticks(positions, names, fontsize=8)
        ax.invert_yaxis()
        ax.axvline(0, color="0.3", linewidth=0.6)
        for y, value in zip(positions, scores):
            ax.annotate(f"{value:+.3g}", (value, y), xytext=(3 if value >= 0 else -3, 0), textcoords="offset points",
                        ha="left" if value >= 0 else "right", va="center", fontsize=7)
        ax.margins(x=0.22)
        ax.set_xlabel("attribution")
    else:
        width = max(4.0, min(12.0, 0.25 * len(scores) + 2))
        fig = _figure(width, 3.2)
        ax = fig.add_subplot()
        positions = np.arange(len(scores))
        ax.bar(positions, scores, color=colour, edgecolor="0.3", linewidth=0.3)
        ax.axhline(0, color="0.3", linewidth=0.6)
        ax.set_xlabel("feature")
        ax.set_ylabel("attribution")
    ax.set_title(textwrap.fill(title, max(30, int((width - 0.7) / (10 * 0.62 / 72)))), fontsize=10)
    return fig


def plot_confusion_matrix(table: Any, *, normalize: bool = False, cmap: str = "Blues") -> "Figure":
    """Draw a confusion table (rows: target, columns: prediction) as a heatmap with counts.

    ``normalize=True`` shows each row as fractions of its target's examples (rows without
    examples stay zero).
    """
    values = np.asarray(table, dtype=float)
    if normalize:
        totals = values.sum(axis=1, keepdims=True)
        values = np.divide(values, totals, out=np.zeros_like(values), where=totals > 0)
    n_rows, n_cols = values.shape
    fig = _figure(max(3.5, 0.45 * n_cols + 1.8), max(3.0, 0.45 * n_rows + 1.2))
    ax = fig.add_subplot()
    shown = ax.imshow(values, cmap=cmap, vmin=0, vmax=max(float(values.max()), 1e-12))
    rows = [str(r) for r in getattr(table, "index", range(n_rows))]
    cols = [str(c) for c in getattr(table, "columns", range(n_cols))]
    ax.set_xticks(range(n_cols), cols)
    ax.set_yticks(range(n_rows), rows)
    ax.set_xlabel("prediction")
    ax.set_ylabel("target")
    high = values.max() / 2 if values.size else 0
    for i in range(n_rows):
        for j in range(n_cols):
            if values[i, j]:
                text = f"{values[i, j]:.2f}" if normalize else f"{int(values[i, j])}"
                ax.text(j, i, text, ha="center", va="center", fontsize=8,
                        color="white" if values[i, j] > high else "black")
    fig.colorbar(shown, ax=ax, shrink=0.8)
    return fig


def _summary(e: "Explanation") -> str:
    """What Captum's ``visualize_text`` lists beside the tokens: predicted class with its probability,
    the explained class and the attribution total."""
    parts = []
    if e.prediction is not None and e.output.dim() == 1:
        probability = float(e.output.float().softmax(0)[e.prediction])
        parts.append(f"predicted {e.class_name(e.prediction)} ({probability:.2f})")
    if e.target is not None:
        parts.append(f"explained {e.class_name(e.target)}")
    parts.append(f"attribution total {float(e.scores.sum()):+.2f}")
    return " · ".join(parts)


def _title(e: "Explanation", classes: bool = True) -> str:
    from .methods import get_method, method_names

    bases = get_method(e.method).bases if e.method in method_names() else ()
    base = e.options.get("base", bases[0]) if bases else None
    parts = [e.method + (f"({base})" if base else "") + (f" @ {e.layer}" if e.layer else "")]
    if e.target is not None and classes:
        parts.append(f"target {e.class_name(e.target)}")
    if e.prediction is not None and classes:
        parts.append(f"predicted {e.class_name(e.prediction)}")
    if e.delta is not None:
        parts.append(f"delta {e.delta:.2g}")
    if not bool(e.scores.any()):
        parts.append("all attributions zero")
    return ", ".join(parts)


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().float().cpu().numpy()
