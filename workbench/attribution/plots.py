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

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .explain import Explanation

__all__ = ["plot_explanation", "plot_confusion_matrix", "attribution_kind", "draw_overlay", "CMAP"]

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
    title = title if title is not None else _title(explanation)
    if kind == "text":
        return _plot_tokens(explanation.tokens or [], _numpy(explanation.scores), cmap, title)
    if kind == "image":
        fig = _figure(7.0, 3.4)
        left, right = fig.subplots(1, 2)
        draw_overlay(left, right, explanation, shape=shape, alpha=alpha, cmap=cmap)
        fig.suptitle(title, fontsize=10)
        return fig
    return _plot_bars(_numpy(explanation.scores).reshape(-1), labels or explanation.tokens, cmap, title)


def draw_overlay(input_ax: Any, overlay_ax: Any | None, explanation: "Explanation", *,
                 shape: Sequence[int] | None = None, alpha: float = 0.6, cmap: str = CMAP,
                 colorbar: bool = True) -> None:
    """Draw the input image on ``input_ax`` and the attribution heatmap over it on ``overlay_ax``.

    With ``overlay_ax=None`` the heatmap goes over the image on ``input_ax``.
    """
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
    heat = np.nan_to_num(_numpy(scores))
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
                 width_chars: int = 80) -> "Figure":
    import matplotlib

    colours = matplotlib.colormaps[cmap]
    scale = _scale(scores)
    lines: list[list[tuple[str, float]]] = [[]]
    used = 0
    for token, score in zip(tokens, np.nan_to_num(scores)):
        text = str(token)
        if used and used + len(text) + 1 > width_chars:
            lines.append([])
            used = 0
        lines[-1].append((text, float(score)))
        used += len(text) + 1
    fig = _figure(10.0, 0.6 + 0.4 * len(lines))
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.set_xlim(0, width_chars)
    ax.set_ylim(len(lines), 0)
    for row, line in enumerate(lines):
        column = 0
        for text, score in line:
            colour = colours(0.5 + 0.5 * score / scale)
            ax.text(column, row + 0.5, text, family="monospace", fontsize=11, va="center",
                    bbox={"facecolor": colour, "edgecolor": "none", "pad": 1.5})
            column += len(text) + 1
    ax.set_title(title, fontsize=10)
    return fig


def _plot_bars(scores: np.ndarray, labels: Sequence[str] | None, cmap: str, title: str) -> "Figure":
    import matplotlib

    colours = matplotlib.colormaps[cmap]
    scores = np.nan_to_num(scores)
    scale = _scale(scores)
    fig = _figure(max(4.0, min(12.0, 0.25 * len(scores) + 2)), 3.2)
    ax = fig.add_subplot()
    positions = np.arange(len(scores))
    ax.bar(positions, scores, color=[colours(0.5 + 0.5 * s / scale) for s in scores], edgecolor="0.3", linewidth=0.3)
    ax.axhline(0, color="0.3", linewidth=0.6)
    if labels is not None and len(labels) == len(scores) and len(scores) <= 60:
        ax.set_xticks(positions, [str(label) for label in labels], rotation=90, fontsize=8)
    ax.set_xlabel("feature")
    ax.set_ylabel("attribution")
    ax.set_title(title, fontsize=10)
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


def _title(e: "Explanation") -> str:
    base = e.options.get("base", "saliency") if e.method == "noise_tunnel" else None
    parts = [e.method + (f"({base})" if base else "") + (f" @ {e.layer}" if e.layer else "")]
    if e.target is not None:
        parts.append(f"target {e.target}")
    if e.prediction is not None:
        parts.append(f"predicted {e.prediction}")
    if e.delta is not None:
        parts.append(f"delta {e.delta:.2g}")
    if not bool(e.scores.any()):
        parts.append("all attributions zero")
    return ", ".join(parts)


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().float().cpu().numpy()
