"""Capturing a pipeline: the source, weights and data that rebuild exactly the objects it holds.

:class:`Capture` walks the pipeline and everything its steps reach, and turns each object into a
statement of the bundle's source:

- pipeline nodes become constructor calls (``_wb.Compose([...])``, ``_wb.FunctionTransform(f)``);
- functions, lambdas and classes defined in scripts, notebook cells or local (not installed)
  modules are copied as source, found through :mod:`workbench.bundle.source` and verified by
  recompiling them and comparing the bytecode with the live object;
- every global name a definition uses is resolved to the value the live code sees *now*
  (``fn.__globals__``), recursively; two different objects wanting the same name are given
  distinct names and the references are rewritten (:mod:`workbench.bundle.scope`);
- closures are rebuilt by a small factory called with the captured cell contents;
- objects of installed packages and the standard library are imported;
- torch layers become their class, their state and their tensors (weights), with hooks,
  parametrizations, TorchScript programs and ``torch.compile`` calls (:mod:`workbench.bundle.layers`);
- tensors, arrays, data frames and large literals are stored by value as files.

Anything that cannot be rebuilt exactly raises :class:`CaptureError` naming the object, where it
was defined and how the pipeline reaches it.

>>> from workbench import transform
>>> cap = Capture()
>>> cap.capture(transform(len))
>>> "pipeline = _wb.FunctionTransform(len)" in cap.source()
True
"""

from __future__ import annotations

import builtins
import contextlib
import enum
import functools
import keyword
import math
import os
import re
import struct
import sys
import types
from typing import Any, Iterable, Iterator

from .codetext import strict_equal as _strict_equal
from .definitions import _MISSING, DefinitionsMixin, _Definition, _function_of, _label, _where
from .errors import CaptureError
from .installed import is_installed_module
from .layers import LayersMixin
from .objects import ObjectsMixin, _is_wrapped
from .report import CaptureReport, GlobalEntry, _Tally

__all__ = ["Capture", "is_installed_module"]

_LARGE_LITERAL = 20_000  # characters of repr above which a container is stored as a JSON file


# --- which modules are imported rather than copied ---------------------------------------------------

# --- small helpers ------------------------------------------------------------------------------------


class _Step(str):
    """A pipeline step's title in the capture path (the report names the step that reads a global)."""


def _literal_key(obj: Any) -> tuple[str, str] | None:
    """A hashable key for immutable scalars (their identity does not matter), else None."""
    if obj is None or isinstance(obj, (bool, int, float, complex, str, bytes)) and type(obj) in (
            bool, int, float, complex, str, bytes):
        return ("literal", type(obj).__name__ + ":" + _scalar_text(obj))
    return None


def _scalar_text(obj: Any) -> str:
    if isinstance(obj, float):
        if math.isnan(obj):
            bits = struct.pack("<d", obj)
            if bits == struct.pack("<d", math.copysign(math.nan, obj)):
                return "float('nan')" if math.copysign(1.0, obj) > 0 else "-float('nan')"
            return f"__import__('struct').unpack('<d', bytes.fromhex({bits.hex()!r}))[0]"  # a NaN payload, bit for bit
        if math.isinf(obj):
            return "float('inf')" if obj > 0 else "float('-inf')"
        return repr(obj)
    if isinstance(obj, complex):
        return f"complex({_scalar_text(obj.real)}, {_scalar_text(obj.imag)})"
    return repr(obj)


def _json_exact(value: Any) -> bool:
    """Whether ``value`` survives a JSON round trip unchanged (types included)."""
    import json

    try:
        back = json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError):
        return False
    return _strict_equal(back, value)


# --- the capture ---------------------------------------------------------------------------------------


