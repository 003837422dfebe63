"""What the inspector says about one value: statistics, what kind of view fits it, top-k, image panels.

Everything here is plain computation on a value (no widgets, no figures), so it is what tests check.

View kinds (:attr:`Summary.kind`), decided on the value with leading size-1 dimensions dropped
(a batch of one ``1x4x8x8`` is read as ``4x8x8``):

============  ==============================================================================
``image``     a 2-D tensor ``HxW`` (both at least 2): one greyscale panel
``rgb``       ``3xHxW``, or channels-last ``HxWx3``/``HxWx4`` (H, W > 4): one colour panel
``maps``      ``CxHxW``: a grid of the channels; ``NxCxHxW``: the channels of item 0
              (``Nx1xHxW``: the N images); at most ``max_panels`` panels
``scores``    a 1-D floating point vector of length at least 2: top-k with index/label and value
``vector``    other 1-D tensors (integers, booleans, length 1)
``scalar``    a 0-d tensor or a Python number
``numeric``   other numeric arrays (more than 4 dimensions, ``Nx1`` columns, ...)
``empty``     a tensor without elements
``text``      a string, bytes, or a list/tuple of strings
``container`` a tuple, list or dict holding non-numeric parts (see :func:`leaves`)
``other``     anything else (shown by its ``repr``)
============  ==============================================================================

Statistics (min, max, mean, std) are over the finite values; NaN and Inf are counted separately.
``std`` is the population standard deviation (``numpy.std``), so a single value has std 0.

>>> import torch
>>> s = summarize(torch.tensor([1.0, float("nan"), 3.0, float("inf")]))
>>> s.kind, s.min, s.max, s.mean, s.nan_count, s.inf_count
('scores', 1.0, 3.0, 2.0, 1, 1)
"""

from __future__ import annotations

import math
import reprlib
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from ..annotations import class_label

__all__ = ["Summary", "summarize", "as_tensor", "top_k", "TopK", "ImageLayout", "image_layout", "leaves",
           "text_of", "class_label"]

_NUMBERS = (bool, int, float, np.number, np.bool_)
_PREVIEW_CHARS = 2000


@dataclass
class Summary:
    """Statistics and view kind of one value (see the module docstring)."""

    type_name: str
    kind: str
    shape: tuple[int, ...] | None = None
    dtype: str | None = None
    numel: int | None = None
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    std: float | None = None
    nan_count: int = 0
    inf_count: int = 0
    preview: str | None = None
    parts: list[str] = field(default_factory=list)

    @property
    def numeric(self) -> bool:
        return self.numel is not None

    @property
    def shape_text(self) -> str:
        return "" if self.shape is None else "x".join(map(str, self.shape)) or "scalar"

    def stats_text(self) -> str:
        """``min -1 · max 3 · mean 0.5 · std 1.2 · NaN 0 · Inf 0`` (empty for non-numeric values)."""
        if not self.numeric:
            return ""
        if self.min is None:
            stats = "no finite values"
        else:
            stats = " · ".join(f"{k} {_fmt(v)}" for k, v in
                               (("min", self.min), ("max", self.max), ("mean", self.mean), ("std", self.std)))
        return f"{stats} · NaN {self.nan_count} · Inf {self.inf_count}"

    def rows(self) -> list[tuple[str, str]]:
        """(field, value) pairs, in the order the inspector shows them."""
        rows = [("type", self.type_name)]
        if self.numeric:
            rows += [("shape", self.shape_text), ("dtype", self.dtype or ""), ("elements", str(self.numel))]
            for name in ("min", "max", "mean", "std"):
                value = getattr(self, name)
                rows.append((name, "—" if value is None else _fmt(value)))
            rows += [("NaN", str(self.nan_count)), ("Inf", str(self.inf_count))]
        elif self.shape is not None:
            rows.append(("length", str(self.shape[0])))
        if self.parts:
            rows.append(("parts", ", ".join(self.parts[:12]) + (" ..." if len(self.parts) > 12 else "")))
        rows.append(("view", self.kind))
        return rows


def _fmt(value: float) -> str:
    if value == 0 or (1e-3 <= abs(value) < 1e5):
        return f"{value:.4g}"
    return f"{value:.3e}"


# --- numbers -----------------------------------------------------------------------------------


