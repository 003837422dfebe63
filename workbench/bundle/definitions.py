"""Copying functions and classes as source: locating, verifying, binding their globals, renaming.

:class:`DefinitionsMixin` is the part of :class:`~workbench.bundle.capture.Capture` that turns a
function, lambda, closure, decorated function or class defined in a script, a notebook cell or a
local module into source text for the bundle: found through :mod:`workbench.bundle.source`,
verified by recompiling (:func:`~workbench.bundle.codetext.same_code`), with every global it uses
bound to its current value and references renamed where names clash.

>>> from workbench import transform
>>> from workbench.bundle.capture import Capture
>>> cap = Capture(); cap.capture(transform(lambda x: x + 1))
>>> [(d.name, d.kind) for d in cap.records.definitions]
[('lambda_fn', 'lambda')]
"""

from __future__ import annotations

import ast
import builtins
import collections
import dataclasses
import enum
import os
import re
import sys
import types
from typing import Any, Iterable

from .attributes import attributes_read
from .codetext import (codes as _codes, first_line as _first_line, indent as _indent, is_top_level as _is_top_level,
                       literal_equal as _literal_equal, module_imports as _module_imports, pos as _pos,
                       qualname_of as _qualname_of, same_code as _same_code, span_text as _span_text)
from .installed import is_installed_module
from .scope import global_names
from .source import Source, describe_origin, source_for_class, source_for_code

__all__ = ["DefinitionsMixin"]

_MISSING = object()


def _dedent_exact(text: str, width: int, obj: Any, capture: Any) -> str:
    lines = text.splitlines(keepends=True)
    out = []
    for line in lines:
        if line[:width].strip():
            capture._fail(obj, "its nested source cannot be moved to the top level (a multi-line string "
                               "is less indented than the definition)")
        out.append(line[width:] if len(line) > width else line.lstrip(" "))
    return "".join(out)


def _file_of(namespace: dict[str, Any]) -> dict[str, Any]:
    filename = namespace.get("__file__")
    return {"path": os.path.abspath(filename)} if isinstance(filename, str) else {}


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


def _label(obj: Any) -> str:
    if isinstance(obj, types.FunctionType):
        return f"function {obj.__qualname__!r}"
    if isinstance(obj, type):
        return f"class {obj.__qualname__!r}"
    return f"{type(obj).__name__} object"


def _global_holding(value: Any, namespace: dict[str, Any]) -> str | None:
    """The global name in ``namespace`` bound to the mutable container ``value``, if any."""
    if type(value) not in (list, dict, set):
        return None
    return next((name for name, v in namespace.items() if v is value and not name.startswith("__")), None)


def _function_of(value: Any) -> Any:
    if isinstance(value, (staticmethod, classmethod)):
        value = value.__func__
    elif isinstance(value, property):
        value = value.fget
    return value if isinstance(value, types.FunctionType) else None


def _compile_variants(source: Source, text: str) -> list[types.CodeType]:
    """``text`` compiled as the live code may have been: with the module's imports in the same unit, and without.

    CPython compiles ``mod.attr(...)`` differently when ``mod`` is imported in the same compilation unit.
    A file is one unit; IPython compiles each top-level statement of a cell as a unit of its own, so
    an ``import`` in the same cell is not seen there. Raises SyntaxError when neither compiles.
    """
    variants = []
    for prefix in (_module_imports(source), ""):
        try:
            variants.append(compile(prefix + text, "<check>", "exec", dont_inherit=True))
        except SyntaxError:
            if not variants and not prefix:
                raise
    return variants


