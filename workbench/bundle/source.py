"""Finding the source text an object was compiled from: a file or a notebook cell, through one path.

Every definition a bundle captures goes through :func:`source_for_code` (functions, lambdas) or
:func:`source_for_class` (classes). Both ask the notebook tracker first (``workbench.tracking``,
when it is present: the exact cell a code object or a live class came from), then the file on disk,
then :mod:`linecache` (where IPython also keeps cell text). A cell and a file are two sources of
the same thing: a :class:`Source` with the text the code was compiled from and its origin.

>>> src = source_for_code(source_for_code.__code__)
>>> src.origin["kind"], "Finding the source" in src.text
('file', True)
"""

from __future__ import annotations

import ast
import linecache
import os
import sys
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Source", "source_for_code", "source_for_class", "describe_origin", "portable_path", "portable_origin",
           "project_dir"]


@dataclass
class Source:
    """The text a definition was compiled from (a whole file, or a cell as IPython compiled it)."""

    text: str
    filename: str
    origin: dict[str, Any]
    _tree: ast.Module | None = field(default=None, repr=False)

    @property
    def tree(self) -> ast.Module:
        if self._tree is None:
            self._tree = ast.parse(self.text)
            for parent in ast.walk(self._tree):
                for child in ast.iter_child_nodes(parent):
                    child._wb_parent = parent  # type: ignore[attr-defined]
        return self._tree


_CACHE: dict[tuple[str, str], Source] = {}


def _tracking() -> Any:
    try:
        from workbench import tracking  # provided by the notebook integration
    except ImportError:
        return None
    return tracking


def _from_cell(cell: Any) -> Source:
    key = ("cell", cell.filename, cell.execution_count, cell.cell_id)  # identical texts, separate runs
    cached = _CACHE.get(key)
    if cached is not None and cached.text == cell.transformed:
        return cached
    source = Source(cell.transformed, cell.filename, {
        "kind": "cell",
        "notebook": str(cell.notebook) if cell.notebook else None,
        "cell_id": cell.cell_id,
        "execution_count": cell.execution_count,
        "filename": cell.filename,
    })
    _CACHE[key] = source
    return source


def source_for_code(code: Any) -> Source | None:
    """The source of a code object: its notebook cell, its file, or IPython's line cache; else None."""
    tracking = _tracking()
    if tracking is not None:
        cell = tracking.cell_for_code(code)  # the exact execution, even among runs of identical text
        if cell is not None:
            return _from_cell(cell)
    return _lookup(code.co_filename)


def source_for_class(cls: type) -> Source | None:
    """The source a class was defined in (the cell that created this class object, or its file)."""
    tracking = _tracking()
    if tracking is not None:
        cell = tracking.cell_for_class(cls)
        if cell is not None:
            return _from_cell(cell)
    module = sys.modules.get(cls.__module__)
    filename = getattr(module, "__file__", None)
    if filename:
        found = _lookup(filename)
        if found is not None:
            return found
    for value in vars(cls).values():
        fn = _function_of(value)
        if fn is not None and fn.__qualname__.startswith(cls.__qualname__ + ".") \
                and not fn.__code__.co_filename.startswith("<string"):
            found = _lookup(fn.__code__.co_filename)
            if found is not None:
                return found
    return None


def _function_of(value: Any) -> Any:
    if isinstance(value, (staticmethod, classmethod)):
        value = value.__func__
    elif isinstance(value, property):
        value = value.fget
    return value if hasattr(value, "__code__") else None


def _lookup(filename: str) -> Source | None:
    tracking = _tracking()
    if tracking is not None:
        cell = tracking.cell_for_filename(filename)
        if cell is not None:
            return _from_cell(cell)
    if os.path.isfile(filename):
        try:
            with open(filename, encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError):
            return None
        key = ("file", filename)
        cached = _CACHE.get(key)
        if cached is not None and cached.text == text:
            return cached
        source = Source(text, filename, {"kind": "file", "path": os.path.abspath(filename)})
        _CACHE[key] = source
        return source
    lines = linecache.getlines(filename)
    if lines:
        return Source("".join(lines), filename, {"kind": "cell", "notebook": None, "cell_id": None,
                                                 "execution_count": None, "filename": filename})
    return None


_PROJECT_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", ".git")


def project_dir() -> str:
    """The directory origins are written relative to: the notebook's (when the kernel knows it), else the cwd."""
    notebook = None
    tracking = _tracking()
    if tracking is not None:
        recorded = tracking.cells()
        notebook = recorded[-1].notebook if recorded else None
    if notebook and os.path.isabs(notebook):
        return os.path.dirname(notebook)
    return os.getcwd()


def _project_root(base: str) -> str:
    """The nearest ancestor of ``base`` that looks like a project (pyproject.toml, setup.py, .git...)."""
    current = base
    home = os.path.expanduser("~")
    while True:
        if any(os.path.exists(os.path.join(current, m)) for m in _PROJECT_MARKERS):
            return current
        parent = os.path.dirname(current)
        if parent == current or current == home:
            return base
        current = parent


def portable_path(path: str, base: str | None = None) -> str:
    """``path`` as a bundle may record it: relative to the project, never an absolute home path.

    Inside the notebook's (or working) directory, or the project around it: a relative path
    (``helpers.py``, ``../src/text.py``). Elsewhere under the home directory: ``~/...``. Other
    absolute paths (system locations, not personal) are kept.

    >>> portable_path(os.path.join(os.getcwd(), "helpers.py"))
    'helpers.py'
    >>> portable_path(os.path.expanduser("~/elsewhere/x.py"), base="/srv/project").startswith("~")
    True
    """
    if not os.path.isabs(path):
        return path
    base = base or project_dir()
    path = os.path.normpath(path)
    for root in (base, _project_root(base)):
        if path == root or path.startswith(root.rstrip(os.sep) + os.sep):
            return os.path.relpath(path, base)
    home = os.path.expanduser("~")
    if home not in ("", "/") and path.startswith(home.rstrip(os.sep) + os.sep):
        return "~" + os.sep + os.path.relpath(path, home)
    return path


def portable_origin(origin: dict[str, Any]) -> dict[str, Any]:
    """An origin as written into a bundle: paths made portable, the kernel's temporary cell file left out."""
    out = dict(origin)
    for key in ("path", "notebook"):
        if isinstance(out.get(key), str):
            out[key] = portable_path(out[key])
    if out.get("kind") == "cell":
        out.pop("filename", None)
    return out


def describe_origin(origin: dict[str, Any], line: int | None = None, *, portable: bool = False) -> str:
    """``/path/script.py:12`` or ``notebook.ipynb cell [3] (id abc), line 2`` for messages and comments.

    ``portable=True`` (for text written into a bundle) gives paths as :func:`portable_path` does.
    """
    def shown(path: str) -> str:
        return portable_path(path) if portable else path

    if origin.get("kind") == "file":
        path = shown(origin["path"])
        return f"{path}:{line}" if line else path
    if origin.get("kind") == "cell":
        parts = [shown(origin["notebook"]) if origin.get("notebook") else "notebook"]
        if origin.get("execution_count") is not None:
            parts.append(f"cell [{origin['execution_count']}]")
        elif origin.get("filename"):
            filename = origin["filename"]  # the kernel's temporary file for the cell: only its name is portable
            parts.append(f"cell {os.path.basename(filename) if portable else filename}")
        else:
            parts.append("cell")
        if origin.get("cell_id"):
            parts.append(f"(id {origin['cell_id']})")
        text = " ".join(parts)
        return f"{text}, line {line}" if line else text
    return origin.get("module", "?")
