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

The walk is the only job of :class:`Capture`; it hands the rest to parts with one job each:
:class:`~workbench.bundle.naming.Names` (which name each object gets),
:class:`~workbench.bundle.storage.DataFiles` (what is stored by value as files),
:class:`~workbench.bundle.records.Records` (the statements of the source, in order, rendered once
by :func:`workbench.bundle.emit.render`) and :class:`~workbench.bundle.report.Ledger` (what each
global value adds, and who reads it). How each kind of object is written lives beside it:
:mod:`.definitions` (copied functions and classes), :mod:`.objects` (tensors, data, instances) and
:mod:`.layers` (torch layers).

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
import enum
import functools
import os
import re
import sys
import types
from typing import Any, Iterable

from .attributes import class_lookup, plain_attributes
from .codetext import strict_equal as _strict_equal
from .definitions import DefinitionsMixin, _function_of, _label, _where
from .errors import CaptureError
from .installed import import_path, is_installed_module
from .layers import LayersMixin
from .naming import Names, object_key, scalar_text as _scalar_text
from .objects import ObjectsMixin, _is_wrapped
from .records import Records
from .report import CaptureReport, Ledger
from .storage import DataFiles, is_array, is_frame, is_numpy_scalar

__all__ = ["Capture"]

_LARGE_LITERAL = 20_000  # characters of repr above which a container is stored as a JSON file


# --- small helpers ------------------------------------------------------------------------------------


class _Step(str):
    """A pipeline step's title in the capture path (the report names the step that reads a global)."""


