"""``same``: a step written as an expression on its input.

``same.lower()`` is the step ``x -> x.lower()``, ``same[:, 0]`` is ``x -> x[:, 0]`` and
``same.shape`` is ``x -> x.shape``; attribute access, calls and indexing chain freely.

>>> from workbench import same
>>> (same.strip().split(",") >> same[0]).infer_apply("  a,b ")
'a'

Calling a ``same`` expression records a method call when the expression ends in an attribute
(``same.split(",")``); otherwise the call applies the expression to its one argument:
``same[0]([1, 2, 3]) == 1``, ``same.tolist()(t) == t.tolist()``.

Attribute names starting with ``_`` are not recorded (so notebook display hooks keep working);
write ``transform(lambda x: x._private)`` for those.
"""

from __future__ import annotations

import operator
from typing import Any, Callable

from .pipeline import Transform

__all__ = ["same", "Same"]


class Same(Transform):
    """The expression ``same`` followed by recorded attribute, call and item operations."""

    def __init__(self, ops: tuple[tuple[Any, ...], ...] = ()):
        self._wb_ops = ops

    def __getattr__(self, name: str) -> "Same":
        if name.startswith("_"):
            raise AttributeError(name)
        return Same(self._wb_ops + (("attr", name),))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._wb_ops and self._wb_ops[-1][0] == "attr":  # same.method(args): record the call
            return Same(self._wb_ops + (("call", args, kwargs),))
        if len(args) != 1 or kwargs:
            raise TypeError(f"{self._wb_kind()} applied to an input takes exactly one argument "
                            f"(got {len(args)} positional and {len(kwargs)} keyword arguments); "
                            "to record a call, end the expression in a method name: same.method(...)")
        return self._wb_callable()(args[0])

    def __getitem__(self, key: Any) -> "Same":
        return Same(self._wb_ops + (("item", key),))

    def _wb_callable(self) -> Callable[[Any], Any]:
        steps = _compile(self._wb_ops)
        if not steps:
            return _identity
        if len(steps) == 1:
            return steps[0]

        def evaluate(x: Any) -> Any:
            for step in steps:
                x = step(x)
            return x

        return evaluate

    def _wb_kind(self) -> str:
        text = "same"
        for op in self._wb_ops:
            if op[0] == "attr":
                text += f".{op[1]}"
            elif op[0] == "call":
                args = [repr(a) for a in op[1]] + [f"{k}={v!r}" for k, v in op[2].items()]
                text += f"({', '.join(args)})"
            else:
                text += f"[{_index_text(op[1])}]"
        return text

    def __repr__(self) -> str:
        return self._wb_title()

    def __reduce__(self) -> Any:
        return (_rebuild, (self._wb_ops, self._wb_name, self._wb_varname))


def _compile(ops: tuple[tuple[Any, ...], ...]) -> list[Callable[[Any], Any]]:
    """The recorded operations as ``operator`` callables; ``.name(args)`` becomes one method call."""
    steps: list[Callable[[Any], Any]] = []
    i = 0
    while i < len(ops):
        op = ops[i]
        if op[0] == "attr" and i + 1 < len(ops) and ops[i + 1][0] == "call":
            steps.append(operator.methodcaller(op[1], *ops[i + 1][1], **ops[i + 1][2]))
            i += 2
            continue
        if op[0] == "attr":
            steps.append(operator.attrgetter(op[1]))
        elif op[0] == "call":
            args, kwargs = op[1], op[2]
            steps.append(lambda x, args=args, kwargs=kwargs: x(*args, **kwargs))
        else:
            steps.append(operator.itemgetter(op[1]))
        i += 1
    return steps


def _identity(x: Any) -> Any:
    return x


def _rebuild(ops: tuple[tuple[Any, ...], ...], name: str | None, varname: str | None = None) -> Same:
    s = Same(ops)
    s._wb_name = name
    s._wb_varname = varname
    return s


def _index_text(key: Any) -> str:
    if isinstance(key, tuple):
        return ", ".join(_index_text(k) for k in key)
    if isinstance(key, slice):
        parts = ["" if v is None else repr(v) for v in (key.start, key.stop)]
        text = ":".join(parts)
        return text + (f":{key.step!r}" if key.step is not None else "")
    if key is Ellipsis:
        return "..."
    return repr(key)


same = Same()
