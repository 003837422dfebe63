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
- torch layers become their class, their non-parameter attributes and their tensors (weights);
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

import ast
import builtins
import collections
import copyreg
import dataclasses
import enum
import functools
import keyword
import math
import os
import re
import sys
import types
from typing import Any, Iterable

from .errors import CaptureError
from .codetext import same_code as _same_code, codes as _codes, qualname_of as _qualname_of, first_line as _first_line, is_top_level as _is_top_level, span_text as _span_text, pos as _pos, literal_equal as _literal_equal, strict_equal as _strict_equal, module_imports as _module_imports, indent as _indent
from .installed import is_installed_module
from .scope import global_names
from .source import Source, describe_origin, source_for_class, source_for_code

__all__ = ["Capture", "is_installed_module"]

_LARGE_LITERAL = 20_000  # characters of repr above which a container is stored as a JSON file
_MISSING = object()


# --- which modules are imported rather than copied ---------------------------------------------------

# --- small helpers ------------------------------------------------------------------------------------


def _literal_key(obj: Any) -> tuple[str, str] | None:
    """A hashable key for immutable scalars (their identity does not matter), else None."""
    if obj is None or isinstance(obj, (bool, int, float, complex, str, bytes)) and type(obj) in (
            bool, int, float, complex, str, bytes):
        return ("literal", type(obj).__name__ + ":" + _scalar_text(obj))
    return None


def _scalar_text(obj: Any) -> str:
    if isinstance(obj, float):
        if math.isnan(obj):
            return "float('nan')"
        if math.isinf(obj):
            return "float('inf')" if obj > 0 else "float('-inf')"
        return repr(obj)
    if isinstance(obj, complex):
        return f"complex({_scalar_text(obj.real)}, {_scalar_text(obj.imag)})"
    return repr(obj)


def _function_of(value: Any) -> Any:
    if isinstance(value, (staticmethod, classmethod)):
        value = value.__func__
    elif isinstance(value, property):
        value = value.fget
    return value if isinstance(value, types.FunctionType) else None


def _json_exact(value: Any) -> bool:
    """Whether ``value`` survives a JSON round trip unchanged (types included)."""
    import json

    try:
        back = json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError):
        return False
    return _strict_equal(back, value)


@dataclasses.dataclass
class _Definition:
    name: str
    kind: str
    qualname: str
    module: str
    origin: dict[str, Any] | None
    line: int | None

    def as_json(self) -> dict[str, Any]:
        out = {"name": self.name, "kind": self.kind, "qualname": self.qualname, "module": self.module}
        if self.origin is not None:
            out["origin"] = dict(self.origin)
            if self.line is not None:
                out["origin"]["line"] = self.line
        return out


# --- the capture ---------------------------------------------------------------------------------------