def _is_literal(obj: Any) -> bool:
    """Whether ``obj`` is an immutable scalar, written as a literal wherever it is used."""
    return object_key(obj)[0] == "literal"


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
    """Walks a pipeline and records the statements, tensors and data files that rebuild it.

    The work is shared among parts with one job each: :attr:`names` (which name each object gets,
    :class:`~workbench.bundle.naming.Names`), :attr:`data` (what is stored by value as files,
    :class:`~workbench.bundle.storage.DataFiles`), :attr:`records` (the statements of the source, in
    order, :class:`~workbench.bundle.records.Records`) and :attr:`ledger` (sizes, readers and origins
    of the global values, for the capture report, :class:`~workbench.bundle.report.Ledger`). The
    capture itself keeps only where its walk is; :meth:`source` renders the records once.
    """

    def __init__(self, whole: Iterable[int] = ()) -> None:
        """``whole``: ids of objects to store whole even where the code reads only some attributes."""
        import torch

        self._torch = torch
        self._torch_internal = frozenset(torch.nn.Module().__dict__)  # attributes every layer has
        self._whole = frozenset(whole)
        home = os.path.expanduser("~")
        self.names = Names()
        self.data = DataFiles()
        self.records = Records()
        self.ledger = Ledger(self._totals, home.rstrip(os.sep) + os.sep if home not in ("", "/", "~") else None)
        # where the walk is
        self._done: set[Any] = set()      # keys of objects whose statements are recorded
        self._busy: set[Any] = set()      # keys of objects being defined (a reference back is a cycle)
        self._pending: list[Any] = []     # (object, path): named for call time, defined once the current one is done
        self._path: list[str] = []        # how the pipeline reaches the current object (for errors and the report)
        self._cells: dict[int, Any] = {}  # id(closure cell) -> the first function seen holding it
        self._namespaces: dict[int, dict[str, Any]] = {}  # id(local module) -> {"name", "attrs"} of its namespace
        self._views: dict[Any, dict[str, Any]] = {}       # ("view", id) -> {"name", "attrs"} of its namespace
        self._hooked_layers: list[tuple[Any, str, list[str]]] = []  # hooks are registered once all layers exist
        for name in dir(builtins):
            if not name.startswith("__"):
                key = self.names.key(getattr(builtins, name))
                self.names.bind(name, key, primary=key[0] == "id")
                if key[0] == "id":
                    self._done.add(key)
        for reserved in ("_wb", "_bundle", "pipeline"):
            self.names.bind(reserved, ("reserved", reserved))

    # --- entry points ------------------------------------------------------------------------------

    def capture(self, pipeline: Any) -> None:
        """Capture ``pipeline``; the source then ends with ``pipeline = ...``."""
        self._path = ["pipeline"]
        text = self.expr(pipeline, "pipeline_step")
        self._drain()
        while self._hooked_layers:
            self._register_hooks()
            self._drain()
        self.records.add(f"pipeline = {text}")

    def source(self) -> str:
        """The bundle source (see :func:`workbench.bundle.emit.render`)."""
        from .emit import render

        return render(self.records)

    def report(self) -> CaptureReport:
        """Every global value captured, with its size and readers, largest first."""
        return self.ledger.report({key: view["attrs"] for key, view in self._views.items()})

    def narrowed_whole(self) -> set[int]:
        """Ids of objects stored both as attribute views and whole (the save is then redone storing them whole)."""
        return {key[1] for key in self._views if ("id", key[1]) in self._done}

    def _totals(self) -> tuple[int, int]:
        """Bytes collected so far: ``(weights, data)``, data including the source text of the statements."""
        weights, data = self.data.totals()
        return weights, data + self.records.size

    # --- naming --------------------------------------------------------------------------------------

    def _key(self, obj: Any) -> Any:
        return self.names.key(obj)

    def _claim(self, obj: Any, preferred: str) -> tuple[str, bool]:
        """The bundle name for ``obj``, preferring ``preferred``; True when it is new."""
        name, how = self.names.claim(obj, preferred)
        if how == "alias":  # another name for an object already named: bound to the first one once it exists
            key = self._key(obj)
            if key in self._done:
                self.records.add(f"{name} = {self.names.primary(key)}")
            else:
                self.names.defer_alias(key, name)
        return name, how == "new"

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
        if _is_literal(obj):
            return self.need(obj, name)
        bundle_name, new = self._claim(obj, name)
        key = self._key(obj)
        if key not in self._done and key not in self._busy:
            self._pending.append((obj, list(self._path)))
        return bundle_name

    def need(self, obj: Any, name: str) -> str:
        """A name bound to ``obj`` before the next statement runs."""
        if _is_literal(obj):
            bundle_name, new = self._claim(obj, name)
            if new:
                with self.ledger.measure(("literal-name", bundle_name)):
                    self.records.add(self._value_comment(obj, bundle_name)
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
        self._define(obj, self.names.primary(key))
        return bundle_name

    def _literal_text(self, obj: Any, hint: str) -> str:
        """A literal, or for a very long string, a read of the JSON file it is stored in."""
        if isinstance(obj, str):
            self.ledger.note_text(obj, " -> ".join(p for p in self._path if p))
        if isinstance(obj, str) and len(obj) > _LARGE_LITERAL:
            return f"_bundle.json({self.data.add_json(hint, obj)!r})"
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
                self._define(obj, self.names.primary(key))
            finally:
                self._path = saved

    # --- expressions -----------------------------------------------------------------------------------

    def expr(self, obj: Any, hint: str) -> str:
        """A Python expression that evaluates to (a faithful copy of) ``obj`` at this point of the source."""
        torch = self._torch
        if _is_literal(obj):
            return self._literal_text(obj, hint)
        if obj is Ellipsis:
            return "..."
        if obj is NotImplemented:
            return "NotImplemented"
        key = self._key(obj)
        # a mutable container that already has a name (a global another step reads) is shared, not copied
        named = self.names.primary(key)
        if named is not None and (key in self._done or key in self._busy or type(obj) in (list, dict, set)):
            return self.need(obj, named)
        if isinstance(obj, torch.Tensor) and self.data.stored(obj) is not None:
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
            if _function_of(class_lookup(cls, func.__name__)) is func or \
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
        if is_numpy_scalar(obj):
            if obj.dtype.kind in "biufc" and obj.dtype.itemsize <= 8 * (1 + (obj.dtype.kind == "c")):
                return f"{self.expr(type(obj), 'numpy_type')}({_scalar_text(obj.item())})"
            # datetime64, longdouble, strings...: their Python value is not exact; a 0-d array is
            return f"{self._array_expr(sys.modules['numpy'].asarray(obj), hint)}[()]"
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
            return f"_bundle.json({self.data.add_json(hint, obj)!r})"
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
        start = self.records.mark()
        try:
            with self.ledger.measure(key):
                self._define_inner(obj, name)
        finally:
            self._busy.discard(key)
        if not isinstance(obj, (types.FunctionType, type, types.ModuleType)) and start < self.records.mark():
            comment = self._value_comment(obj, name)
            if comment:
                self.records.note(name, start, comment)
        self._done.add(key)
        for alias in self.names.deferred_aliases(key):
            self.records.add(f"{alias} = {name}")

    def _define_inner(self, obj: Any, name: str) -> None:
        torch = self._torch
        from ..transform import ModuleProxy

        if isinstance(obj, types.ModuleType):
            return self._define_module(obj, name)
        if isinstance(obj, ModuleProxy):
            self.records.add(f"{name} = _wb.transform({self.expr(obj._module, obj._module.__name__.split('.')[-1])})")
            return None
        if isinstance(obj, type) and "_wb_base" in vars(obj) and _is_wrapped(obj):
            base = obj._wb_base
            self.records.add(f"{name} = _wb.transform({self.expr(base, base.__name__)})")
            return None
        where = import_path(obj)
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
            self.records.add(f"{name} = {self._tensor_expr(obj, name, 'tensors')}")
            return None
        if is_array(obj):
            self.records.add(f"{name} = {self._array_expr(obj, name)}")
            return None
        if is_frame(obj):
            self.records.add(f"{name} = {self._frame_expr(obj, name)}")
            return None
        if type(obj) in (list, tuple, dict, set, frozenset):
            self.records.add(f"{name} = {self._container_expr(obj, name, defining=True)}")
            return None
        if isinstance(obj, torch.nn.Module):
            return self._define_layer(obj, name)
        if isinstance(obj, (types.BuiltinFunctionType, types.MethodType, functools.partial, enum.Enum,
                            types.MethodDescriptorType, slice, range, torch.dtype, torch.device, re.Pattern)) \
                or is_numpy_scalar(obj):
            self.records.add(f"{name} = {self.expr_uncached(obj, name)}")
            return None
        from ..pipeline import Transform

        if isinstance(obj, Transform):
            text = self._transform_expr(obj, name)
            if text is not None:
                self.records.add(f"{name} = {text}")
                return None
        return self._define_instance(obj, name)

    def expr_uncached(self, obj: Any, hint: str) -> str:
        with self.names.unnamed(self._key(obj)):
            return self.expr(obj, hint)

    def _value_comment(self, obj: Any, name: str) -> str:
        """``# global X of module M, value at save time`` for values bound because code uses them."""
        found = self.ledger.origin(self._key(obj))
        if found is None:
            return ""
        gname, module, origin = found
        if gname != name and self._key(obj)[0] == "literal":
            gname = name
        origin = {"kind": "global", "module": module, "name": gname, **origin}
        self.records.define(name, "value", gname, module, origin, None)
        return f"# global {gname} of {module} ({type(obj).__name__}), value at save time\n"

    # --- what is stored, and who reads it (the capture report) ----------------------------------------

    def _note_reader(self, key: Any, value: Any, gname: str, owner: Any) -> None:
        """Record that ``owner`` (a function or class) reads global ``gname``, and in which pipeline step."""
        step = next((p for p in reversed(self._path) if isinstance(p, _Step)), None)
        self.ledger.note_reader(key, value, gname, owner, None if step is None else f"step {str(step)!r}")

    # --- only the attributes the code reads ------------------------------------------------------------

    def _narrow(self, value: Any, gname: str, attrs: set[str], owner: Any) -> str | None:
        """Bind ``gname`` to a namespace holding only ``attrs`` of ``value``; None when that is not exact.

        Exact when every attribute is plain data of the object: an entry of its instance ``__dict__``
        that no data descriptor of its class shadows, or (for dict subclasses such as scikit-learn's
        ``Bunch``) a key that attribute access returns as is. Reading such an attribute has no side
        effect and gives the stored value, so a namespace with the same attributes computes the same.
        """
        values = None if id(value) in self._whole else plain_attributes(value, attrs)
        if values is None:
            return None
        key = ("view", id(value))
        view = self._views.get(key)
        if view is None:
            name = self.names.take(gname, key)
            self.names.keep(value)
            module = (self.ledger.origin(self._key(value)) or (gname, "?", {}))[1]
            self.records.add(f"# global {gname} of {module} ({type(value).__name__}): only the attributes "
                             f"the code reads, values at save time\n"
                             f"{name} = {self.need(types, 'types')}.SimpleNamespace()")
            view = self._views[key] = {"name": name, "attrs": set()}
            self.records.define(name, "value", gname, module,
                                {"kind": "global", "module": module, "name": gname, "type": type(value).__name__}, None)
        with self.ledger.measure(key):
            for attr in sorted(attrs - view["attrs"]):
                view["attrs"].add(attr)
                self._path.append(f"attribute {attr!r}")
                try:
                    self.records.add(f"{view['name']}.{attr} = {self.expr(values[attr], attr)}")
                finally:
                    self._path.pop()
        self._note_reader(key, value, gname, owner)
        return view["name"]

    # --- imports -------------------------------------------------------------------------------------------

    def _define_module(self, module: types.ModuleType, name: str) -> None:
        modname = module.__name__
        if not is_installed_module(modname):
            self.records.add(f"{name} = _bundle.namespace({modname!r})")
            self._namespaces[id(module)] = {"name": name, "attrs": set()}
            self.records.define(name, "namespace", modname, modname, {"kind": "module", "module": modname}, None)
            return
        self.records.add_import(f"import {modname}" + (f" as {name}" if name != modname else ""),
                                modname.split(".")[0])

    def _define_import(self, obj: Any, name: str, module: str, qualname: str) -> None:
        top = module.split(".")[0]
        if module == "builtins":
            self.records.imported_modules.add(top)
            self.records.add(f"{name} = {qualname}")
            return
        head, _, rest = qualname.partition(".")
        if rest:
            self.records.imported_modules.add(top)
            holder = self.need(sys.modules[module], module.split(".")[-1])
            self.records.add(f"{name} = {holder}.{qualname}")
            return
        self.records.add_import(f"from {module} import {head}" + (f" as {name}" if name != head else ""), top)

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
