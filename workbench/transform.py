"""``transform``: turn functions, callable classes, torch layers and whole modules into pipeline steps.

>>> import torch
>>> from workbench import transform
>>> @transform
... def add_one(x):
...     return x + 1
>>> nn = transform(torch.nn)          # every class in torch.nn now makes transforms
>>> layer = nn.Linear(3, 4)
>>> isinstance(layer, torch.nn.Module)   # still a real torch layer
True
>>> pl = add_one >> layer

What each kind of object becomes:

- a function or lambda, or any callable instance: a :class:`FunctionTransform` calling it;
- a class with ``__call__`` (used as a decorator, or called on an imported class): a subclass whose
  instances are transforms and behave exactly like instances of the original class;
- a ``torch.nn.Module`` instance: the same object, now also a transform (its parameters, state_dict and
  attributes are untouched, so training it trains the pipeline);
- a module (``transform(torch.nn)``): a proxy whose classes and functions come out as transforms.

A step takes one input. When the wrapped callable needs several positional arguments and the
input is a tuple, the tuple is unpacked: ``(a / b) >> transform(lambda x, y: x + y)`` works.
"""

from __future__ import annotations

import copyreg
import functools
import inspect
import re
import sys
import types
from typing import Any, Callable

from ._running import MODE
from .mode import LAYER_MODES
from .pipeline import Transform

__all__ = ["transform", "FunctionTransform", "ModuleProxy"]


def transform(obj: Any) -> Any:
    """Make ``obj`` a pipeline step (see the module docstring for what each kind becomes)."""
    if isinstance(obj, (Transform, ModuleProxy)):
        return obj
    if isinstance(obj, types.ModuleType):
        return ModuleProxy(obj)
    if isinstance(obj, type):
        # A class whose instances are callable becomes a class of transforms; any other class
        # (int, str, a dataclass without __call__) is a function that builds a value.
        return _wrap_class(obj) if _defines_call(obj) else FunctionTransform(obj)
    if _is_torch_module(obj):
        # object.__setattr__: a traced module forwards attribute assignment to the module it wraps
        object.__setattr__(obj, "__class__", _wrap_class(type(obj)))
        return obj
    if callable(obj):
        return FunctionTransform(obj)
    raise TypeError(
        f"transform() needs a function, a callable class or instance, a torch.nn.Module or a module; "
        f"got {type(obj).__name__} {obj!r:.60}"
    )


class FunctionTransform(Transform):
    """A step that calls a function, lambda or callable object.

    >>> FunctionTransform(str.upper)("abc")
    'ABC'
    """

    def __init__(self, fn: Callable[..., Any]):
        self.fn = fn
        functools.update_wrapper(self, fn, updated=())  # keeps __name__, __doc__, __wrapped__

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def _wb_callable(self) -> Callable[[Any], Any]:
        return _one_argument(self.fn, self.fn)

    def _wb_kind(self) -> str:
        name = getattr(self.fn, "__name__", None) or type(self.fn).__name__
        if name == "<lambda>":
            return _lambda_text(self.fn)
        return name

    def __repr__(self) -> str:
        return self._wb_title()

    def __reduce__(self) -> Any:
        # A decorated function is importable under its own name; elsewhere pickle the function
        # itself (by reference, or by value with cloudpickle for notebook and script code).
        if self.__module__ != "__main__" and _importable_as(self):
            return self.__qualname__
        return (_function_transform, (self.fn, self._wb_name, self._wb_varname))


def _function_transform(fn: Callable[..., Any], name: str | None, varname: str | None = None) -> FunctionTransform:
    t = FunctionTransform(fn)
    t._wb_name = name
    t._wb_varname = varname
    return t


class ModuleProxy:
    """``transform(module)``: attribute access hands out transforms.

    Classes come out wrapped (``nn.Linear(3, 4)`` is a transform), functions as
    :class:`FunctionTransform`, submodules as proxies; other attributes unchanged.
    """

    def __init__(self, module: types.ModuleType):
        self._module = module
        self._cache: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return self._cache[name]
        except KeyError:
            pass
        value = getattr(self._module, name)
        if isinstance(value, types.ModuleType):
            value = ModuleProxy(value)
        elif callable(value):
            value = transform(value)
        self._cache[name] = value
        return value

    def __dir__(self) -> list[str]:
        return dir(self._module)

    def __repr__(self) -> str:
        return f"transform({self._module.__name__})"

    def __reduce__(self) -> Any:
        return (ModuleProxy, (self._module,))


