"""The registry of named pipelines in this interpreter.

``%%pipeline NAME`` registers what the cell builds; the JupyterLab extension lists what is
registered. Listeners are told (with the current names) whenever the registry changes.

>>> from workbench import registry, identity
>>> registry.register("demo", identity)
>>> registry.get("demo") is identity
True
>>> registry.unregister("demo")
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Mapping

from ._text import article
from .errors import PipelineNotFound
from .pipeline import Batch, Identity, Transform, Unbatch

__all__ = ["register", "unregister", "get", "names", "items", "lookup", "subscribe", "unsubscribe"]

_PIPELINES: dict[str, Transform] = {}
_LISTENERS: list[Callable[[list[str]], None]] = []
_LOCK = threading.Lock()


def register(name: str, pipeline: Transform) -> None:
    """Register ``pipeline`` under ``name``, replacing any pipeline of that name."""
    if not name.isidentifier():
        raise ValueError(f"pipeline name {name!r} must be a Python identifier")
    if not isinstance(pipeline, Transform):
        raise TypeError(f"{name!r} is a {type(pipeline).__name__}, not a workbench pipeline")
    with _LOCK:
        _PIPELINES[name] = pipeline
    _notify()


def unregister(name: str) -> None:
    """Forget ``name``; an unknown name is an error that lists the known ones."""
    with _LOCK:
        if name not in _PIPELINES:
            raise KeyError(_unknown(name))
        del _PIPELINES[name]
    _notify()


def get(name: str) -> Transform:
    """The pipeline registered as ``name``; ``KeyError`` naming the known pipelines otherwise."""
    try:
        return _PIPELINES[name]
    except KeyError:
        raise KeyError(_unknown(name)) from None


def names() -> list[str]:
    """Registered names, in registration order."""
    return list(_PIPELINES)


def items() -> list[tuple[str, Transform]]:
    """``(name, pipeline)`` pairs, in registration order."""
    return list(_PIPELINES.items())


def lookup(name: str, namespace: Mapping[str, Any]) -> tuple[Transform, str]:
    """The pipeline called ``name`` and where it was found: registered (``"registry"``) first, else a
    variable of ``namespace`` holding a pipeline (``"variable"``).

    Otherwise :class:`~workbench.errors.PipelineNotFound`, listing the registered pipelines and the
    pipeline variables (stage markers such as ``batch`` left out) and saying what ``name`` holds if
    it is a variable. ``%wb_save``, ``%wb_deps`` and ``workbench export`` look names up here.

    >>> from workbench import identity
    >>> pipeline, found_in = lookup("step", {"step": identity})
    >>> found_in
    'variable'
    """
    if name in _PIPELINES:
        return _PIPELINES[name], "registry"
    value = namespace.get(name)
    if isinstance(value, Transform):
        return value, "variable"
    registered = names()
    variables = sorted(key for key, value in namespace.items()
                       if not key.startswith("_") and isinstance(value, Transform)
                       and not isinstance(value, (Batch, Unbatch, Identity)))
    what = ""
    if name in namespace:
        kind = type(namespace[name]).__name__
        what = f" ({name!r} is {article(kind)} {kind}, not a pipeline)"
    raise PipelineNotFound(
        f"no pipeline named {name!r}{what}; registered pipelines: {', '.join(registered) or 'none'}; "
        f"pipeline variables: {', '.join(variables) or 'none'}",
        registered=registered, variables=variables)


def subscribe(listener: Callable[[list[str]], None]) -> None:
    """Call ``listener(names())`` after every change."""
    _LISTENERS.append(listener)


def unsubscribe(listener: Callable[[list[str]], None]) -> None:
    if listener in _LISTENERS:
        _LISTENERS.remove(listener)


def _notify() -> None:
    current = names()
    for listener in list(_LISTENERS):
        listener(current)


def _unknown(name: str) -> str:
    known = ", ".join(sorted(_PIPELINES)) or "none"
    return f"no pipeline named {name!r}; registered pipelines: {known}"
