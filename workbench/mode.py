"""The apply mode: ``"infer"``, ``"eval"`` or ``"train"``, held per call in a context variable.

The mode is not global state: each thread (and each asyncio task) sees the mode of the apply call
it is running inside, so one thread can ``train_apply`` while another ``eval_apply``-s the same
pipeline and each ``IfTrain`` branch sees its own mode.

Torch layers keep their mode in one flag per layer (``layer.training``), which threads would
share. :data:`LAYER_MODES` makes it per call: a layer step runs with ``training`` set for its own
call, and calls in *different* modes on the same layer from different threads take turns (each
forward pass sees its own mode throughout), while calls in the same mode run concurrently. So
``eval_apply`` outputs are never affected by dropout from a ``train_apply`` running in another
thread; the cost is that their forward passes on shared layers do not overlap.

>>> from workbench.mode import current_mode, apply_mode
>>> current_mode()
'infer'
>>> with apply_mode("train"):
...     current_mode()
'train'
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from typing import Any, Callable, Iterator, Literal

__all__ = ["Mode", "MODES", "current_mode", "apply_mode", "LayerModes", "LAYER_MODES"]

Mode = Literal["infer", "eval", "train"]
MODES: tuple[str, ...] = ("infer", "eval", "train")

_MODE: contextvars.ContextVar[str] = contextvars.ContextVar("workbench_mode", default="infer")


def current_mode() -> str:
    """The mode of the apply call running in this thread; ``"infer"`` outside any apply call."""
    return _MODE.get()


@contextlib.contextmanager
def apply_mode(mode: str) -> Iterator[str]:
    """Run the body in ``mode``, restoring the previous mode afterwards (also on error)."""
    if mode not in MODES:
        raise ValueError(f"unknown apply mode {mode!r}; expected one of {', '.join(MODES)}")
    token = _MODE.set(mode)
    try:
        yield mode
    finally:
        _MODE.reset(token)


class LayerModes:
    """Per-call ``training`` flags for torch layers used by several threads at once (see the module docstring).

    >>> import torch
    >>> layer = torch.nn.Dropout()
    >>> LAYER_MODES.run(layer, False, lambda x: layer.training, None)
    False
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()  # held only for a few list operations
        self._changed = threading.Condition(self._lock)
        self._active: dict[int, list[Any]] = {}  # id(layer) -> [training, ids of the threads running it]

    def run(self, layer: Any, training: bool, call: Callable[[Any], Any], x: Any) -> Any:
        """``call(x)`` with ``layer`` in ``training`` mode for the whole call (see the class docstring)."""
        key = id(layer)
        me = _get_ident()
        with self._lock:
            state = self._active.get(key)
            if state is None:
                self._active[key] = [training, me]
            elif state[0] == training:
                state.append(me)
            else:
                self._wait(layer, key, training, me)
            if layer.training is not training:
                layer.train(training)
        try:
            return call(x)
        finally:
            with self._lock:
                state = self._active[key]
                state.remove(me)
                if len(state) == 1:
                    del self._active[key]
                    self._changed.notify_all()

    def _wait(self, layer: Any, key: int, training: bool, me: int) -> None:
        while True:
            state = self._active.get(key)
            if state is None:
                self._active[key] = [training, me]
                return
            if state[0] == training:
                state.append(me)
                return
            if me in state[1:]:
                raise RuntimeError(
                    f"layer {type(layer).__name__} is already running in {'train' if state[0] else 'eval'} mode "
                    f"in this thread; it cannot also run in {'train' if training else 'eval'} mode inside that call")
            self._changed.wait()


_get_ident = threading.get_ident

LAYER_MODES = LayerModes()
"""The one registry of layers running right now, and in which mode."""
