"""What every runner of a pipeline shares (internal): ``apply``, the server, Ray, Lightning and ``trace``.

A runner splits the pipeline into its stages, sets the apply mode, grad mode and device around the
work, calls per-item stages step-direct, collates with the pipeline's own ``batch`` step, and notes
on any error the step and the item it failed on. Those pieces live here, under plain names, so that
the runners in other modules and packages import them from one deliberate place rather than reach
into each other's private names. Nothing here is public API: it may change with the runners.

>>> from workbench import transform, batch
>>> pl = transform(lambda x: x + 1) >> batch >> transform(lambda b: b * 2)
>>> (pre, fwd, post), end = parts(pl)
>>> pre(1), post, end
(2, None, 1)
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from .collate import _DEVICE, describe_shapes, device_scope
from .mode import _MODE
from .pipeline import Compose, Transform, _annotate, refresh_note

__all__ = [
    "MODE",
    "DEVICE",
    "Scope",
    "target_device",
    "parts",
    "split",
    "batch_marker",
    "step_of",
    "step_failed",
    "mark_item",
    "item_of",
    "has_note",
    "span",
    "Join",
    "Indexed",
    "set_grad_enabled",
]

#: The context variable behind :func:`workbench.current_mode`; hot loops set and reset it directly.
MODE = _MODE
#: The context variable holding the device batches go to (``None``: leave them where they are).
DEVICE = _DEVICE

#: ``torch.set_grad_enabled`` is a context-manager class; the plain switch avoids building one per call.
set_grad_enabled = torch._C._set_grad_enabled


class Scope:
    """Sets mode, grad mode and target device for a block of work, restoring them on exit."""

    __slots__ = ("mode", "grad", "device", "_tokens", "_grad_before")

    def __init__(self, mode: str, grad: bool, device: torch.device | None):
        self.mode, self.grad, self.device = mode, grad, device

    def __enter__(self) -> None:
        self._tokens = (_MODE.set(self.mode), device_scope(self.device))
        self._tokens[1].__enter__()
        self._grad_before = torch.is_grad_enabled()
        set_grad_enabled(self.grad)

    def __exit__(self, *exc: Any) -> None:
        set_grad_enabled(self._grad_before)
        self._tokens[1].__exit__()
        _MODE.reset(self._tokens[0])


def target_device(pipeline: Transform) -> torch.device | None:
    """Where batches must go: the device of the first parameter, ``None`` when that is the CPU."""
    tensor = pipeline._wb_lead_tensor()
    return tensor.device if tensor is not None and not tensor.is_cpu else None  # is_cpu: the same test, ~5 us cheaper


# --- stages ----------------------------------------------------------------------------------------


def parts(pipeline: Transform) -> tuple[tuple[Transform | None, Transform | None, Transform | None], int]:
    """``((preprocess, forward, postprocess), end stage)`` from where the pipeline's input enters;
    an absent stage is ``None``. A misplaced ``batch``/``unbatch`` is a ``ValueError`` naming it."""
    return pipeline._wb_parts()


def split(pipeline: Transform, start: int) -> tuple[tuple[Transform | None, Transform | None, Transform | None], int]:
    """Like :func:`parts`, with the pipeline's input entering at stage ``start``."""
    return pipeline._wb_split(start)


def batch_marker(pipeline: Transform) -> tuple[tuple[int, ...], Any] | None:
    """``(path, batch step)`` of the pipeline's ``batch`` (or ``batch.pad``/``batch.collate``), ``None`` without."""
    return pipeline._wb_batch_marker()


def step_of(stage: Transform | None) -> tuple[Callable[[Any], Any] | None, Compose | None]:
    """A per-item stage as (callable, node to annotate errors with).

    A stage of one step is ``Compose([step])`` (it keeps the step's position for error notes);
    calling the step directly saves a frame per item, and :func:`step_failed` adds the note the
    ``Compose`` would have added.
    """
    if stage is None:
        return None, None
    if type(stage) is Compose and len(stage._children) == 1:
        return stage._children[0]._wb_callable(), stage
    return stage._wb_callable(), None


# --- error notes -----------------------------------------------------------------------------------


def step_failed(exc: BaseException, node: Compose | None, item: str) -> None:
    """Note on ``exc`` the step of ``node`` (from :func:`step_of`) and the item it failed on."""
    if node is not None:
        _annotate(exc, node, 0)
    mark_item(exc, item)


def mark_item(exc: BaseException, item: str, *, replace: bool = False) -> None:
    """Note on ``exc`` the item it failed on (``"item 3"``), unless an inner runner already did."""
    if replace or getattr(exc, "_wb_item", None) is None:
        try:
            exc._wb_item = item  # type: ignore[attr-defined]
        except AttributeError:
            return
        refresh_note(exc)


def item_of(exc: BaseException) -> str | None:
    """The item noted on ``exc`` by :func:`mark_item`, if any."""
    return getattr(exc, "_wb_item", None)


def has_note(exc: BaseException) -> bool:
    """Whether ``exc`` carries a workbench note (the step or the item it failed on)."""
    return getattr(exc, "_wb_item", None) is not None or getattr(exc, "_wb_path", None) is not None


def span(indices: list[int]) -> str:
    """``0, 1, 2`` or, for many, ``0, 1, ..., 63 (64 items)``: the items of a batch in an error note."""
    if len(indices) > 6:
        return f"{indices[0]}, {indices[1]}, ..., {indices[-1]} ({len(indices)} items)"
    return ", ".join(map(str, indices))


# --- collating with the pipeline's batch step -----------------------------------------------------


class Join:
    """The pipeline's batch marker collating a list of preprocessed items, with the workbench note
    (the marker's step, the item indices and the shapes that disagreed) on failure.

    Inside a DataLoader the items arrive wrapped with their indices (:class:`Indexed`), so that the
    note names the items in worker processes too.
    """

    def __init__(self, path: tuple[int, ...], marker: Any):
        self.path, self.marker = path, marker

    def __call__(self, items: list[Any], indices: list[int] | None = None) -> Any:
        if indices is None and items and isinstance(items[0], Indexed):
            indices = [e.index for e in items]
            items = [e.item for e in items]
        try:
            return self.marker._wb_collate(items)
        except Exception as exc:
            _collate_failed(exc, self.path, self.marker, items, indices)
            raise


class Indexed:
    """A preprocessed item with its index, as a DataLoader worker hands it to the collate step."""

    __slots__ = ("index", "item")

    def __init__(self, index: int, item: Any):
        self.index, self.item = index, item


def _collate_failed(exc: BaseException, path: tuple[int, ...], marker: Any, items: list[Any],
                    indices: list[int] | None) -> None:
    try:
        exc._wb_path = list(path)  # type: ignore[attr-defined]
        exc._wb_step = marker._wb_title()  # type: ignore[attr-defined]
    except AttributeError:
        return
    where = indices if indices is not None else list(range(len(items)))
    shapes = describe_shapes(items, where)
    hint = ""
    if shapes and marker._wb_collate_fn is None and marker._wb_padding is None:
        hint = "; for items of different lengths use batch.pad(value=0) or batch.collate(fn)"
    mark_item(exc, f"the batch of items {span(where)}" + (f": {shapes}" if shapes else "") + hint)
