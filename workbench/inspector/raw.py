"""How the inspector shows an example's raw input and token ids: small HTML, readable on any theme.

The raw input (what was given to the pipeline, before any step) is shown as what it is: text as
text, an image as an image, a table row as a name/value table (with the pipeline's feature names),
a dict as keys and values. Token ids are shown as their tokens when a vocabulary is known, with
padding greyed.

>>> print(raw_html("a short sentence"))  # doctest: +ELLIPSIS
<div ...>a short sentence</div>
"""

from __future__ import annotations

import base64
import html
import io
from typing import Any, Callable, Sequence

import numpy as np

from .._text import shorten

__all__ = ["raw_html", "tokens_html", "token_list"]

_BOX = ("font-size:13px;line-height:1.5;padding:4px 8px;border:1px solid rgba(128,128,128,0.4);"
        "border-radius:4px;max-width:100%;overflow-wrap:anywhere;white-space:pre-wrap")
_MAX_ROWS = 40


def raw_html(value: Any, feature_names: Sequence[str] | None = None) -> str:
    """The raw input ``value`` as HTML (see the module docstring)."""
    if isinstance(value, str):
        return f"<div class='workbench-raw-text' style='{_BOX}'>{html.escape(value[:5000])}</div>"
    image = _image_png(value)
    if image is not None:
        return f"<img class='workbench-raw-image' src='data:image/png;base64,{image}' style='image-rendering:pixelated'>"
    row = _numbers(value)
    if row is not None:
        names = list(feature_names) if feature_names is not None and len(feature_names) == len(row) else \
            [str(i) for i in range(len(row))]
        return _table(list(zip(names, (_number(v) for v in row))), "workbench-raw-row")
    if isinstance(value, dict):
        return _table([(str(k), _short(v)) for k, v in value.items()], "workbench-raw-dict")
    return f"<div style='{_BOX};font-family:monospace'>{html.escape(_short(value, 600))}</div>"


def token_list(ids: Any, lookup: Callable[[int], str], padding: int | None) -> list[tuple[str, bool]] | None:
    """``[(token, is_padding)]`` for a 1-D (or ``[1, n]``) integer tensor or array, else ``None``."""
    array = _int_vector(ids)
    if array is None:
        return None
    return [(lookup(int(i)), padding is not None and int(i) == padding) for i in array]


def tokens_html(tokens: list[tuple[str, bool]]) -> str:
    """Tokens as chips, padding greyed, in a wrapping box."""
    real = sum(not pad for _, pad in tokens)
    chips = "".join(
        f"<span class='workbench-token{' workbench-pad' if pad else ''}' style='display:inline-block;margin:1px 2px;"
        f"padding:0 4px;border-radius:3px;border:1px solid rgba(128,128,128,0.45);"
        f"{'opacity:0.45;font-style:italic' if pad else ''}'>{html.escape(text)}</span>"
        for text, pad in tokens)
    note = f"{real} tokens" + (f" + {len(tokens) - real} padding" if real != len(tokens) else "")
    return (f"<div style='font-size:11px;opacity:0.75'>{note}</div>"
            f"<div style='font-family:monospace;font-size:12px;max-width:640px;line-height:1.7'>{chips}</div>")


def _table(rows: list[tuple[str, str]], css: str) -> str:
    shown = rows[:_MAX_ROWS]
    cell = "padding:0 8px;text-align:left;border:none"
    body = "".join(f"<tr><th style='{cell};font-weight:normal;opacity:0.75'>{html.escape(k)}</th>"
                   f"<td style='{cell};font-family:monospace'>{html.escape(v)}</td></tr>" for k, v in shown)
    more = f"<div style='font-size:11px'>… {len(rows) - len(shown)} more</div>" if len(rows) > len(shown) else ""
    return f"<table class='{css}' style='font-size:12px;border-collapse:collapse'>{body}</table>{more}"


def _numbers(value: Any) -> list[Any] | None:
    """A flat list of numbers for a 1-D numeric input (list, tuple, array, tensor), else ``None``."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return value.tolist() if value.ndim == 1 and value.dtype.kind in "biuf" else None
    if isinstance(value, (list, tuple)) and value and all(
            isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in value):
        return list(value)
    return None


def _int_vector(value: Any) -> np.ndarray | None:
    if hasattr(value, "detach"):
        if value.is_floating_point() or value.is_complex():
            return None
        value = value.detach().cpu().numpy()
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "iu":
        return None
    while value.ndim > 1 and value.shape[0] == 1:
        value = value[0]
    return value if value.ndim == 1 else None


def _image_png(value: Any) -> str | None:
    """A base64 PNG of an image-like input (PIL image, or a float/uint8 [H, W], [C, H, W] or [H, W, C])."""
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow comes with matplotlib
        return None
    if isinstance(value, Image.Image):
        image = value
    else:
        if hasattr(value, "detach"):
            value = value.detach().cpu().numpy()
        if not isinstance(value, np.ndarray) or value.dtype.kind not in "uif" or value.ndim not in (2, 3):
            return None
        array = value.astype(np.float64)
        if array.ndim == 3 and array.shape[0] in (1, 3) and array.shape[-1] not in (1, 3):
            array = np.moveaxis(array, 0, -1)
        if array.ndim == 3 and array.shape[-1] == 1:
            array = array[..., 0]
        if array.ndim == 3 and array.shape[-1] != 3:
            return None
        if min(array.shape[:2]) < 4:
            return None
        low, high = float(np.nanmin(array)), float(np.nanmax(array))
        array = (array - low) / (high - low) if high > low else np.zeros_like(array)
        image = Image.fromarray((np.nan_to_num(array) * 255).astype(np.uint8))
    scale = max(1, 96 // max(image.size))
    if scale > 1:
        image = image.resize((image.size[0] * scale, image.size[1] * scale), Image.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def _number(v: Any) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def _short(value: Any, limit: int = 120) -> str:
    return shorten(repr(value), limit)