def as_tensor(value: Any) -> torch.Tensor | None:
    """``value`` as a CPU tensor when it is numeric (tensor, array, number, list of numbers), else ``None``."""
    if isinstance(value, torch.Tensor):
        t = value.detach()
        if t.is_complex() or t.is_quantized or t.layout != torch.strided:
            return None
        return t.cpu()
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            return None
        return torch.from_numpy(np.ascontiguousarray(value))
    if isinstance(value, _NUMBERS):
        if isinstance(value, complex):
            return None
        return torch.as_tensor(value)
    if hasattr(value, "__array_interface__") and not isinstance(value, (str, bytes)):  # PIL images
        return as_tensor(np.asarray(value))
    if isinstance(value, (list, tuple)) and value and _all_numbers(value):
        try:
            return torch.as_tensor(np.asarray(value))
        except (ValueError, TypeError, RuntimeError):
            return None
    return None


def _all_numbers(value: Sequence[Any], depth: int = 0) -> bool:
    if depth > 4:
        return False
    for v in value:
        if isinstance(v, (list, tuple)):
            if not v or not _all_numbers(v, depth + 1):
                return False
        elif not isinstance(v, _NUMBERS):
            return False
    return True


def _squeezed(t: torch.Tensor) -> torch.Tensor:
    """``t`` without leading size-1 dimensions (keeping at least one dimension)."""
    while t.dim() > 1 and t.shape[0] == 1:
        t = t[0]
    return t


def _kind_of(t: torch.Tensor) -> str:
    if t.numel() == 0:
        return "empty"
    if t.dim() == 0:
        return "scalar"
    s = _squeezed(t)
    if s.dim() == 1:
        return "scores" if s.is_floating_point() and s.numel() >= 2 else "vector"
    if s.dim() == 2:
        return "image" if min(s.shape) >= 2 else "numeric"
    if s.dim() == 3:
        c, h, w = s.shape
        if h >= 2 and w >= 2 and c == 3:
            return "rgb"
        if w in (3, 4) and c > 4 and h > 4:
            return "rgb"
        return "maps" if h >= 2 and w >= 2 else "numeric"
    if s.dim() == 4:
        return "maps" if s.shape[2] >= 2 and s.shape[3] >= 2 else "numeric"
    return "numeric"


def summarize(value: Any) -> Summary:
    """The :class:`Summary` of ``value``: type, shape, dtype, statistics over finite values, view kind."""
    type_name = _type_name(value)
    t = as_tensor(value)
    if t is not None:
        s = Summary(type_name, _kind_of(t), tuple(t.shape), str(t.dtype).replace("torch.", ""), t.numel())
        if t.numel():
            f = t.to(torch.float64)
            nan = torch.isnan(f)
            inf = torch.isinf(f)
            s.nan_count, s.inf_count = int(nan.sum()), int(inf.sum())
            finite = f[~(nan | inf)]
            if finite.numel():
                s.min, s.max = float(finite.min()), float(finite.max())
                s.mean = float(finite.mean())
                s.std = float(finite.std(correction=0))
        return s
    text = text_of(value)
    if text is not None:
        shape = (len(value),) if isinstance(value, (list, tuple)) else None
        return Summary(type_name, "text", shape=shape, preview=text[:_PREVIEW_CHARS])
    if isinstance(value, (list, tuple, dict)):
        parts = [label for label, _ in leaves(value)]
        return Summary(type_name, "container", shape=(len(value),), parts=parts,
                       preview=_preview(value))
    return Summary(type_name, "other", preview=_preview(value))


