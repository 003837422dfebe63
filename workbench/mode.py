"""The apply mode: ``"infer"``, ``"eval"`` or ``"train"``, held per call in a context variable.

The mode is not global state: each thread (and each asyncio task) sees the mode of the apply call
it is running inside, so one thread can ``train_apply`` while another ``eval_apply``-s the same
pipeline and each ``IfTrain`` branch sees its own mode.

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
from typing import Iterator, Literal

__all__ = ["Mode", "MODES", "current_mode", "apply_mode"]

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
