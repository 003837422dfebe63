"""Stale definitions: a pipeline holding a function or class that the notebook has since redefined.

Python binds objects, not names: after ``encode`` is fixed and its cell re-run, a pipeline built
earlier still calls the old ``encode``. That is correct (and a bundle saves exactly what the pipeline
holds), but rarely what the author meant. :func:`stale_definitions` finds every notebook function
and class the pipeline reaches (its steps, the helpers their code uses, closures, classes of its
objects) whose name in the notebook now means a different definition, and names both cells.

>>> from workbench import transform
>>> def encode(s):
...     return s.split()
>>> pl = transform(encode)
>>> stale_definitions(pl)   # outside a tracked notebook nothing is known to be stale
[]
"""

from __future__ import annotations

import functools
import sys
import types
from dataclasses import dataclass
from typing import Any, Iterator

__all__ = ["StaleDefinition", "stale_definitions", "definitions_held", "stale_among", "stale_text"]

_BUDGET = 5000  # objects visited per pipeline at most: this runs after cells for the Pipelines panel


@dataclass(frozen=True)
class StaleDefinition:
    """``kind`` ``name`` from cell ``defined_in``, redefined in cell ``redefined_in`` (``In[n]`` labels)."""

    name: str
    kind: str
    defined_in: str
    redefined_in: str

    def message(self) -> str:
        return (f"{self.kind} {self.name!r} from {self.defined_in} was redefined in {self.redefined_in}; "
                f"the pipeline still holds the one from {self.defined_in} (re-run the cells that build it "
                "to use the new one)")

    def as_json(self) -> dict[str, str]:
        return {"name": self.name, "kind": self.kind, "defined_in": self.defined_in,
                "redefined_in": self.redefined_in, "message": self.message()}


def stale_text(pipeline: Any, name: str) -> str:
    """``warning: pipeline NAME holds ...`` lines, one per stale definition ('' when there is none)."""
    return "\n".join(f"warning: pipeline {name!r} holds an old definition: {s.message()}"
                     for s in stale_definitions(pipeline))


def stale_definitions(pipeline: Any) -> list[StaleDefinition]:
    """Every notebook definition ``pipeline`` reaches whose name now means another definition."""
    from . import tracking

    if not tracking.is_active():
        return []
    return stale_among(definitions_held(pipeline))


def definitions_held(pipeline: Any) -> list[Any]:
    """The functions and classes ``pipeline`` holds by reference (the ones that can go stale).

    Definitions its code only names (``encode(x)`` inside a helper) are looked up when called, so
    they are never stale; they are walked (what *they* hold counts) but not listed. The list can be
    kept while the pipeline is unchanged and checked after every cell with :func:`stale_among`.
    """
    return [obj for obj, by_name in _reachable(pipeline)
            if not by_name and getattr(_base(obj) if isinstance(obj, type) else obj, "__module__", None) == "__main__"]


def stale_among(definitions: list[Any]) -> list[StaleDefinition]:
    """The stale ones among ``definitions`` (from :func:`definitions_held`), by name."""
    found: dict[tuple[str, str], StaleDefinition] = {}
    for obj in definitions:
        stale = _check(obj)
        if stale is not None:
            found.setdefault((stale.kind, stale.name), stale)
    return sorted(found.values(), key=lambda s: (s.name, s.kind))


def _check(obj: Any) -> StaleDefinition | None:
    from . import tracking

    if isinstance(obj, types.FunctionType):
        if obj.__qualname__ != obj.__name__:  # nested functions and lambdas have no name of their own
            return None
        current = _unwrap(obj.__globals__.get(obj.__name__))
        if current is obj or not isinstance(current, (types.FunctionType, type)):
            return None
        old = tracking.cell_for_code(obj.__code__)
        kind = "function"
    elif isinstance(obj, type):
        module = sys.modules.get(obj.__module__)
        base = _base(obj)
        if module is None or base.__qualname__ != base.__name__:
            return None
        current = vars(module).get(base.__name__)
        current = _base(current) if isinstance(current, type) else _unwrap(current)
        if current is base or not isinstance(current, (types.FunctionType, type)):
            return None
        old = tracking.cell_for_class(base)
        kind = "class"
    else:
        return None
    new = tracking.cell_for_code(current.__code__) if isinstance(current, types.FunctionType) \
        else tracking.cell_for_class(current)
    if old is None or new is None:
        return None  # not both notebook cells: nothing the notebook redefined
    return StaleDefinition(obj.__name__, kind, f"cell {old.label}", f"cell {new.label}")


def _base(cls: type) -> type:
    base = vars(cls).get("_wb_base")
    return base if isinstance(base, type) else cls


def _unwrap(value: Any) -> Any:
    from .transform import FunctionTransform

    return value.fn if isinstance(value, FunctionTransform) else value


def _reachable(root: Any) -> Iterator[tuple[Any, bool]]:
    """``(definition, reached_by_name)`` for the functions and classes ``root`` reaches, within a budget."""
    import torch

    from .pipeline import Transform
    from .transform import FunctionTransform

    seen: set[int] = set()
    named: set[int] = set()  # looked up by a global name at call time
    queue = [root]
    while queue and len(seen) < _BUDGET:
        obj = queue.pop(0)
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, types.FunctionType):
            yield obj, id(obj) in named
            used = list(_globals_used(obj))
            named.update(id(v) for v in used if id(v) not in seen)
            queue.extend(used)
            queue.extend(c.cell_contents for c in obj.__closure__ or () if _filled(c))
            queue.extend(obj.__defaults__ or ())
        elif isinstance(obj, type):
            yield obj, id(obj) in named
            queue.extend(v for v in vars(_base(obj)).values() if isinstance(v, (types.FunctionType, staticmethod,
                                                                                 classmethod, property)))
        elif isinstance(obj, (staticmethod, classmethod)):
            queue.append(obj.__func__)
        elif isinstance(obj, property):
            queue.extend(f for f in (obj.fget, obj.fset) if f is not None)
        elif isinstance(obj, functools.partial):
            queue.append(obj.func)
            queue.extend(obj.args)
            queue.extend(obj.keywords.values())
        elif isinstance(obj, types.MethodType):
            queue.extend((obj.__func__, obj.__self__))
        elif isinstance(obj, FunctionTransform):
            queue.append(obj.fn)
        elif isinstance(obj, Transform) and obj._wb_children():
            queue.extend(obj._wb_children())
        elif isinstance(obj, torch.nn.Module):
            queue.extend({type(m) for m in obj.modules()})
        elif isinstance(obj, (list, tuple, set, frozenset)) and len(obj) <= 100:
            queue.extend(obj)
        elif isinstance(obj, dict) and len(obj) <= 100:
            queue.extend(obj.values())
        elif type(obj).__module__ == "__main__" or isinstance(obj, Transform):
            queue.append(type(obj))
            queue.extend(getattr(obj, "__dict__", {}).values())


def _filled(cell: Any) -> bool:
    try:
        cell.cell_contents
    except ValueError:
        return False
    return True


def _globals_used(fn: types.FunctionType) -> Iterator[Any]:
    namespace = fn.__globals__
    stack = [fn.__code__]
    while stack:
        code = stack.pop()
        for name in code.co_names:
            if name in namespace:
                yield namespace[name]
        stack.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