class DefinitionsMixin:
    """Source-level capture of functions and classes (mixed into ``Capture``)."""

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
        text = self._function_text(source, node, {}, code.co_freevars, for_check=True)
        try:
            variants = _compile_variants(source, text)
        except SyntaxError:
            return False
        for compiled in variants:
            if any(c.co_name == code.co_name and _same_code(c, code) for c in _codes(compiled)):
                return True
        return False

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
                    owner = self._cells.setdefault(id(cell), fn)
                    if owner is not fn:
                        self._fail(fn, f"its closure variable {var!r} is shared with {_label(owner)}; a bundle "
                                       f"cannot keep them sharing it (defined at {origin_text})")
                    closure[var] = value
            text = self._function_text(source, node, replacements, freevars)
            is_lambda = isinstance(node, ast.Lambda)
            orig_name = code.co_name
            kind = "lambda" if is_lambda else "function"
            comment = f"# {kind} {fn.__qualname__} from {describe_origin(source.origin, line, portable=True)}"
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
                        gname = _global_holding(closure[v], fn.__globals__)
                        if gname is not None:  # also a global that other code reads: keep one object
                            self.ledger.note_origin(self._key(closure[v]), gname, fn.__globals__.get("__name__", "?"),
                                                    _file_of(fn.__globals__))
                            args.append(self.need(closure[v], gname))
                        else:
                            args.append(self.expr(closure[v], v))
                    finally:
                        self._path.pop()
                factory = self.names.fresh(f"_make_{name.lstrip('_')}")
                self.names.bind(factory, ("factory", factory))
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
            self.records.add("\n".join(lines))
            self.records.define(name, kind, fn.__qualname__, fn.__module__, source.origin, line)
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
            where = describe_origin(source.origin, _first_line(node), portable=True)
            self.records.add(f"# decorated function {fn.__qualname__} from {where}\n{text.rstrip()}")
            self.records.define(name, "function", fn.__qualname__, fn.__module__, source.origin, _first_line(node))
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
                if gname in self.names:
                    self._fail(owner, f"it uses the name {gname!r}, which is not defined where it was defined "
                                      f"({origin_text}) but is defined in the bundle")
                self.names.bind(gname, ("unbound", gname))
                continue
            self._path.append(f"global {gname!r}")
            module_name = namespace.get("__name__", "?")
            self.ledger.note_origin(self._key(value), gname, module_name, _file_of(namespace))
            try:
                attrs = attributes_read(gname, uses)
                narrowed = self._narrow(value, gname, attrs, owner) if attrs else None
                if narrowed is not None:
                    bundle_name = narrowed
                elif isinstance(value, types.ModuleType) and not is_installed_module(value.__name__):
                    bundle_name = self.need(value, gname)
                    self._namespace_attrs(value, bundle_name, name_node, owner)
                elif when == "def":
                    bundle_name = self.need(value, gname)
                else:
                    bundle_name = self.ref(value, gname)
                if narrowed is None:
                    literal = self._key(value)[0] == "literal"
                    self._note_reader(("literal-name", bundle_name) if literal else self._key(value),
                                      value, gname, owner)
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
                    self.records.add(f"{bundle_name}.{attr} = {sub}")
                    if chain_node is not None:
                        self._namespace_attrs(value, sub, chain_node, owner)
                else:
                    self.records.add(f"{bundle_name}.{attr} = {self.expr(value, attr)}")
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
            lines = [f"# class {cls.__qualname__} from {describe_origin(source.origin, line, portable=True)}",
                     text.rstrip("\n")]
            if name != cls.__name__:
                lines.append(f"{name}.__name__ = {cls.__name__!r}")
            if cls.__qualname__ != (name if name != cls.__name__ else cls.__name__):
                lines.append(f"{name}.__qualname__ = {cls.__qualname__!r}")
            self.records.add("\n".join(lines))
            self._class_overrides(cls, name, node, compiled_body)
            self.records.define(name, "class", cls.__qualname__, cls.__module__, source.origin, line)
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
        self.records.add(f"# namedtuple class {cls.__qualname__} of module {cls.__module__}\n"
                               f"{name} = {self.need(collections, 'collections')}.namedtuple({', '.join(args)})")
        self.records.define(name, "class", cls.__qualname__, cls.__module__,
                            {"kind": "module", "module": cls.__module__}, None)

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
        try:
            variants = _compile_variants(source, text)
        except SyntaxError as exc:
            self._fail(cls, f"its source at {origin_text} does not compile: {exc}")
        bodies = [c for compiled in variants for c in _codes(compiled) if c.co_name == cls.__name__]
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
                            self.records.add(f"{name}.{attr} = {self.expr(value, attr)}  # set after the class")
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
                self.records.add(f"{name}.{attr} = {self.expr(value, attr)}  # value at save time")
            finally:
                self._path.pop()