class Capture:
    """Collects the source statements, tensors and data files that rebuild one pipeline."""

    def __init__(self) -> None:
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
        self.imported_modules: set[str] = set()
        self._names: dict[str, Any] = {}       # bundle name -> object key
        self._primary: dict[Any, str] = {}     # object key -> bundle name
        self._done: set[Any] = set()
        self._busy: set[Any] = set()
        self._pending: list[Any] = []
        self._aliases: dict[Any, list[str]] = {}
        self._keep: list[Any] = []
        self._tensor_keys: dict[int, tuple[str, str]] = {}  # id -> (store, key)
        self._storage_ptrs: set[int] = set()
        self._artifact_names: set[str] = set()
        self._cells: dict[int, str] = {}
        self._namespaces: dict[int, dict[str, Any]] = {}
        self._path: list[str] = []
        self._global_of: dict[Any, tuple[str, str, dict[str, Any]]] = {}
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
        if key in self._primary and (key in self._done or key in self._busy):
            return self.need(obj, self._primary[key])
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
        if _is_numpy_scalar(obj):
            return f"{self.expr(type(obj), 'numpy_type')}({_scalar_text(obj.item())})"
        return self.need(obj, self._hint(obj, hint))

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
        from .. import pipeline as P
        from ..same import Same
        from ..transform import FunctionTransform

        kind = type(t)
        text: str | None = None
        self._path.append(t._wb_title())
        try:
            if t is P.batch or t is P.unbatch or t is P.identity:
                return f"_wb.{t._wb_kind()}"
            if kind is P.Identity:
                text = "_wb.identity"
            elif kind in (P.Compose, P.Rollout, P.Parallel):
                children = ", ".join(self._child(c, i) for i, c in enumerate(t._children))
                text = f"_wb.{kind.__name__}([{children}])"
            elif kind is P.Map:
                text = f"_wb.Map({self._child(t._children[0], 0)})"
            elif kind in (P.IfTrain, P.IfEval, P.IfInfer):
                text = f"_wb.{kind.__name__}({self._child(t._children[0], 0)}, {self._child(t._children[1], 1)})"
            elif kind is P.Try:
                parts = [self._child(c, i) for i, c in enumerate(t._children)]
                exc = self.expr(t.exceptions, "exceptions")
                text = f"_wb.Try({parts[0]}, {parts[1]}, {exc}, else_={parts[2]}, finally_={parts[3]})"
            elif kind is FunctionTransform:
                fn = t.fn
                text = f"_wb.FunctionTransform({self.expr(fn, self._hint(fn, hint))})"
            elif kind is Same:
                text = "_wb.same" + "".join(self._same_op(op) for op in t._wb_ops)
            if text is None:
                return None
            if t._wb_name is not None:
                text = f"({text} - {t._wb_name!r})"
            return text
        finally:
            self._path.pop()

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
                            types.MethodDescriptorType, slice, range, torch.dtype, torch.device)) \
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

    # --- functions -------------------------------------------------------------------------------------------

    def _locate_function(self, fn: types.FunctionType) -> tuple[Source, ast.AST]:
        code = fn.__code__
        source = source_for_code(code)
        where = f"{code.co_filename}:{code.co_firstlineno}"
        if source is None:
            self._fail(fn, f"its source is not available (defined at {where})")
        try:
            tree = source.tree
        except SyntaxError as exc:
            self._fail(fn, f"its source at {where} does not parse: {exc}")
        is_lambda = code.co_name == "<lambda>"
        candidates = []
        for node in ast.walk(tree):
            if is_lambda and isinstance(node, ast.Lambda) and node.lineno == code.co_firstlineno:
                candidates.append(node)
            elif not is_lambda and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) \
                    and node.name == code.co_name and _first_line(node) == code.co_firstlineno:
                candidates.append(node)
        for node in candidates:
            if self._verify_function(source, node, code):
                return source, node
        origin = describe_origin(source.origin, code.co_firstlineno)
        if candidates:
            self._fail(fn, f"its source at {origin} no longer matches the live function "
                           "(the file or cell was edited after the function was defined); re-run it")
        self._fail(fn, f"its definition was not found at {origin}")
        raise AssertionError  # unreachable

    def _verify_function(self, source: Source, node: ast.AST, code: types.CodeType) -> bool:
        text = _module_imports(source) + self._function_text(source, node, {}, code.co_freevars, for_check=True)
        try:
            compiled = compile(text, "<check>", "exec", dont_inherit=True)
        except SyntaxError:
            return False
        return any(c.co_name == code.co_name and _same_code(c, code) for c in _codes(compiled))

    def _function_text(self, source: Source, node: ast.AST, replacements: dict[ast.AST, str],
                       freevars: tuple[str, ...], for_check: bool = False) -> str:
        """The definition's text (decorators dropped), with replacements; wrapped for checking."""
        reps = [(*_pos(n), new) for n, new in replacements.items()]
        if isinstance(node, ast.Lambda):
            start, end = _pos(node)
            body = "(" + _span_text(source.text, start, end, reps) + ")"
            if for_check:
                return f"def _wb_factory({', '.join(freevars)}):\n    return {body}\n"
            return body
        end_line = node.end_lineno  # type: ignore[attr-defined]
        line_text = source.text.splitlines()[end_line - 1]
        body = _span_text(source.text, (node.lineno, 0), (end_line, len(line_text.encode("utf-8"))), reps)
        if for_check and (freevars or not _is_top_level(node)):
            return f"def _wb_factory({', '.join(freevars)}):\n{body}\n"
        return body

    def _define_function(self, fn: types.FunctionType, name: str) -> None:
        code = fn.__code__
        self._path.append(f"function {fn.__qualname__}{_where(fn)}")
        try:
            source, node = self._locate_function(fn)
            line = _first_line(node) if not isinstance(node, ast.Lambda) else node.lineno
            origin_text = describe_origin(source.origin, line)
            freevars = code.co_freevars
            replacements: dict[ast.AST, str] = {}
            # Defaults are evaluated when the def runs: keep literal ones, replace the rest by their live values.
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                self._default_replacements(fn, node, replacements)
            skip = set()
            for dec in getattr(node, "decorator_list", []):  # decorators are dropped: the bundle holds the raw function
                skip.update(id(n) for n in ast.walk(dec))
            for replaced in replacements:
                skip.update(id(n) for n in ast.walk(replaced))
            self._global_replacements(fn, node, freevars, fn.__globals__, replacements, skip, origin_text)
            closure = {}
            if freevars:
                for var, cell in zip(freevars, fn.__closure__ or ()):
                    try:
                        value = cell.cell_contents
                    except ValueError:
                        self._fail(fn, f"its closure variable {var!r} is empty (defined at {origin_text})")
                    owner = self._cells.setdefault(id(cell), fn.__qualname__)
                    if owner != fn.__qualname__:
                        self._fail(fn, f"its closure variable {var!r} is shared with {owner}; a bundle cannot "
                                       f"keep them sharing it (defined at {origin_text})")
                    closure[var] = value
            text = self._function_text(source, node, replacements, freevars)
            is_lambda = isinstance(node, ast.Lambda)
            orig_name = code.co_name
            kind = "lambda" if is_lambda else "function"
            comment = f"# {kind} {fn.__qualname__} from {origin_text}"
            if is_lambda and not freevars:
                lines = [comment, f"{name} = {text}"]
                if fn.__qualname__ != "<lambda>":
                    lines.append(f"{name}.__qualname__ = {fn.__qualname__!r}")
            elif is_lambda or freevars or not _is_top_level(node):
                params = [v for v in freevars if not (closure.get(v) is fn and v == orig_name)]
                args = []
                for v in params:
                    self._path.append(f"closure variable {v!r}")
                    try:
                        args.append(self.expr(closure[v], v))
                    finally:
                        self._path.pop()
                factory = self._fresh(f"_make_{name.lstrip('_')}")
                self._names[factory] = ("factory", factory)
                if is_lambda:
                    block = f"def {factory}({', '.join(params)}):\n    return {text}\n"
                else:
                    indent = node.col_offset * " "  # type: ignore[attr-defined]
                    if indent:
                        block = f"def {factory}({', '.join(params)}):\n{text}\n{indent}return {orig_name}\n"
                    else:
                        block = f"def {factory}({', '.join(params)}):\n" + _indent(text) + f"\n    return {orig_name}\n"
                captured = ", ".join(f"{v}={a}" for v, a in zip(params, args))
                if captured:
                    comment += f"; closure captured by value: {captured}"
                lines = [comment, block.rstrip("\n"), f"{name} = {factory}({', '.join(args)})"]
                lines.append(f"{name}.__qualname__ = {fn.__qualname__!r}")
            else:
                if name != orig_name:
                    text = re.sub(rf"^(\s*(?:async\s+)?def\s+){re.escape(orig_name)}\b", rf"\g<1>{name}", text, count=1)
                lines = [comment, text.rstrip("\n")]
                if name != orig_name:
                    lines.append(f"{name}.__name__ = {orig_name!r}")
                    lines.append(f"{name}.__qualname__ = {fn.__qualname__!r}")
            extra = {k: v for k, v in vars(fn).items() if not k.startswith("__")}
            for attr, value in extra.items():
                lines.append(f"{name}.{attr} = {self.expr(value, attr)}")
            self.statements.append("\n".join(lines))
            self.definitions.append(_Definition(name, kind, fn.__qualname__, fn.__module__, source.origin, line))
        finally:
            self._path.pop()

    def _define_decorated(self, obj: Any, fn: types.FunctionType, name: str) -> None:
        """A decorated function (``@lru_cache``, ``@torch.no_grad()``...): its definition with the decorators.

        Used when the module-level name of the definition holds exactly this object, so running the
        decorated definition again gives the equivalent object.
        """
        self._path.append(f"function {fn.__qualname__}{_where(fn)}")
        try:
            source, node = self._locate_function(fn)
            origin_text = describe_origin(source.origin, _first_line(node))
            if fn.__code__.co_freevars or not _is_top_level(node) or not getattr(node, "decorator_list", None):
                self._fail(obj, f"it is a decorated function that is not defined at the top level ({origin_text})")
            replacements: dict[ast.AST, str] = {}
            self._default_replacements(fn, node, replacements)
            skip = {id(n) for r in replacements for n in ast.walk(r)}
            self._global_replacements(fn, node, (), fn.__globals__, replacements, skip, origin_text)
            reps = [(*_pos(n), new) for n, new in replacements.items()]
            decorators = "".join("@" + _span_text(source.text, *_pos(d), reps) + "\n" for d in node.decorator_list)
            text = decorators + self._function_text(source, node, replacements, ())
            if name != fn.__name__:
                text = re.sub(rf"^((?:@.*\n)*(?:async\s+)?def\s+){re.escape(fn.__name__)}\b", rf"\g<1>{name}", text,
                              count=1)
            self.statements.append(f"# decorated function {fn.__qualname__} from {origin_text}\n{text.rstrip()}")
            self.definitions.append(_Definition(name, "function", fn.__qualname__, fn.__module__, source.origin,
                                                _first_line(node)))
        finally:
            self._path.pop()

    def _default_replacements(self, fn: types.FunctionType, node: Any, replacements: dict[ast.AST, str]) -> None:
        args = node.args
        defaults = fn.__defaults__ or ()
        for default_node, value in zip(args.defaults[len(args.defaults) - len(defaults):], defaults):
            if not _literal_equal(default_node, value) and not self._same_global(fn, default_node, value):
                replacements[default_node] = self.expr(value, "default")
        kwdefaults = fn.__kwdefaults__ or {}
        for arg, default_node in zip(args.kwonlyargs, args.kw_defaults):
            if default_node is None or arg.arg not in kwdefaults:
                continue
            value = kwdefaults[arg.arg]
            if not _literal_equal(default_node, value) and not self._same_global(fn, default_node, value):
                replacements[default_node] = self.expr(value, "default")

    def _same_global(self, fn: Any, node: ast.AST, value: Any) -> bool:
        return isinstance(node, ast.Name) and fn.__globals__.get(node.id, _MISSING) is value

    def _global_replacements(self, owner: Any, node: ast.AST, freevars: Iterable[str], namespace: dict[str, Any],
                             replacements: dict[ast.AST, str], skip: set[int], origin_text: str) -> None:
        """Bind every global the definition uses to the value it sees now; rename where names clash."""
        uses = [(n, when) for n, when in global_names(node, exclude=freevars) if id(n) not in skip]
        resolved: dict[str, str] = {}
        order = sorted(uses, key=lambda u: u[1] != "def")  # definition-time uses first
        for name_node, when in order:
            gname = name_node.id
            if gname in resolved:
                if resolved[gname] != gname:
                    replacements[name_node] = resolved[gname]
                continue
            if gname in namespace:
                value = namespace[gname]
            elif hasattr(builtins, gname):
                value = getattr(builtins, gname)
            else:
                resolved[gname] = gname  # unbound in the live code too: it fails the same way
                if gname in self._names:
                    self._fail(owner, f"it uses the name {gname!r}, which is not defined where it was defined "
                                      f"({origin_text}) but is defined in the bundle")
                self._names[gname] = ("unbound", gname)
                continue
            self._path.append(f"global {gname!r}")
            module_name = namespace.get("__name__", "?")
            self._global_of.setdefault(self._key(value), (gname, module_name, _file_of(namespace)))
            try:
                if isinstance(value, types.ModuleType) and not is_installed_module(value.__name__):
                    bundle_name = self.need(value, gname)
                    self._namespace_attrs(value, bundle_name, name_node, owner)
                elif when == "def":
                    bundle_name = self.need(value, gname)
                else:
                    bundle_name = self.ref(value, gname)
            finally:
                self._path.pop()
            resolved[gname] = bundle_name
            if bundle_name != gname:
                replacements[name_node] = bundle_name
        # a local module used through several names: also collect attributes from every use
        for name_node, _ in uses:
            value = namespace.get(name_node.id, _MISSING)
            if isinstance(value, types.ModuleType) and not is_installed_module(value.__name__):
                self._namespace_attrs(value, resolved[name_node.id], name_node, owner)

    def _namespace_attrs(self, module: types.ModuleType, bundle_name: str, name_node: ast.AST, owner: Any) -> None:
        """Fill the namespace standing in for a local module with the attributes ``name_node`` reads."""
        parent = getattr(name_node, "_wb_parent", None)
        if isinstance(parent, ast.Attribute) and parent.value is name_node:
            attrs = [parent.attr]
            chain_node: Any = parent
        else:
            code = getattr(owner, "__code__", None)
            names = set()
            if code is not None:
                for c in _codes(code):
                    names.update(c.co_names)
            attrs = sorted(a for a in names if not a.startswith("__") and hasattr(module, a))
            chain_node = None
        info = self._namespaces.setdefault(id(module), {"name": bundle_name, "attrs": set()})
        for attr in attrs:
            if attr in info["attrs"]:
                value = getattr(module, attr)
                if chain_node is not None and isinstance(value, types.ModuleType) \
                        and not is_installed_module(value.__name__):
                    self._namespace_attrs(value, f"{bundle_name}.{attr}", chain_node, owner)
                continue
            if not hasattr(module, attr):
                continue
            info["attrs"].add(attr)
            value = getattr(module, attr)
            self._path.append(f"{module.__name__}.{attr}")
            try:
                if isinstance(value, types.ModuleType) and not is_installed_module(value.__name__):
                    sub = self.need(value, attr)
                    self.statements.append(f"{bundle_name}.{attr} = {sub}")
                    if chain_node is not None:
                        self._namespace_attrs(value, sub, chain_node, owner)
                else:
                    self.statements.append(f"{bundle_name}.{attr} = {self.expr(value, attr)}")
            finally:
                self._path.pop()

    # --- classes ----------------------------------------------------------------------------------------------

    def _locate_class(self, cls: type) -> tuple[Source, ast.ClassDef]:
        source = source_for_class(cls)
        if source is None:
            self._fail(cls, "its source is not available")
        tree = source.tree
        candidates = [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == cls.__name__
                      and _qualname_of(n) == cls.__qualname__]
        lines = []
        for value in vars(cls).values():
            fn = _function_of(value)
            # only methods compiled from this source (dataclass-generated ones come from elsewhere)
            if fn is not None and fn.__qualname__.startswith(cls.__qualname__ + ".") \
                    and fn.__code__.co_filename == source.filename:
                lines.append(fn.__code__.co_firstlineno)
        if lines:
            candidates = [n for n in candidates if all(_first_line(n) <= ln <= n.end_lineno for ln in lines)]
        from .. import tracking  # notebook tracking: the exact class statement, when it was traced

        body = tracking.class_body_code(cls)
        if body is not None and body.co_filename == source.filename:
            candidates = [n for n in candidates if _first_line(n) == body.co_firstlineno]
        if not candidates:
            reason = tracking.untracked_reason(cls)
            self._fail(cls, f"its definition was not found in {describe_origin(source.origin)}"
                            + (f"; {reason}" if reason else ""))
        return source, candidates[-1]

    def _define_class(self, cls: type, name: str) -> None:
        if issubclass(cls, tuple) and cls.__bases__ == (tuple,) and hasattr(cls, "_fields") \
                and hasattr(cls, "_make") and not self._has_class_statement(cls):
            return self._define_namedtuple(cls, name)
        self._path.append(f"class {cls.__qualname__} (module {cls.__module__})")
        try:
            source, node = self._locate_class(cls)
            line = _first_line(node)
            origin_text = describe_origin(source.origin, line)
            namespace = self._class_namespace(cls)
            replacements: dict[ast.AST, str] = {}
            # decorators that are `workbench.transform` are dropped: the bundle holds the original class
            from ..transform import transform as _transform

            kept = []
            for dec in node.decorator_list:
                target = dec.id if isinstance(dec, ast.Name) else None
                if target is not None and namespace.get(target) is _transform:
                    continue
                kept.append(dec)
            # methods compiled from this class statement (not e.g. dataclass-generated __repr__ wrappers)
            freevars = sorted({v for value in vars(cls).values() if (f := _function_of(value)) is not None
                               and f.__code__.co_filename == source.filename
                               for v in f.__code__.co_freevars} - {"__class__"})
            if freevars:
                self._fail(cls, f"it is defined inside a function and closes over {', '.join(freevars)} "
                                f"({origin_text}); define it at the top level")
            self._global_replacements(cls, node, (), namespace, replacements, set(), origin_text)
            compiled_body = self._check_class(cls, source, node, origin_text)
            end_line = node.end_lineno
            line_text = source.text.splitlines()[end_line - 1]
            reps = [(*_pos(n), new) for n, new in replacements.items()]
            body = _span_text(source.text, (node.lineno, 0), (end_line, len(line_text.encode("utf-8"))), reps)
            decorators = "".join(
                node.col_offset * " " + "@" + _span_text(source.text, *_pos(d), reps) + "\n" for d in kept)
            text = decorators + body
            if node.col_offset:
                text = _dedent_exact(text, node.col_offset, cls, self)
            if name != cls.__name__:
                text = re.sub(rf"^((?:\s*@.*\n)*\s*class\s+){re.escape(cls.__name__)}\b", rf"\g<1>{name}", text, count=1)
            lines = [f"# class {cls.__qualname__} from {origin_text}", text.rstrip("\n")]
            if name != cls.__name__:
                lines.append(f"{name}.__name__ = {cls.__name__!r}")
            if cls.__qualname__ != (name if name != cls.__name__ else cls.__name__):
                lines.append(f"{name}.__qualname__ = {cls.__qualname__!r}")
            self.statements.append("\n".join(lines))
            self._class_overrides(cls, name, node, compiled_body)
            self.definitions.append(_Definition(name, "class", cls.__qualname__, cls.__module__, source.origin, line))
        finally:
            self._path.pop()

    def _has_class_statement(self, cls: type) -> bool:
        source = source_for_class(cls)
        return source is not None and any(isinstance(n, ast.ClassDef) and n.name == cls.__name__
                                          for n in ast.walk(source.tree))

    def _define_namedtuple(self, cls: type, name: str) -> None:
        """A class made by ``collections.namedtuple(...)``: re-made by the same call."""
        defaults = getattr(cls, "_field_defaults", {})
        args = [repr(cls.__name__), repr(list(cls._fields))]  # type: ignore[attr-defined]
        if defaults:
            args.append("defaults=" + self.expr(tuple(defaults[f] for f in cls._fields if f in defaults), "defaults"))
        self.statements.append(f"# namedtuple class {cls.__qualname__} of module {cls.__module__}\n"
                               f"{name} = {self.need(collections, 'collections')}.namedtuple({', '.join(args)})")
        self.definitions.append(_Definition(name, "class", cls.__qualname__, cls.__module__,
                                            {"kind": "module", "module": cls.__module__}, None))

    def _class_namespace(self, cls: type) -> dict[str, Any]:
        """The globals the class statement ran in: its module's, or those of its own methods."""
        module = sys.modules.get(cls.__module__)
        if module is not None:
            return vars(module)
        for value in vars(cls).values():
            fn = _function_of(value)
            if fn is not None and fn.__module__ == cls.__module__:
                return fn.__globals__
        return {}

    def _check_class(self, cls: type, source: Source, node: ast.ClassDef, origin_text: str) -> list[types.CodeType]:
        end_line = node.end_lineno
        line_text = source.text.splitlines()[end_line - 1]
        text = _span_text(source.text, (node.lineno, 0), (end_line, len(line_text.encode("utf-8"))), [])
        if node.col_offset:
            text = "def _wb_factory():\n" + text + "\n"
        text = _module_imports(source) + text
        try:
            compiled = compile(text, "<check>", "exec", dont_inherit=True)
        except SyntaxError as exc:
            self._fail(cls, f"its source at {origin_text} does not compile: {exc}")
        bodies = [c for c in _codes(compiled) if c.co_name == cls.__name__]
        codes = [c for body in bodies for c in _codes(body)]
        for attr, value in vars(cls).items():
            fn = _function_of(value)
            if fn is None:
                continue
            inner = getattr(fn, "__wrapped__", None)
            ok = any(c.co_name == fn.__code__.co_name and _same_code(c, fn.__code__) for c in codes)
            if not ok and isinstance(inner, types.FunctionType):
                ok = any(_same_code(c, inner.__code__) for c in codes)
            if not ok and fn.__qualname__.startswith(cls.__qualname__ + ".") and \
                    fn.__code__.co_filename == source.filename and node.lineno <= fn.__code__.co_firstlineno <= end_line:
                self._fail(cls, f"its source at {origin_text} no longer matches the live class (method {attr!r} "
                                "differs: the file or cell was edited after the class was defined); re-run it")
        return codes

    def _class_overrides(self, cls: type, name: str, node: ast.ClassDef, codes: list[types.CodeType]) -> None:
        """Class attributes whose live value differs from what the class body produces."""
        if issubclass(cls, enum.Enum):
            return
        literal_assigns: dict[str, ast.AST] = {}
        for stmt in node.body:
            if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
                literal_assigns[stmt.targets[0].id] = stmt.value
            elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None:
                literal_assigns[stmt.target.id] = stmt.value
        defined = {s.name for s in node.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
        for attr, value in vars(cls).items():
            if attr.startswith("__") and attr.endswith("__"):
                continue
            fn = _function_of(value)
            if fn is not None or isinstance(value, (staticmethod, classmethod, property)):
                if fn is not None and not any(_same_code(c, fn.__code__) for c in codes):
                    inner = getattr(fn, "__wrapped__", None)
                    if not (isinstance(inner, types.FunctionType) and any(_same_code(c, inner.__code__) for c in codes)):
                        self._path.append(f"attribute {attr!r}")
                        try:
                            self.statements.append(f"{name}.{attr} = {self.expr(value, attr)}  # set after the class")
                        finally:
                            self._path.pop()
                continue
            if attr in defined and isinstance(value, type):
                continue
            if isinstance(value, (types.MemberDescriptorType, types.GetSetDescriptorType)):
                continue  # __slots__ members: made by the class statement
            source_value = literal_assigns.get(attr)
            if source_value is not None and _literal_equal(source_value, value):
                continue
            if attr in ("_wb_base",) or dataclasses.is_dataclass(cls) and attr in getattr(cls, "__dataclass_fields__", {}) \
                    and source_value is None:
                continue
            self._path.append(f"class attribute {cls.__qualname__}.{attr}")
            try:
                self.statements.append(f"{name}.{attr} = {self.expr(value, attr)}  # value at save time")
            finally:
                self._path.pop()

    # --- torch layers ----------------------------------------------------------------------------------------

    def _class_expr(self, cls: type) -> str:
        if "_wb_base" in vars(cls) and _is_wrapped(cls):
            base = cls._wb_base
            return f"_wb.transform({self.expr(base, base.__name__)})"
        return self.expr(cls, cls.__name__)

    def _define_layer(self, module: Any, name: str) -> None:
        torch = self._torch
        self._path.append(f"layer {type(module).__name__}")
        try:
            state = vars(module)
            for hook_dict in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks",
                              "_state_dict_hooks", "_load_state_dict_pre_hooks", "_load_state_dict_post_hooks"):
                if state.get(hook_dict):
                    self._fail(module, f"it has {hook_dict.strip('_').replace('_', ' ')} registered; hooks are not "
                                       "saved in bundles (remove them, or fold them into a step)")
            cls_text = self._class_expr(type(module))
            params = []
            for pname, p in state["_parameters"].items():
                params.append(f"{pname!r}: {self._weight_expr(p, f'{name}.{pname}', True)}")
            buffers = []
            for bname, b in state["_buffers"].items():
                buffers.append(f"{bname!r}: {self._weight_expr(b, f'{name}.{bname}', False)}")
            children = []
            for cname, child in state["_modules"].items():
                self._path.append(f"submodule {cname!r}")
                try:
                    children.append(f"{cname!r}: {self.expr(child, f'{name}_{cname}') if child is not None else 'None'}")
                finally:
                    self._path.pop()
            attrs = []
            for attr, value in state.items():
                if attr in self._torch_internal and attr != "training":
                    continue
                self._path.append(f"attribute {attr!r}")
                try:
                    attrs.append(f"{attr!r}: {self.expr(value, attr)}")
                finally:
                    self._path.pop()
            args = [cls_text, "{" + ", ".join(attrs) + "}"]
            if params:
                args.append("parameters={" + ", ".join(params) + "}")
            if buffers:
                args.append("buffers={" + ", ".join(buffers) + "}")
            if children:
                args.append("modules={" + ", ".join(children) + "}")
            non_persistent = sorted(state["_non_persistent_buffers_set"])
            if non_persistent:
                args.append(f"non_persistent={non_persistent!r}")
            n_tensors = len(params) + len(buffers)
            comment = f"# torch layer {type(module).__qualname__}: attributes by value"
            comment += f", {n_tensors} tensors from weights.safetensors\n" if n_tensors else "\n"
            self.statements.append(comment + f"{name} = _bundle.module({', '.join(args)})")
        finally:
            self._path.pop()

    def _weight_expr(self, tensor: Any, key: str, parameter: bool) -> str:
        if tensor is None:
            return "None"
        return self._tensor_expr(tensor, key, "weights")

    def _tensor_expr(self, tensor: Any, key: str, store: str) -> str:
        torch = self._torch
        known = self._tensor_keys.get(id(tensor))
        if known is None:
            if type(tensor) not in (torch.Tensor, torch.nn.Parameter) or tensor.is_sparse or tensor.is_quantized \
                    or tensor.layout != torch.strided:
                self._fail(tensor, f"it is a {type(tensor).__name__} with layout {tensor.layout}; only dense tensors "
                                   "and parameters are stored")
            key = self._unique_tensor_key(key, store)
            data = tensor.detach()
            if data.device.type != "cpu":
                data = data.cpu()
            data = data.contiguous()
            ptr = data.untyped_storage().data_ptr() if data.numel() else None
            if ptr is not None and ptr in self._storage_ptrs:
                data = data.clone()
            elif ptr is not None:
                self._storage_ptrs.add(ptr)
            (self.weights if store == "weights" else self.tensors)[key] = data
            self._tensor_keys[id(tensor)] = (store, key)
            self._keep.append(tensor)
            known = (store, key)
        store, key = known
        kind = "parameter" if isinstance(tensor, torch.nn.Parameter) else "tensor"
        args = [repr(key)]
        if store == "weights":
            args.append("weights=True")
        if isinstance(tensor, torch.nn.Parameter):
            if not tensor.requires_grad:
                args.append("requires_grad=False")
        elif tensor.requires_grad:
            args.append("requires_grad=True")
        if tensor.device.type != "cpu":
            args.append(f"device={str(tensor.device)!r}")
        return f"_bundle.{kind}({', '.join(args)})"

    def _unique_tensor_key(self, key: str, store: str) -> str:
        existing = self.weights if store == "weights" else self.tensors
        if key not in existing:
            return key
        n = 2
        while f"{key}_{n}" in existing:
            n += 1
        return f"{key}_{n}"

    # --- data ---------------------------------------------------------------------------------------------------

    def _artifact(self, hint: str) -> str:
        base = re.sub(r"[^A-Za-z0-9_]", "_", hint) or "data"
        name = base
        n = 2
        while name in self._artifact_names:
            name = f"{base}_{n}"
            n += 1
        self._artifact_names.add(name)
        return name

    def _array_expr(self, array: Any, hint: str) -> str:
        if array.dtype.hasobject:
            self._fail(array, "it is a numpy array of Python objects, which cannot be stored without pickle")
        name = self._artifact(hint)
        self.arrays[name] = array
        return f"_bundle.array({name!r})"

    def _frame_expr(self, frame: Any, hint: str) -> str:
        from .artifacts import check_frame

        problem = check_frame(frame)
        if problem:
            self._fail(frame, problem)
        name = self._artifact(hint)
        self.frames[name] = frame
        return f"_bundle.frame({name!r})"

    # --- other instances ------------------------------------------------------------------------------------------

    def _define_instance(self, obj: Any, name: str) -> None:
        cls = type(obj)
        self._path.append(f"{cls.__name__} instance")
        try:
            base = cls._wb_base if "_wb_base" in vars(cls) and _is_wrapped(cls) else cls
            try:
                reduced = base.__reduce_ex__(obj, 4)
            except Exception as exc:
                self._fail(obj, f"it cannot be stored by value or re-created ({exc})")
            if isinstance(reduced, str):
                self._fail(obj, f"it is a global named {reduced!r} that could not be imported")
            func, args, state, listitems, dictitems = (tuple(reduced) + (None,) * 5)[:5]
            from ..pipeline import Transform

            if isinstance(obj, Transform) and isinstance(state, dict):
                state = {k: (None if k == "_fns" else v) for k, v in state.items() if k != "_wb_modules_cache"}
            if func is copyreg.__newobj__ and args and args[0] is cls:
                parts = [self._class_expr(cls)]
                if state is not None:
                    parts.append(self.expr(state, "state"))
                if len(args) > 1:
                    parts.append("args=" + self.expr(tuple(args[1:]), "args"))
            else:
                if func is copyreg.__newobj__ or func is getattr(copyreg, "__newobj_ex__", None):
                    self._fail(obj, "its pickling protocol cannot be reproduced")
                parts = ["reduce=" + self.expr(func, "factory"), "args=" + self.expr(tuple(args or ()), "args")]
                if state is not None:
                    parts.insert(0, "None")
                    parts.insert(1, self.expr(state, "state"))
                else:
                    parts.insert(0, "None")
            if listitems is not None:
                parts.append("items=" + self.expr(list(listitems), "items"))
            if dictitems is not None:
                parts.append("mapping=" + self.expr(dict(dictitems), "mapping"))
            self.statements.append(f"{name} = _bundle.instance({', '.join(parts)})")
        finally:
            self._path.pop()

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