def _type_name(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"torch.Tensor ({value.device})" if value.device.type != "cpu" else "torch.Tensor"
    cls = type(value)
    return cls.__name__ if cls.__module__ == "builtins" else f"{cls.__module__.split('.')[0]}.{cls.__name__}"


_repr = reprlib.Repr()
_repr.maxstring = 200
_repr.maxother = 400
_repr.maxlist = 20
_repr.maxtuple = 20
_repr.maxdict = 20


def _preview(value: Any) -> str:
    return _repr.repr(value)


def text_of(value: Any) -> str | None:
    """The text shown for strings, bytes and sequences of strings; ``None`` for other values."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return repr(value)
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        return "\n".join(f"[{i}] {v}" for i, v in enumerate(value))
    return None


# --- parts of containers ---------------------------------------------------------------------------

_MAX_LEAVES = 64


def leaves(value: Any, max_leaves: int = _MAX_LEAVES) -> list[tuple[str, Any]]:
    """The parts of a tuple/list/dict to inspect one at a time, with labels like ``[0]`` or ``['logits'][1]``.

    Numeric sequences and lists of strings count as one part; at most ``max_leaves`` parts.
    """
    out: list[tuple[str, Any]] = []

    def visit(label: str, v: Any, depth: int) -> None:
        if len(out) >= max_leaves:
            return
        if depth < 4 and as_tensor(v) is None and text_of(v) is None:
            if isinstance(v, (list, tuple)) and v:
                for i, item in enumerate(v):
                    visit(f"{label}[{i}]", item, depth + 1)
                return
            if isinstance(v, dict) and v:
                for k, item in v.items():
                    visit(f"{label}[{k!r}]", item, depth + 1)
                return
        out.append((label or "(value)", v))

    visit("", value, 0)
    return out


# --- top-k -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TopK:
    """The ``k`` largest entries of a score vector, largest first (ties: lower index first)."""

    indices: list[int]
    values: list[float]
    labels: list[str]
    length: int

    def rows(self) -> list[tuple[int, str, float]]:
        return list(zip(self.indices, self.labels, self.values))


def top_k(value: Any, k: int = 5, class_names: Sequence[str] | Mapping[int, str] | None = None) -> TopK:
    """Top-``k`` of a score vector (leading size-1 dimensions dropped); NaN entries are ignored."""
    t = as_tensor(value)
    if t is None or t.numel() == 0:
        raise ValueError(f"top-k needs a non-empty numeric vector, got {_type_name(value)}")
    s = _squeezed(t)
    if s.dim() != 1:
        raise ValueError(f"top-k needs a 1-D score vector, got shape {tuple(t.shape)}")
    f = s.to(torch.float64)
    valid = ~torch.isnan(f)
    keys = torch.where(valid, f, torch.full_like(f, -math.inf))
    order = torch.sort(keys, descending=True, stable=True).indices
    order = order[valid[order]][:k]
    indices = [int(i) for i in order]
    return TopK(indices, [float(f[i]) for i in indices], [class_label(i, class_names) for i in indices], s.numel())


# --- image panels ----------------------------------------------------------------------------------


@dataclass
class ImageLayout:
    """The panels an image-like tensor is drawn as: ``shown`` of ``total`` (channels or images)."""

    panels: list[np.ndarray]
    titles: list[str]
    total: int
    rgb: bool
    what: str
    note: str

    @property
    def shown(self) -> int:
        return len(self.panels)


def image_layout(value: Any, max_panels: int = 16) -> ImageLayout:
    """The panels for an ``image``, ``rgb`` or ``maps`` value (see the module docstring)."""
    t = as_tensor(value)
    if t is None:
        raise ValueError(f"not an image-like value: {_type_name(value)}")
    kind = _kind_of(t)
    s = _squeezed(t)
    if s.dtype == torch.bool:
        s = s.to(torch.uint8)
    if kind == "image":
        return ImageLayout([s.numpy()], [""], 1, False, "image", "")
    if kind == "rgb":
        hwc = s.permute(1, 2, 0) if s.shape[0] == 3 else s
        return ImageLayout([_to_unit(hwc.numpy())], [""], 1, True, "image", "")
    if kind != "maps":
        raise ValueError(f"not an image-like value: shape {tuple(t.shape)} is shown as {kind!r}")
    prefix = ""
    if s.dim() == 4:
        n, c = s.shape[:2]
        if c == 1:
            s = s[:, 0]
            what, title = "images", "item"
        else:
            s = s[0]
            what, title = "channels", "ch"
            prefix = f"item 0 of {n}; "
    else:
        what, title = "channels", "ch"
    total = s.shape[0]
    shown = max(1, min(total, max_panels))
    panels = [s[i].numpy() for i in range(shown)]
    note = f"{prefix}showing {shown} of {total} {what}"
    return ImageLayout(panels, [f"{title} {i}" for i in range(shown)], total, False, what, note)


def _to_unit(a: np.ndarray) -> np.ndarray:
    """An RGB(A) array as floats in [0, 1] (uint8 scaled by 255; other ranges stretched)."""
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255.0
    a = a.astype(np.float32)
    finite = np.isfinite(a)
    if not finite.any():
        return np.zeros_like(a)
    lo, hi = float(a[finite].min()), float(a[finite].max())
    if lo >= 0.0 and hi <= 1.0:
        return np.nan_to_num(a)
    return np.nan_to_num((a - lo) / (hi - lo if hi > lo else 1.0))