class Capture(DefinitionsMixin, ObjectsMixin, LayersMixin):
    """Collects the source statements, tensors and data files that rebuild one pipeline."""

    def __init__(self, whole: Iterable[int] = ()) -> None:
        """``whole``: ids of objects to store whole even where the code reads only some attributes."""
        import torch

        self._torch = torch
        self.imports: list[str] = []
        self.statements: list[str] = []
        self.definitions: list[_Definition] = []
        self.weights: dict[str, Any] = {}      # key -> tensor (parameters and buffers of layers)
        self.tensors: dict[str, Any] = {}      # key -> tensor (other tensors)
        self.arrays: dict[str, Any] = {}       # name -> numpy array
        self.frames: dict[str, Any] = {}       # name -> DataFrame / Series
        self.json_values: dict[str, Any] = {}  # name -> JSON value
        self.archives: dict[str, bytes] = {}   # name -> TorchScript archive (tensors emptied)
        self.imported_modules: set[str] = set()
        self._names: dict[str, Any] = {}       # bundle name -> object key
        self._primary: dict[Any, str] = {}     # object key -> bundle name
        self._done: set[Any] = set()
        self._busy: set[Any] = set()
        self._pending: list[Any] = []
        self._aliases: dict[Any, list[str]] = {}
        self._keep: list[Any] = []
        self._tensor_keys: dict[int, tuple[str, str, tuple[int, ...] | None]] = {}  # id -> (store, key, dims)
        self._storages: dict[Any, list[Any]] = {}  # (device, storage pointer) -> stored tensors and byte ranges
        self._artifact_names: set[str] = set()
        self._cells: dict[int, Any] = {}  # id(closure cell) -> the first function seen holding it
        self._namespaces: dict[int, dict[str, Any]] = {}
        self._path: list[str] = []
        self._global_of: dict[Any, tuple[str, str, dict[str, Any]]] = {}
        self._hooked_layers: list[tuple[Any, str, list[str]]] = []  # hooks are registered once all layers exist
        self._whole = set(whole)
        home = os.path.expanduser("~")
        self._home = home.rstrip(os.sep) + os.sep if home not in ("", "/", "~") else None
        self.home_paths: dict[str, str] = {}  # data strings holding a home path -> how the pipeline reaches them
        self._views: dict[Any, dict[str, Any]] = {}  # ("view", id) -> {"name", "attrs"} of its namespace
        self._tally = _Tally(self)
        self._sizes: dict[Any, list[int]] = {}        # object key -> [weight bytes, data bytes] it added
        self._readers: dict[Any, dict[str, Any]] = {}  # object key -> report entry under construction
        self._torch_internal = set(torch.nn.Module().__dict__)
        for name in dir(builtins):
            if not name.startswith("__"):
                key = self._key(getattr(builtins, name))
                self._names[name] = key
                if key[0] == "id":
                    self._done.add(key)
                    self._primary.setdefault(key, name)
        for reserved in ("_wb", "_bundle", "pipeline"):
            self._names[reserved] = ("reserved", reserved)

    # --- entry points ------------------------------------------------------------------------------

    def capture(self, pipeline: Any) -> None:
        """Capture ``pipeline``; the source then ends with ``pipeline = ...``."""
        self._path = ["pipeline"]
        text = self.expr(pipeline, "pipeline_step")
        self._drain()
        while self._hooked_layers:
            self._register_hooks()
            self._drain()
        self.statements.append(f"pipeline = {text}")

    def source(self) -> str:
        """The bundle source (see :func:`workbench.bundle.emit.render`)."""
        from .emit import render

        return render(self)

    # --- naming --------------------------------------------------------------------------------------

    def _key(self, obj: Any) -> Any:
        lit = _literal_key(obj)
        return lit if lit is not None else ("id", id(obj))

    def _fresh(self, base: str) -> str:
        base = re.sub(r"\W", "_", base) or "value"
        if base[0].isdigit():
            base = "_" + base
        if base not in self._names and not keyword.iskeyword(base):
            return base
        n = 2
        while f"{base}_{n}" in self._names:
            n += 1
        return f"{base}_{n}"

    def _claim(self, obj: Any, preferred: str) -> tuple[str, bool]:
        """The bundle name for ``obj``, preferring ``preferred``; True when it is new."""
        key = self._key(obj)
        if self._names.get(preferred) == key:
            return preferred, False
        if key[0] == "literal":  # immutable values: every name gets its own assignment
            name = self._fresh(preferred)
            self._names[name] = key
            return name, True
        if key in self._primary:
            primary = self._primary[key]
            if preferred.isidentifier() and not keyword.iskeyword(preferred) and preferred not in self._names \
                    and key[0] == "id":
                self._names[preferred] = key
                if key in self._done:
                    self.statements.append(f"{preferred} = {primary}")
                else:
                    self._aliases.setdefault(key, []).append(preferred)
                return preferred, False
            return primary, False
        name = self._fresh(preferred)
        self._names[name] = key
        self._primary[key] = name
        self._keep.append(obj)
        return name, True

    def _hint(self, obj: Any, fallback: str) -> str:
        name = getattr(obj, "__name__", None) if isinstance(obj, (type, types.FunctionType, types.ModuleType,
                                                                      types.BuiltinFunctionType)) else None
        if isinstance(name, str) and name.isidentifier():
            return name
        if name == "<lambda>":
            return "lambda_fn"
        if fallback in ("step", "pipeline_step", "arg", "state", "items") and not isinstance(obj, (list, dict, tuple)):
            return type(obj).__name__.lower()
        return fallback

    # --- references: call time and definition time --------------------------------------------------

    def ref(self, obj: Any, name: str) -> str:
        """A name bound to ``obj`` by the time the bundle's functions run (may be defined later)."""
        if self._literal_key(obj):
            return self.need(obj, name)
        bundle_name, new = self._claim(obj, name)
        key = self._key(obj)
        if key not in self._done and key not in self._busy:
            self._pending.append((obj, list(self._path)))
        return bundle_name

    def _literal_key(self, obj: Any) -> bool:
        return _literal_key(obj) is not None

    def need(self, obj: Any, name: str) -> str:
        """A name bound to ``obj`` before the next statement runs."""
        if _literal_key(obj) is not None:
            bundle_name, new = self._claim(obj, name)
            if new:
                with self._measure(("literal-name", bundle_name)):
                    self.statements.append(self._value_comment(obj, bundle_name)
                                           + f"{bundle_name} = {self._literal_text(obj, bundle_name)}")
            return bundle_name
        bundle_name, _ = self._claim(obj, name)
        key = self._key(obj)
        if key in self._done:
            return bundle_name
        if key in self._busy:
            if isinstance(obj, (types.FunctionType, type)):
                return bundle_name
            self._fail(obj, "refers to itself while being defined (a reference cycle)")
        self._define(obj, self._primary[key])
        return bundle_name

    def _literal_text(self, obj: Any, hint: str) -> str:
        """A literal, or for a very long string, a read of the JSON file it is stored in."""
        if isinstance(obj, str) and self._home and self._home in obj:
            self.home_paths.setdefault(obj if len(obj) <= 200 else obj[:197] + "...",
                                       " -> ".join(p for p in self._path if p))
        if isinstance(obj, str) and len(obj) > _LARGE_LITERAL:
            name = self._artifact(hint)
            self.json_values[name] = obj
            return f"_bundle.json({name!r})"
        return _scalar_text(obj)

    def _drain(self) -> None:
        while self._pending:
            obj, path = self._pending.pop(0)
            key = self._key(obj)
            if key in self._done or key in self._busy:
                continue
            saved = self._path
            self._path = path
            try:
                self._define(obj, self._primary[key])
            finally:
                self._path = saved

    # --- expressions -----------------------------------------------------------------------------------

    def expr(self, obj: Any, hint: str) -> str:
        """A Python expression that evaluates to (a faithful copy of) ``obj`` at this point of the source."""
        torch = self._torch
        if _literal_key(obj) is not None:
            return self._literal_text(obj, hint)
        if obj is Ellipsis:
            return "..."
        if obj is NotImplemented:
            return "NotImplemented"
        key = self._key(obj)
        # a mutable container that already has a name (a global another step reads) is shared, not copied
        if key in self._primary and (key in self._done or key in self._busy or type(obj) in (list, dict, set)):
            return self.need(obj, self._primary[key])
        if isinstance(obj, torch.Tensor) and id(obj) in self._tensor_keys:
            return self._tensor_expr(obj, hint, "tensors")  # already stored: the same memoised read
        from ..pipeline import Transform

        if isinstance(obj, Transform) and not isinstance(obj, torch.nn.Module):
            text = self._transform_expr(obj, hint)
            if text is not None:
                return text
        if type(obj) in (list, tuple, dict, set, frozenset):
            return self._container_expr(obj, hint)
        if isinstance(obj, slice):
            return f"slice({self.expr(obj.start, hint)}, {self.expr(obj.stop, hint)}, {self.expr(obj.step, hint)})"
        if isinstance(obj, range):
            return f"range({obj.start}, {obj.stop}, {obj.step})"
        if isinstance(obj, torch.dtype):
            return f"{self.need(torch, 'torch')}.{str(obj).split('.')[-1]}"
        if isinstance(obj, torch.device):
            return f"{self.need(torch, 'torch')}.device({str(obj)!r})"
        if isinstance(obj, torch.Size):
            return f"{self.need(torch, 'torch')}.Size({list(obj)!r})"
        if isinstance(obj, functools.partial) and type(obj) is functools.partial:
            parts = [self.expr(obj.func, hint)] + [self.expr(a, hint) for a in obj.args]
            parts += [f"{k}={self.expr(v, hint)}" for k, v in obj.keywords.items()]
            return f"{self.need(functools, 'functools')}.partial({', '.join(parts)})"
        if isinstance(obj, types.MethodType):
            owner = obj.__self__
            func = obj.__func__
            cls = owner if isinstance(owner, type) else type(owner)
            if _function_of(_class_lookup(cls, func.__name__)) is func or \
                    getattr(getattr(cls, func.__name__, None), "__func__", None) is func:
                return f"{self.expr(owner, self._hint(owner, cls.__name__.lower()))}.{func.__name__}"
            return f"{self.need(types, 'types')}.MethodType({self.expr(func, hint)}, {self.expr(owner, hint)})"
        if isinstance(obj, (types.BuiltinMethodType,)) and getattr(obj, "__self__", None) is not None \
                and not isinstance(obj.__self__, types.ModuleType):
            return f"{self.expr(obj.__self__, hint)}.{obj.__name__}"
        if isinstance(obj, (types.MethodDescriptorType, types.WrapperDescriptorType, types.ClassMethodDescriptorType)):
            return f"{self.expr(obj.__objclass__, hint)}.{obj.__name__}"
        if isinstance(obj, enum.Enum):
            return f"{self.expr(type(obj), hint)}.{obj.name}"
        if isinstance(obj, re.Pattern):
            return self._pattern_expr(obj, hint)
        if _is_numpy_scalar(obj):
            if obj.dtype.kind in "biufc" and obj.dtype.itemsize <= 8 * (1 + (obj.dtype.kind == "c")):
                return f"{self.expr(type(obj), 'numpy_type')}({_scalar_text(obj.item())})"
            # datetime64, longdouble, strings...: their Python value is not exact; a 0-d array is
            return f"{self._array_expr(_numpy().asarray(obj), hint)}[()]"
        return self.need(obj, self._hint(obj, hint))

    def _pattern_expr(self, pattern: re.Pattern, hint: str) -> str:
        """``re.compile(pattern, re.IGNORECASE | ...)``: a compiled regular expression, pattern and flags."""
        module = self.need(re, "re")
        single = {flag.value: flag.name for flag in re.RegexFlag
                  if flag.name and flag.value.bit_count() == 1 and flag.value & pattern.flags}
        if single and sum(single) == pattern.flags:
            flags = " | ".join(f"{module}.{name}" for _, name in sorted(single.items()))
        else:
            flags = str(pattern.flags)  # bits without a name of their own: the number says it exactly
        return f"{module}.compile({self.expr(pattern.pattern, hint)}, {flags})"

    def _container_expr(self, obj: Any, hint: str, defining: bool = False) -> str:
        key = ("id", id(obj))
        if key in self._busy and not defining:
            self._fail(obj, "contains itself (a reference cycle)")
        if len(_repr_or_empty(obj)) > _LARGE_LITERAL and _json_exact(obj):
            name = self._artifact(hint)
            self.json_values[name] = obj
            return f"_bundle.json({name!r})"
        self._busy.add(key)
        try:
            if type(obj) is list:
                return "[" + ", ".join(self.expr(v, hint) for v in obj) + "]"
            if type(obj) is tuple:
                inner = ", ".join(self.expr(v, hint) for v in obj)
                return f"({inner},)" if len(obj) == 1 else f"({inner})"
            if type(obj) is dict:
                return "{" + ", ".join(f"{self.expr(k, hint)}: {self.expr(v, _key_hint(k, hint))}"
                                       for k, v in obj.items()) + "}"
            items = ", ".join(self.expr(v, hint) for v in _stable(obj))
            if type(obj) is set:
                return "{" + items + "}" if obj else "set()"
            return f"frozenset([{items}])"
        finally:
            if not defining:
                self._busy.discard(key)

    # --- pipeline nodes --------------------------------------------------------------------------------

    def _transform_expr(self, t: Any, hint: str) -> str | None:
        import workbench

        from .. import pipeline as P
        from ..same import Same
        from ..transform import FunctionTransform

        kind = type(t)
        text: str | None = None
        self._path.append(_Step(t._wb_title()))
        try:
            if t is P.batch or t is P.unbatch or t is P.identity:
                return f"_wb.{t._wb_kind()}"
            if kind is P.Batch:
                if t._wb_collate_fn is not None:
                    fn = t._wb_collate_fn
                    return f"_wb.batch.collate({self.expr(fn, self._hint(fn, 'collate'))})"
                if t._wb_padding is not None:
                    return f"_wb.batch.pad({self.expr(t._wb_padding, 'padding')})"
                return "_wb.pipeline.Batch()"  # another instance of the plain marker: the same marker
            if kind is P.Unbatch:
                return "_wb.pipeline.Unbatch()"
            if kind is P.Identity:
                text = "_wb.identity"
            elif isinstance(t, P._Composite) and getattr(workbench, kind.__name__, None) is kind:
                args, kwargs = t._wb_arguments()  # the composite says what makes it again
                parts = [self._argument(t, a, "argument") for a in args]
                parts += [f"{k}={self._argument(t, v, k)}" for k, v in kwargs.items()]
                text = f"_wb.{kind.__name__}({', '.join(parts)})"
            elif kind is FunctionTransform:
                fn = t.fn
                text = f"_wb.FunctionTransform({self.expr(fn, self._hint(fn, hint))})"
            elif kind is Same:
                text = "_wb.same" + "".join(self._same_op(op) for op in t._wb_ops)
            if text is None:
                return None
            if t._wb_varname is not None:  # the variable name it had, which pl[name] and output fields use
                text = f"{text}._wb_with_varname({t._wb_varname!r})"
            if t._wb_name is not None:
                text = f"({text} - {t._wb_name!r})"
            own = t.__dict__.get("_wb_annotations")
            if own:
                names = ", ".join(f"{key}={self.expr(value, key)}" for key, value in own.items())
                text = f"_wb.annotate({text}, {names})"
            return text
        finally:
            self._path.pop()

    def _argument(self, node: Any, value: Any, hint: str) -> str:
        """A composite's constructor argument, its children written at their positions."""
        children = node._children
        if type(value) is list and len(value) == len(children) and all(v is c for v, c in zip(value, children)):
            return "[" + ", ".join(self._child(c, i) for i, c in enumerate(children)) + "]"
        position = next((i for i, c in enumerate(children) if c is value), None)
        return self.expr(value, hint) if position is None else self._child(value, position)

    def _child(self, child: Any, index: int) -> str:
        self._path.append(f"[{index}]")
        try:
            return self.expr(child, "step")
        finally:
            self._path.pop()

    def _same_op(self, op: tuple[Any, ...]) -> str:
        if op[0] == "attr":
            return f".{op[1]}"
        if op[0] == "call":
            args = [self.expr(a, "arg") for a in op[1]] + [f"{k}={self.expr(v, 'arg')}" for k, v in op[2].items()]
            return f"({', '.join(args)})"
        key = op[1]
        parts = key if isinstance(key, tuple) else (key,)
        texts = []
        for part in parts:
            if isinstance(part, slice):
                bits = ["" if v is None else self.expr(v, "index") for v in (part.start, part.stop)]
                text = ":".join(bits) + (f":{self.expr(part.step, 'index')}" if part.step is not None else "")
                texts.append(text)
            else:
                texts.append(self.expr(part, "index"))
        if isinstance(key, tuple) and len(key) == 1:
            return f"[{texts[0]},]"
        return f"[{', '.join(texts)}]" if texts else "[()]"

    # --- definitions ------------------------------------------------------------------------------------

    def _define(self, obj: Any, name: str) -> None:
        key = self._key(obj)
        self._busy.add(key)
        start = len(self.statements)
        try:
            with self._measure(key):
                self._define_inner(obj, name)
        finally:
            self._busy.discard(key)
        if not isinstance(obj, (types.FunctionType, type, types.ModuleType)) and start < len(self.statements):
            comment = self._value_comment(obj, name)
            if comment:
                at = next((i for i in range(len(self.statements) - 1, start - 1, -1)
                           if self.statements[i].startswith(f"{name} = ")), start)
                self.statements[at] = comment + self.statements[at]
        self._done.add(key)
        for alias in self._aliases.pop(key, []):
            self.statements.append(f"{alias} = {name}")

    def _define_inner(self, obj: Any, name: str) -> None:
        torch = self._torch
        from ..transform import ModuleProxy

        if isinstance(obj, types.ModuleType):
            return self._define_module(obj, name)
        if isinstance(obj, ModuleProxy):
            self.statements.append(f"{name} = _wb.transform({self.expr(obj._module, obj._module.__name__.split('.')[-1])})")
            return None
        if isinstance(obj, type) and "_wb_base" in vars(obj) and _is_wrapped(obj):
            base = obj._wb_base
            self.statements.append(f"{name} = _wb.transform({self.expr(base, base.__name__)})")
            return None
        where = self._import_path(obj)
        inner = getattr(obj, "__wrapped__", None)
        if where is None and isinstance(inner, types.FunctionType) and not isinstance(obj, type) \
                and inner.__globals__.get(inner.__name__) is obj:
            return self._define_decorated(obj, inner, name)
        if where is not None:
            return self._define_import(obj, name, *where)
        if isinstance(obj, types.FunctionType):
            return self._define_function(obj, name)
        if isinstance(obj, type):
            return self._define_class(obj, name)
        if isinstance(obj, torch.Tensor):
            self.statements.append(f"{name} = {self._tensor_expr(obj, name, 'tensors')}")
            return None
        if _is_numpy_array(obj):
            self.statements.append(f"{name} = {self._array_expr(obj, name)}")
            return None
        if _is_pandas(obj):
            self.statements.append(f"{name} = {self._frame_expr(obj, name)}")
            return None
        if type(obj) in (list, tuple, dict, set, frozenset):
            self.statements.append(f"{name} = {self._container_expr(obj, name, defining=True)}")
            return None
        if isinstance(obj, torch.nn.Module):
            return self._define_layer(obj, name)
        if isinstance(obj, (types.BuiltinFunctionType, types.MethodType, functools.partial, enum.Enum,
                            types.MethodDescriptorType, slice, range, torch.dtype, torch.device, re.Pattern)) \
                or _is_numpy_scalar(obj):
            self.statements.append(f"{name} = {self.expr_uncached(obj, name)}")
            return None
        from ..pipeline import Transform

        if isinstance(obj, Transform):
            text = self._transform_expr(obj, name)
            if text is not None:
                self.statements.append(f"{name} = {text}")
                return None
        return self._define_instance(obj, name)

    def expr_uncached(self, obj: Any, hint: str) -> str:
        key = self._key(obj)
        saved = self._primary.pop(key, None)
        try:
            return self.expr(obj, hint)
        finally:
            if saved is not None:
                self._primary[key] = saved

    def _value_comment(self, obj: Any, name: str) -> str:
        """``# global X of module M, value at save time`` for values bound because code uses them."""
        found = self._global_of.get(self._key(obj))
        if found is None:
            return ""
        gname, module, origin = found
        if gname != name and self._key(obj)[0] == "literal":
            gname = name
        self.definitions.append(_Definition(name, "value", gname, module,
                                            {"kind": "global", "module": module, "name": gname, **origin}, None))
        return f"# global {gname} of {module} ({type(obj).__name__}), value at save time\n"

    # --- what is stored, by size (the capture report) ----------------------------------------------------

    @contextlib.contextmanager
    def _measure(self, key: Any) -> Iterator[None]:
        """Add the bytes collected while the block runs to ``key``'s size (nested definitions included)."""
        weights, data = self._tally()
        try:
            yield
        finally:
            after = self._tally()
            size = self._sizes.setdefault(key, [0, 0])
            size[0] += after[0] - weights
            size[1] += after[1] - data

    def _note_reader(self, key: Any, value: Any, gname: str, owner: Any,
                     attributes: list[str] | None = None) -> None:
        """Record that ``owner`` (a function or class) reads global ``gname`` for the report."""
        if isinstance(value, (types.FunctionType, type, types.ModuleType, types.BuiltinFunctionType)):
            return  # definitions, listed by %wb_deps, not data
        entry = self._readers.get(key)
        if entry is None:
            entry = self._readers[key] = {"name": gname, "type": type(value).__name__, "readers": [],
                                          "attributes": attributes}
        step = next((p for p in reversed(self._path) if isinstance(p, _Step)), None)
        kind = "class" if isinstance(owner, type) else "function"
        reader = f"{kind} {getattr(owner, '__qualname__', '?').rpartition('<locals>.')[2]}"
        if step is not None:
            reader = f"step {str(step)!r} ({reader})"
        if reader not in entry["readers"]:
            entry["readers"].append(reader)

    def report(self) -> CaptureReport:
        """Every global value captured, with its size and readers, largest first."""
        entries = []
        for key, info in self._readers.items():
            weights, data = self._sizes.get(key, (0, 0))
            attributes = sorted(self._views[key]["attrs"]) if key in self._views else None
            entries.append(GlobalEntry(info["name"], info["type"], data, weights, list(info["readers"]), attributes))
        entries.sort(key=lambda e: (-e.size, e.name))
        return CaptureReport(entries)

    def narrowed_whole(self) -> set[int]:
        """Ids of objects stored both as attribute views and whole (the save is then redone storing them whole)."""
        return {key[1] for key in self._views if ("id", key[1]) in self._done}

    # --- only the attributes the code reads ------------------------------------------------------------

    def _narrow(self, value: Any, gname: str, attrs: set[str], owner: Any) -> str | None:
        """Bind ``gname`` to a namespace holding only ``attrs`` of ``value``; None when that is not exact.

        Exact when every attribute is plain data of the object: an entry of its instance ``__dict__``
        that no data descriptor of its class shadows, or (for dict subclasses such as scikit-learn's
        ``Bunch``) a key that attribute access returns as is. Reading such an attribute has no side
        effect and gives the stored value, so a namespace with the same attributes computes the same.
        """
        values = self._plain_attributes(value, attrs)
        if values is None:
            return None
        key = ("view", id(value))
        view = self._views.get(key)
        if view is None:
            name = self._fresh(gname)
            self._names[name] = key
            self._keep.append(value)
            module = self._global_of.get(self._key(value), (gname, "?", {}))[1]
            self.statements.append(f"# global {gname} of {module} ({type(value).__name__}): only the attributes "
                                   f"the code reads, values at save time\n"
                                   f"{name} = {self.need(types, 'types')}.SimpleNamespace()")
            view = self._views[key] = {"name": name, "attrs": set()}
            self.definitions.append(_Definition(name, "value", gname, module,
                                                {"kind": "global", "module": module, "name": gname,
                                                 "type": type(value).__name__}, None))
        with self._measure(key):
            for attr in sorted(attrs - view["attrs"]):
                view["attrs"].add(attr)
                self._path.append(f"attribute {attr!r}")
                try:
                    self.statements.append(f"{view['name']}.{attr} = {self.expr(values[attr], attr)}")
                finally:
                    self._path.pop()
        self._note_reader(key, value, gname, owner)
        return view["name"]

    def _plain_attributes(self, value: Any, attrs: set[str]) -> dict[str, Any] | None:
        from ..pipeline import Transform

        torch = self._torch
        cls = type(value)
        if id(value) in self._whole or not attrs or _literal_key(value) is not None \
                or cls in (list, tuple, dict, set, frozenset) \
                or isinstance(value, (types.ModuleType, type, types.FunctionType, types.MethodType, Transform,
                                      torch.nn.Module, torch.Tensor, enum.Enum, re.Pattern)) \
                or _is_numpy_array(value) or _is_pandas(value) or _is_numpy_scalar(value) \
                or cls.__getattribute__ not in (object.__getattribute__, dict.__getattribute__):
            return None
        state = getattr(value, "__dict__", None)
        out = {}
        for attr in attrs:
            on_class = _class_lookup(cls, attr)
            if isinstance(state, dict) and attr in state:
                if on_class is not None and (hasattr(type(on_class), "__set__") or hasattr(type(on_class), "__delete__")):
                    return None
                out[attr] = state[attr]
            elif isinstance(value, dict) and on_class is None and attr in value \
                    and "__getattr__" in dir(cls) and _safe_getattr(value, attr) is value[attr]:
                out[attr] = value[attr]
            else:
                return None
        return out

    # --- imports -------------------------------------------------------------------------------------------

    def _define_module(self, module: types.ModuleType, name: str) -> None:
        modname = module.__name__
        if not is_installed_module(modname):
            self.statements.append(f"{name} = _bundle.namespace({modname!r})")
            self._namespaces[id(module)] = {"name": name, "attrs": set()}
            self.definitions.append(_Definition(name, "namespace", modname, modname,
                                                {"kind": "module", "module": modname}, None))
            return
        self.imported_modules.add(modname.split(".")[0])
        self.imports.append(f"import {modname}" + (f" as {name}" if name != modname else ""))

    def _import_path(self, obj: Any) -> tuple[str, str] | None:
        """``(module, qualname)`` when ``obj`` is importable from an installed module under that path."""
        if not isinstance(obj, (type, types.FunctionType, types.BuiltinFunctionType)) and \
                not callable(obj):
            return None
        if isinstance(obj, type) and "_wb_base" in vars(obj):
            return None
        module_name = getattr(obj, "__module__", None)
        if not isinstance(module_name, str) or not is_installed_module(module_name):
            return None
        module = sys.modules.get(module_name)
        if module is None:
            return None
        candidates = []
        qualname = getattr(obj, "__qualname__", None)
        if isinstance(qualname, str) and "<" not in qualname:
            candidates.append(qualname)
        simple = getattr(obj, "__name__", None)
        if isinstance(simple, str) and simple not in candidates:
            candidates.append(simple)
        parts = module_name.split(".")
        for depth in range(1, len(parts) + 1):
            prefix = ".".join(parts[:depth])
            prefix_module = sys.modules.get(prefix)
            if prefix_module is None:
                continue
            for qual in candidates:
                found: Any = prefix_module
                for part in qual.split("."):
                    found = getattr(found, part, _MISSING)
                    if found is _MISSING:
                        break
                if found is obj:
                    return prefix, qual
        return None

    def _define_import(self, obj: Any, name: str, module: str, qualname: str) -> None:
        self.imported_modules.add(module.split(".")[0])
        if module == "builtins":
            self.statements.append(f"{name} = {qualname}")
            return
        head, _, rest = qualname.partition(".")
        if rest:
            holder = self.need(sys.modules[module], module.split(".")[-1])
            self.statements.append(f"{name} = {holder}.{qualname}")
            return
        self.imports.append(f"from {module} import {head}" + (f" as {name}" if name != head else ""))

    # --- errors ------------------------------------------------------------------------------------------------------

    def _fail(self, obj: Any, problem: str) -> None:
        label = _label(obj)
        where = _where(obj)
        chain = " -> ".join(p for p in self._path if p)
        message = f"cannot save {label}{where}: {problem}"
        if chain:
            message += f"\n  reached from: {chain}"
        raise CaptureError(message)


