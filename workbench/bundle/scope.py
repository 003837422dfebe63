"""Which names in a piece of source are module globals, and renaming them in place.

A bundle puts every captured definition in one namespace, so two different objects that were both
called ``f`` where they came from cannot both keep the name. :func:`global_names` finds every
occurrence of a global name in a definition (with scoping: parameters, locals, comprehension
variables, ``global``/``nonlocal`` and class scopes are respected) and :func:`rename` rewrites
exactly those occurrences, leaving the rest of the text (comments, layout) untouched.

>>> import ast
>>> node = ast.parse("def f(x):\\n    return g(x) + len(x)\\n").body[0]
>>> sorted(n.id for n, when in global_names(node))
['g', 'len']
"""

from __future__ import annotations

import ast
from typing import Iterable, Iterator

__all__ = ["global_names", "rename"]

_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef,
           ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


class _Scope:
    def __init__(self, kind: str, parent: "_Scope | None"):
        self.kind = kind  # "outer" | "function" | "class" | "comprehension"
        self.parent = parent
        self.bound: set[str] = set()
        self.declared_global: set[str] = set()

    def resolves_global(self, name: str) -> bool:
        scope: _Scope | None = self
        innermost = True
        while scope is not None and scope.kind != "outer":
            if name in scope.declared_global:
                return True
            if (innermost or scope.kind != "class") and name in scope.bound:
                return False
            innermost = False
            scope = scope.parent
        return True

    def at_call_time(self) -> bool:
        scope: _Scope | None = self
        while scope is not None:
            if scope.kind == "function":
                return True
            scope = scope.parent
        return False


def global_names(root: ast.AST, exclude: Iterable[str] = ()) -> list[tuple[ast.Name, str]]:
    """``(Name node, "def" | "call")`` for each use of a global in ``root`` (a def, lambda or class).

    ``"def"`` uses are evaluated when the definition runs (decorators, defaults, annotations, base
    classes, class bodies); ``"call"`` uses only when the function is called. Names in ``exclude``
    are treated as bound outside ``root`` (closure variables).
    """
    outer = _Scope("outer", None)
    outer.bound.update(exclude)
    # Names in `exclude` are free variables of an enclosing function, not globals.
    enclosing = _Scope("function", outer)
    enclosing.bound.update(exclude)
    found: list[tuple[ast.Name, str]] = []
    _visit(root, enclosing if exclude else outer, found)
    return [(n, w) for n, w in found]


def _visit(node: ast.AST, scope: _Scope, found: list[tuple[ast.Name, str]]) -> None:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        args = node.args
        for default in list(args.defaults) + [d for d in args.kw_defaults if d is not None]:
            _visit(default, scope, found)
        if not isinstance(node, ast.Lambda):
            for dec in node.decorator_list:
                _visit(dec, scope, found)
            for arg in _all_args(args):
                if arg.annotation is not None:
                    _visit(arg.annotation, scope, found)
            if node.returns is not None:
                _visit(node.returns, scope, found)
        inner = _Scope("function", scope)
        inner.bound.update(a.arg for a in _all_args(args))
        body = node.body if isinstance(node.body, list) else [node.body]
        _collect_bindings(body, inner)
        for stmt in body:
            _visit(stmt, inner, found)
        return
    if isinstance(node, ast.ClassDef):
        for expr in node.decorator_list + node.bases + [k.value for k in node.keywords]:
            _visit(expr, scope, found)
        inner = _Scope("class", scope)
        _collect_bindings(node.body, inner)
        for stmt in node.body:
            _visit(stmt, inner, found)
        return
    if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
        gens = node.generators
        _visit(gens[0].iter, scope, found)
        inner = _Scope("comprehension", scope)
        for gen in gens:
            inner.bound.update(_target_names(gen.target))
        for i, gen in enumerate(gens):
            if i:
                _visit(gen.iter, inner, found)
            _visit(gen.target, inner, found)
            for cond in gen.ifs:
                _visit(cond, inner, found)
        elts = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
        for elt in elts:
            _visit(elt, inner, found)
        return
    if isinstance(node, ast.Name):
        if scope.resolves_global(node.id):
            found.append((node, "call" if scope.at_call_time() else "def"))
        return
    for child in ast.iter_child_nodes(node):
        _visit(child, scope, found)


def _all_args(args: ast.arguments) -> list[ast.arg]:
    out = list(args.posonlyargs) + list(args.args) + list(args.kwonlyargs)
    if args.vararg:
        out.append(args.vararg)
    if args.kwarg:
        out.append(args.kwarg)
    return out


def _target_names(target: ast.AST) -> Iterator[str]:
    for node in ast.walk(target):
        if isinstance(node, ast.Name):
            yield node.id


def _collect_bindings(body: list[ast.stmt], scope: _Scope) -> None:
    """Names bound directly in ``scope`` (not inside nested scopes)."""
    stack: list[ast.AST] = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Global):
            scope.declared_global.update(node.names)
            continue
        if isinstance(node, ast.Nonlocal):
            scope.bound.update(node.names)
            continue
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            scope.bound.add(node.name)
            continue
        if isinstance(node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            continue
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            scope.bound.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                scope.bound.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            scope.bound.add(node.name)
        elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
            scope.bound.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            scope.bound.add(node.rest)
        stack.extend(ast.iter_child_nodes(node))
    scope.bound -= scope.declared_global


def rename(text: str, renames: dict[ast.AST, str], line_offset: int = 0) -> str:
    """``text`` with each node in ``renames`` (Name nodes, located in ``text``) replaced by a new name.

    ``line_offset`` is subtracted from node line numbers (nodes parsed with shifted lines).
    """
    if not renames:
        return text
    lines = text.splitlines(keepends=True)
    edits: dict[int, list[tuple[int, int, str]]] = {}
    for node, new in renames.items():
        row = node.lineno - 1 - line_offset
        edits.setdefault(row, []).append((node.col_offset, node.end_col_offset, new))
    for row, items in edits.items():
        raw = lines[row].encode("utf-8")
        for start, end, new in sorted(items, reverse=True):
            raw = raw[:start] + new.encode("utf-8") + raw[end:]
        lines[row] = raw.decode("utf-8")
    return "".join(lines)