# --- classes -------------------------------------------------------------------------------------

_WRAPPED: dict[type, type] = {}


def _wrap_class(cls: type) -> type:
    """A subclass of ``cls`` and :class:`Transform` with the same name, module and behaviour."""
    if issubclass(cls, Transform):
        return cls
    if cls in _WRAPPED:
        return _WRAPPED[cls]
    if not _defines_call(cls):
        raise TypeError(f"transform() needs a callable class; {cls.__qualname__} has no __call__ method")
    namespace = {
        "__module__": cls.__module__,
        "__qualname__": cls.__qualname__,
        "__doc__": cls.__doc__,
        "_wb_base": cls,
        "__reduce_ex__": _reduce_wrapped,
    }
    if _is_torch_module_class(cls):
        namespace["_wb_callable"] = _module_callable
    else:
        namespace["_wb_callable"] = _instance_callable
    wrapped = type(cls.__name__, (cls, Transform), namespace)
    _WRAPPED[cls] = wrapped
    return wrapped


def _instance_callable(self: Any) -> Callable[[Any], Any]:
    return _one_argument(self, self.__call__)


def _module_callable(self: Any) -> Callable[[Any], Any]:
    """Calls the layer with ``training`` set from the apply mode of the running call, per call
    (:data:`workbench.mode.LAYER_MODES`: other threads' calls in another mode wait their turn)."""
    call = _one_argument(self.forward, self)
    run = LAYER_MODES.run

    def run_layer(x: Any) -> Any:
        return run(self, MODE.get() == "train", call, x)

    return run_layer


def _reduce_wrapped(self: Any, protocol: int) -> Any:
    """Pickle a wrapped instance; by reference when its class is importable under its own name."""
    cls = type(self)
    base = cls._wb_base
    reduced = base.__reduce_ex__(self, protocol)
    if _importable_as(cls) or not isinstance(reduced, tuple) or reduced[0] is not copyreg.__newobj__:
        return reduced
    # The importable name is the original class: rebuild from it, then re-wrap.
    return (_new_wrapped, (base,) + tuple(reduced[1][1:]), *reduced[2:])


def _new_wrapped(base: type, *args: Any) -> Any:
    cls = _wrap_class(base)
    return cls.__new__(cls, *args)


def _importable_as(obj: Any) -> bool:
    """Whether ``obj`` is what its module attribute under its qualified name holds."""
    found: Any = sys.modules.get(getattr(obj, "__module__", None) or "")
    for part in str(getattr(obj, "__qualname__", "")).split("."):
        found = getattr(found, part, None)
    return found is obj


# --- helpers ---------------------------------------------------------------------------------------


def _one_argument(target: Any, call: Callable[..., Any]) -> Callable[[Any], Any]:
    """``call`` as a one-input callable; a tuple input is unpacked when ``target`` needs several arguments."""
    if _positional_arity(target) <= 1:
        return call

    def unpacking(x: Any) -> Any:
        if isinstance(x, (tuple, list)):
            return call(*x)
        return call(x)

    return unpacking


def _positional_arity(target: Any) -> int:
    """How many positional arguments ``target`` requires (0 when it cannot be told)."""
    fn = target.forward if _is_torch_module(target) else target
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return 0
    return sum(
        1
        for p in sig.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    )


def _lambda_text(fn: Callable[..., Any]) -> str:
    """``lambda x: x + 1`` from the source when it can be found, else ``<lambda>``."""
    try:
        source = inspect.getsource(fn)
    except (OSError, TypeError):
        return "<lambda>"
    found = re.search(r"\blambda\b", source)  # the keyword, not a name such as lambda_fn
    if found is None:
        return "<lambda>"
    text = source[found.start():]
    depth = 0
    for i, ch in enumerate(text):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            if depth == 0:
                return text[:i].strip()
            depth -= 1
        elif ch in ",\n" and depth == 0:
            return text[:i].strip()
    return text.strip()


def _defines_call(cls: type) -> bool:
    """Whether instances of ``cls`` are callable (``type.__call__`` on the class itself does not count)."""
    return any("__call__" in vars(k) for k in cls.__mro__[:-1])


def _is_torch_module(obj: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.nn.Module)


def _is_torch_module_class(cls: type) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and issubclass(cls, torch.nn.Module)