def _key_hint(key: Any, fallback: str) -> str:
    if isinstance(key, str) and key.strip("_").isidentifier():
        return key.strip("_")
    return fallback


def _numpy() -> Any:
    return sys.modules["numpy"]


def _is_numpy_array(obj: Any) -> bool:
    np = sys.modules.get("numpy")
    return np is not None and type(obj) is np.ndarray


def _is_numpy_scalar(obj: Any) -> bool:
    np = sys.modules.get("numpy")
    return np is not None and isinstance(obj, np.generic) and not isinstance(obj, np.object_)


def _is_pandas(obj: Any) -> bool:
    pd = sys.modules.get("pandas")
    return pd is not None and type(obj) in (pd.DataFrame, pd.Series)


def _stable(items: Iterable[Any]) -> list[Any]:
    values = list(items)
    try:
        return sorted(values)
    except TypeError:
        return values


def _repr_or_empty(obj: Any) -> str:
    try:
        return repr(obj)
    except Exception:
        return ""


def _safe_getattr(obj: Any, name: str) -> Any:
    try:
        return getattr(obj, name)
    except Exception:
        return _MISSING


def _class_lookup(cls: type, name: str) -> Any:
    for klass in cls.__mro__:
        if name in vars(klass):
            return vars(klass)[name]
    return None


