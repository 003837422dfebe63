"""Turning items into a batch and back.

``collate`` is what ``batch`` does to the preprocessed items (stacking tensors; otherwise torch's
``default_collate``); ``uncollate`` is what ``unbatch`` does to the forward stage's output.
They are inverse on the structures a forward pass produces: tensors, and tuples, lists, dicts and
named tuples of them.

>>> import torch
>>> b = collate([(torch.zeros(2), 1), (torch.ones(2), 2)])
>>> b[0].shape, b[1]
(torch.Size([2, 2]), tensor([1, 2]))
>>> [tuple(t.tolist() for t in item) for item in uncollate(b)]
[([0.0, 0.0], 1), ([1.0, 1.0], 2)]
"""

from __future__ import annotations

import contextvars
from typing import Any

import torch
from torch.utils.data import default_collate, get_worker_info

__all__ = ["collate", "pad_collate", "uncollate", "to_device", "move", "device_scope", "describe_shapes"]

_DEVICE: contextvars.ContextVar[torch.device | None] = contextvars.ContextVar("workbench_device", default=None)

_SCALARS = (str, bytes, int, float, bool, complex, type(None))


def collate(items: list[Any]) -> Any:
    """A batch from a list of preprocessed items."""
    first = items[0]
    if type(first) is torch.Tensor and get_worker_info() is None:
        return torch.stack(items)
    return default_collate(items)


def pad_collate(items: list[Any], value: float = 0) -> Any:
    """A batch from ``items`` whose tensors may differ in size: each is padded at the end of every
    dimension with ``value`` to the largest size in the batch, then stacked.

    Tuples, lists, named tuples and dicts are collated field by field (so ``(ids, label)`` pads the
    ids and stacks the labels); anything else goes to ``collate``.

    >>> import torch
    >>> pad_collate([torch.tensor([1, 2, 3]), torch.tensor([4])]).tolist()
    [[1, 2, 3], [4, 0, 0]]
    """
    first = items[0]
    if isinstance(first, torch.Tensor):
        if not all(isinstance(t, torch.Tensor) for t in items):
            raise TypeError("cannot pad: some items are tensors and some are not "
                            f"({sorted({type(t).__name__ for t in items})})")
        dims = {t.dim() for t in items}
        if len(dims) > 1:
            raise ValueError(f"cannot pad tensors with different numbers of dimensions {sorted(dims)}: "
                             "padding only grows sizes, the items must agree on the number of dimensions")
        shapes = [t.shape for t in items]
        if all(s == shapes[0] for s in shapes):
            return torch.stack(items)
        size = [max(s[d] for s in shapes) for d in range(len(shapes[0]))]
        out = first.new_full((len(items), *size), value)
        for i, t in enumerate(items):
            out[(i, *(slice(0, n) for n in t.shape))] = t
        return out
    if isinstance(first, tuple):
        columns = [pad_collate(list(column), value) for column in zip(*items)]
        return type(first)(*columns) if hasattr(first, "_fields") else tuple(columns)
    if isinstance(first, list) and not all(isinstance(e, _SCALARS) for e in first):
        return [pad_collate(list(column), value) for column in zip(*items)]
    if isinstance(first, dict):
        return {key: pad_collate([item[key] for item in items], value) for key in first}
    return collate(items)


def describe_shapes(items: list[Any], indices: list[int] | None = None, limit: int = 6) -> str:
    """Which items have which shapes, for an error about items that could not be collated.

    ``"shape [5] (items 0, 2), shape [7] (item 1)"``; structures show each tensor's shape;
    ``indices`` are the items' positions in the data (default: in ``items``). Empty when all agree.
    """
    groups: dict[str, list[int]] = {}
    for i, item in zip(indices if indices is not None else range(len(items)), items):
        groups.setdefault(_shape_text(item), []).append(i)
    if len(groups) == 1:
        return ""
    parts = []
    for text, where in list(groups.items())[:limit]:
        label = "item" if len(where) == 1 else "items"
        shown = ", ".join(map(str, where[:limit])) + (", ..." if len(where) > limit else "")
        parts.append(f"{text} ({label} {shown})")
    if len(groups) > limit:
        parts.append(f"... ({len(groups)} shapes in all)")
    return ", ".join(parts)


def _shape_text(item: Any) -> str:
    if isinstance(item, torch.Tensor):
        return f"shape [{', '.join(map(str, item.shape))}]"
    if isinstance(item, (tuple, list)):
        return "(" + ", ".join(_shape_text(e) for e in item) + ")"
    if isinstance(item, dict):
        return "{" + ", ".join(f"{k!r}: {_shape_text(v)}" for k, v in item.items()) + "}"
    if hasattr(item, "shape"):
        return f"shape [{', '.join(map(str, item.shape))}]"
    return type(item).__name__


def uncollate(batch: Any) -> list[Any]:
    """The list of items in ``batch`` (split along the first dimension)."""
    if isinstance(batch, torch.Tensor):
        if batch.dim() == 0:
            raise ValueError("cannot split a 0-dimensional tensor into items: the forward stage's "
                             "output has no batch dimension")
        return list(batch.unbind(0))
    if isinstance(batch, tuple):
        columns = [uncollate(part) for part in batch]
        _check_lengths(columns)
        if hasattr(batch, "_fields"):  # named tuple
            return [type(batch)(*row) for row in zip(*columns)]
        return [tuple(row) for row in zip(*columns)]
    if isinstance(batch, list):
        if all(isinstance(e, _SCALARS) for e in batch):
            return list(batch)  # a collated list of strings or numbers is already one value per item
        columns = [uncollate(part) for part in batch]
        _check_lengths(columns)
        return [list(row) for row in zip(*columns)]
    if isinstance(batch, dict):
        keys = list(batch)
        columns = [uncollate(batch[k]) for k in keys]
        _check_lengths(columns)
        return [dict(zip(keys, row)) for row in zip(*columns)]
    if hasattr(batch, "__array__") and hasattr(batch, "shape"):
        return list(batch)
    raise TypeError(f"cannot split a {type(batch).__name__} into items: unbatch needs tensors, or "
                    "tuples, lists or dicts of them")


def _check_lengths(columns: list[list[Any]]) -> None:
    lengths = {len(c) for c in columns}
    if len(lengths) > 1:
        raise ValueError(f"cannot split the batch into items: its parts have different batch sizes {sorted(lengths)}")


def to_device(batch: Any) -> Any:
    """``batch`` with its tensors on the device of the running apply call (unchanged on CPU)."""
    device = _DEVICE.get()
    if device is None:
        return batch
    return move(batch, device)


def move(batch: Any, device: torch.device) -> Any:
    """``batch`` with its tensors (inside tuples, named tuples, lists and dicts) on ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, tuple):
        moved = [move(b, device) for b in batch]
        return type(batch)(*moved) if hasattr(batch, "_fields") else tuple(moved)
    if isinstance(batch, list):
        return [move(b, device) for b in batch]
    if isinstance(batch, dict):
        return {k: move(v, device) for k, v in batch.items()}
    return batch


class device_scope:
    """Within the scope, ``to_device`` moves batches to ``device`` (``None``: leave them where they are)."""

    __slots__ = ("device", "token")

    def __init__(self, device: torch.device | None):
        self.device = device

    def __enter__(self) -> None:
        self.token = _DEVICE.set(self.device)

    def __exit__(self, *exc: Any) -> None:
        _DEVICE.reset(self.token)