def _file_of(namespace: dict[str, Any]) -> dict[str, Any]:
    filename = namespace.get("__file__")
    return {"path": os.path.abspath(filename)} if isinstance(filename, str) else {}


def _dedent_exact(text: str, width: int, obj: Any, capture: Capture) -> str:
    lines = text.splitlines(keepends=True)
    out = []
    for line in lines:
        if line[:width].strip():
            capture._fail(obj, "its nested source cannot be moved to the top level (a multi-line string "
                               "is less indented than the definition)")
        out.append(line[width:] if len(line) > width else line.lstrip(" "))
    return "".join(out)


def _is_wrapped(cls: type) -> bool:
    from ..transform import _WRAPPED

    base = vars(cls).get("_wb_base")
    return base is not None and _WRAPPED.get(base) is cls


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


def _class_lookup(cls: type, name: str) -> Any:
    for klass in cls.__mro__:
        if name in vars(klass):
            return vars(klass)[name]
    return None


def _label(obj: Any) -> str:
    if isinstance(obj, types.FunctionType):
        return f"function {obj.__qualname__!r}"
    if isinstance(obj, type):
        return f"class {obj.__qualname__!r}"
    return f"{type(obj).__name__} object"


def _where(obj: Any) -> str:
    code = getattr(obj, "__code__", None)
    if isinstance(code, types.CodeType):
        source = source_for_code(code)
        if source is not None:
            return f" (defined at {describe_origin(source.origin, code.co_firstlineno)})"
        return f" (defined at {code.co_filename}:{code.co_firstlineno})"
    if isinstance(obj, type):
        return f" (module {obj.__module__})"
    return ""
