"""Definitions as text and as code: slicing them out of a file or cell, and checking them.

A copied definition is only trusted when recompiling its text gives the same bytecode as the live
object (:func:`same_code`); :func:`module_imports` supplies the imports of the surrounding file,
which change how calls on imported names compile.

>>> same_code(compile("x + 1", "a", "eval"), compile("x + 1", "b", "eval"))
True
"""

from __future__ import annotations

import ast
import types
from typing import Any, Iterable

from .source import Source

__all__ = ['same_code', 'codes', 'parents', 'qualname_of', 'first_line', 'is_top_level', 'span_text', 'pos', 'literal_equal', 'strict_equal', 'module_imports', 'indent']


def same_code(a: types.CodeType, b: types.CodeType) -> bool:
    """Whether two code objects compute the same thing (bytecode, names, constants; not line numbers)."""
    if (a.co_code != b.co_code or a.co_names != b.co_names or a.co_varnames != b.co_varnames
            or a.co_freevars != b.co_freevars or a.co_cellvars != b.co_cellvars
            or a.co_argcount != b.co_argcount or a.co_kwonlyargcount != b.co_kwonlyargcount
            or a.co_posonlyargcount != b.co_posonlyargcount or len(a.co_consts) != len(b.co_consts)):
        return False
    for x, y in zip(a.co_consts, b.co_consts):
        if isinstance(x, types.CodeType) and isinstance(y, types.CodeType):
            if not same_code(x, y):
                return False
        elif type(x) is not type(y) or repr(x) != repr(y):
            return False
    return True


def codes(code: types.CodeType) -> Iterable[types.CodeType]:
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from codes(const)


def parents(node: ast.AST) -> list[ast.AST]:
    out = []
    parent = getattr(node, "_wb_parent", None)
    while parent is not None:
        out.append(parent)
        parent = getattr(parent, "_wb_parent", None)
    return out


def qualname_of(node: ast.AST) -> str:
    parts = [getattr(node, "name", "<lambda>")]
    for parent in parents(node):
        if isinstance(parent, (ast.FunctionDef, ast.AsyncFunctionDef)):
            parts.append("<locals>")
            parts.append(parent.name)
        elif isinstance(parent, ast.Lambda):
            parts.append("<locals>")
            parts.append("<lambda>")
        elif isinstance(parent, ast.ClassDef):
            parts.append(parent.name)
    return ".".join(reversed(parts))


def first_line(node: ast.AST) -> int:
    decorators = getattr(node, "decorator_list", [])
    return min([node.lineno] + [d.lineno for d in decorators])  # type: ignore[attr-defined]


def is_top_level(node: ast.AST) -> bool:
    return isinstance(getattr(node, "_wb_parent", None), ast.Module)


def span_text(text: str, start: tuple[int, int], end: tuple[int, int],
               replacements: list[tuple[tuple[int, int], tuple[int, int], str]]) -> str:
    """Text between two (line, byte column) positions with some position ranges replaced."""
    lines = text.splitlines(keepends=True)
    raw = [line.encode("utf-8") for line in lines]
    starts = [0]
    for line in raw:
        starts.append(starts[-1] + len(line))
    blob = b"".join(raw)

    def offset(pos: tuple[int, int]) -> int:
        return starts[pos[0] - 1] + pos[1]

    a, b = offset(start), offset(end)
    pieces = []
    cursor = a
    for s, e, new in sorted((offset(s), offset(e), new) for s, e, new in replacements):
        if s < cursor or e > b:
            continue  # inside an earlier replacement, or outside the span (elsewhere in the definition)
        pieces.append(blob[cursor:s])
        pieces.append(new.encode("utf-8"))
        cursor = e
    pieces.append(blob[cursor:b])
    return b"".join(pieces).decode("utf-8")


def pos(node: ast.AST) -> tuple[tuple[int, int], tuple[int, int]]:
    return (node.lineno, node.col_offset), (node.end_lineno, node.end_col_offset)  # type: ignore[attr-defined]


def literal_equal(node: ast.AST, value: Any) -> bool:
    try:
        lit = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return strict_equal(lit, value)


def strict_equal(a: Any, b: Any) -> bool:
    """Equal with the same types throughout (1 != 1.0 != True, tuple != list)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(strict_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return (list(a.keys()) == list(b.keys()) and all(type(k) is type(j) for k, j in zip(a, b))
                and all(strict_equal(a[k], b[k]) for k in a))
    if isinstance(a, (set, frozenset)):
        return a == b
    if isinstance(a, float):
        return repr(a) == repr(b)
    try:
        return bool(a == b)
    except Exception:
        return False


def module_imports(source: Source) -> str:
    """The module-level imports of ``source``: they change how calls on imported names compile."""
    cached = getattr(source, "_wb_imports", None)
    if cached is None:
        lines = []
        stack: list[ast.AST] = list(source.tree.body)
        while stack:
            node = stack.pop()
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                if not (isinstance(node, ast.ImportFrom) and node.module == "__future__"):
                    lines.append(ast.unparse(node).replace("from . import", "import").replace("from .", "from "))
            elif not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
                stack.extend(ast.iter_child_nodes(node))
        cached = "".join(f"if 0:\n    {line}\n" for line in lines)
        source._wb_imports = cached  # type: ignore[attr-defined]
    return cached


def indent(text: str) -> str:
    return "".join("    " + line if line.strip() else line for line in text.splitlines(keepends=True))
