"""Cell tracking: which executed notebook cell defined a function or class living in the kernel.

Inside IPython every cell is compiled under a file name of its own (``/tmp/ipykernel_<pid>/<hash>.py``
in a Jupyter kernel, ``<ipython-input-N-...>`` in the terminal). Once tracking is installed, every
execution is recorded as a :class:`CellSource`: the raw text the user typed, the transformed Python
that was compiled (line numbers of code objects refer to it), the execution count and the notebook
cell id. Bundles use this to find the exact source of what the kernel holds, after edits, re-runs
and out-of-order execution.

>>> from workbench import tracking
>>> tracking.cell_for_filename("/no/such/cell.py") is None
True

How objects are matched to executions, exactly:

- a function (or lambda, method, nested function) by its code object: every top-level code object a
  cell execution runs is kept with that execution's record, so even two executions of identical text
  are told apart (:func:`cell_for_code`);
- a class by its class body: while tracking is on, ``class`` statements executed from cell code are
  traced (the body's code object is kept per class object), so classes with no methods at all, such
  as a dataclass with only fields, are found too (:func:`cell_for_class`);
- cells executed before tracking was installed are recovered from the kernel's input history when the
  cell file name can be recomputed from the text (it is a function of the text), which covers every
  function and every class with a method; anything else is reported as unknown (``None``), never
  guessed by name.
"""

from __future__ import annotations

import ast
import builtins
import linecache
import os
import sys
import types
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

__all__ = [
    "CellSource",
    "cell_for_filename",
    "cell_for_code",
    "cell_for_class",
    "class_body_code",
    "untracked_reason",
    "cells",
    "is_active",
    "install",
    "uninstall",
]


@dataclass(frozen=True)
class CellSource:
    """One executed cell.

    ``raw`` is the text as typed (magics, shell escapes and all), ``transformed`` the Python IPython
    compiled from it (code-object line numbers refer to this), ``filename`` the ``co_filename`` of
    that code, ``execution_count`` the ``In[n]`` number (``None`` for executions that do not get one,
    such as silent ones), ``cell_id`` the notebook cell id the front end sent (``None`` when it sent
    none), ``notebook`` the notebook path when the kernel knows it.

    ``recovered`` is true for cells executed before tracking was installed and recovered from the
    input history (the text is exact; the cell id is unknown).
    """

    raw: str
    transformed: str
    filename: str
    execution_count: int | None
    cell_id: str | None = None
    notebook: str | None = None
    recovered: bool = False

    @property
    def label(self) -> str:
        """A short human name, e.g. ``In[12]`` or ``In[12] (cell 3f2a...)``."""
        where = f"In[{self.execution_count}]" if self.execution_count is not None else "a silent execution"
        if self.cell_id:
            where += f" (cell id {self.cell_id})"
        return where


@dataclass(eq=False)
class _Execution:
    source: CellSource
    codes: list[types.CodeType] = field(default_factory=list)


def _walk_codes(code: types.CodeType) -> Iterator[types.CodeType]:
    stack = [code]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(c for c in current.co_consts if isinstance(c, types.CodeType))


class _Tracker:
    """The per-shell state; one instance is installed at a time."""

    def __init__(self, ip: Any):
        self.ip = ip
        self.executions: list[_Execution] = []
        self.by_filename: dict[str, list[_Execution]] = {}
        self.class_bodies: "weakref.WeakKeyDictionary[type, types.CodeType]" = weakref.WeakKeyDictionary()
        self._code_index: dict[str, dict[int, _Execution]] = {}
        self._pending_info: Any = None
        self._parsed: tuple[str, ast.AST, set[int]] | None = None
        self.compiler = ip.compile
        self._original_cache: Callable[..., str] = ip.compile.cache
        self._original_run_code: Callable[..., Any] = ip.run_code
        self._original_build_class = builtins.__build_class__
        probe = self.compiler.get_code_name("pass\n", "pass\n", 0)
        if probe.startswith("<ipython-input-"):
            self.cell_prefix = "<ipython-input-"
        elif probe.startswith("<"):
            self.cell_prefix = probe  # an unknown naming scheme: only tracked names count as cells
        else:
            self.cell_prefix = os.path.dirname(probe) + os.sep

    # --- hooks ---------------------------------------------------------------------------------

    def pre_run_cell(self, info: Any) -> None:
        self._pending_info = info

    def cache(self, transformed_code: str, number: int = 0, raw_code: str | None = None) -> str:
        name = self._original_cache(transformed_code, number, raw_code=raw_code)
        info, self._pending_info = self._pending_info, None
        raw = transformed_code if raw_code is None else raw_code
        if info is not None and info.raw_cell == raw:
            count = number if info.store_history else None
            cell_id = info.cell_id
        else:
            count, cell_id = None, None
        if cell_id is None:
            cell_id = self._parent_cell_id()
        self.add(CellSource(raw, transformed_code, name, count, cell_id, _notebook_path(self.ip)))
        return name

    async def run_code(self, code_obj: Any, result: Any = None, *, async_: bool = False) -> Any:
        if isinstance(code_obj, types.CodeType):
            runs = self.by_filename.get(code_obj.co_filename)
            if runs:
                runs[-1].codes.append(code_obj)
                self._code_index.pop(code_obj.co_filename, None)
        return await self._original_run_code(code_obj, result, async_=async_)

    def parsed(self, source: Any, filename: str, tree: ast.AST) -> None:
        if filename == "<unknown>" and isinstance(source, str):
            self._parsed = (source, tree, set())

    def compile_name(self, source: Any, filename: str) -> str | None:
        """A tracked name for code ``%time``/``%%time`` compile from the cell text they parsed."""
        if filename not in _TIMED_NAMES or self._parsed is None or not isinstance(source, ast.AST):
            return None
        text, tree, ids = self._parsed
        if not ids:
            ids.update(id(node) for node in ast.walk(tree))
        top = source.body if isinstance(source, ast.Expression) else None
        nodes = [top] if top is not None else list(ast.iter_child_nodes(source))
        if not any(id(node) in ids for node in nodes):
            return None
        return _track_block(text, text, self)

    def build_class(self, func: Any, name: Any, *bases: Any, **kwds: Any) -> Any:
        cls = self._original_build_class(func, name, *bases, **kwds)
        code = getattr(func, "__code__", None)
        if code is not None and isinstance(cls, type) and self.is_cell_file(code.co_filename):
            try:
                self.class_bodies[cls] = code
            except TypeError:  # a metaclass whose classes cannot be weakly referenced
                pass
        return cls

    # --- records -------------------------------------------------------------------------------

    def add(self, source: CellSource, codes: list[types.CodeType] | None = None) -> _Execution:
        run = _Execution(source, list(codes or ()))
        self.executions.append(run)
        self.by_filename.setdefault(source.filename, []).append(run)
        self._code_index.pop(source.filename, None)
        return run

    def add_codes(self, filename: str, codes: list[types.CodeType]) -> None:
        runs = self.by_filename.get(filename)
        if not runs:
            raise LookupError(f"no tracked execution for {filename}")
        runs[-1].codes.extend(codes)
        self._code_index.pop(filename, None)

    def is_cell_file(self, filename: str) -> bool:
        return filename in self.by_filename or filename.startswith(self.cell_prefix)

    def _parent_cell_id(self) -> str | None:
        kernel = getattr(self.ip, "kernel", None)
        get_parent = getattr(kernel, "get_parent", None)
        parent = get_parent() if callable(get_parent) else getattr(self.ip, "parent_header", None)
        if not isinstance(parent, dict):
            return None
        cell_id = (parent.get("metadata") or {}).get("cellId")
        return cell_id if isinstance(cell_id, str) else None

    # --- queries -------------------------------------------------------------------------------

    def for_filename(self, filename: str) -> CellSource | None:
        runs = self.by_filename.get(filename)
        if runs:
            return runs[-1].source
        return self.recover(filename)

    def for_code(self, code: types.CodeType) -> CellSource | None:
        runs = self.by_filename.get(code.co_filename)
        if not runs:
            return self.recover(code.co_filename)
        if len(runs) > 1:
            index = self._code_index.get(code.co_filename)
            if index is None:
                index = {}
                for run in runs:  # later executions win (they cannot share code objects anyway)
                    for top in run.codes:
                        for c in _walk_codes(top):
                            index[id(c)] = run
                self._code_index[code.co_filename] = index
            run = index.get(id(code))
            if run is not None:
                return run.source
        # One execution under this name, or code compiled by an untracked execution of the same
        # text: the file name is a function of the text, so the source is the same either way.
        return runs[-1].source

    def recover(self, filename: str) -> CellSource | None:
        """A cell executed before tracking was installed, found in the input history by its file name.

        IPython keeps every compiled cell in ``linecache`` under its file name; the history holds the
        raw and transformed text of every numbered execution (trailing newlines stripped). A history
        entry is taken only when recomputing the file name from its text gives ``filename`` again.
        """
        history = getattr(self.ip, "history_manager", None)
        if history is None or not filename.startswith(self.cell_prefix):
            return None
        transformed = "".join(linecache.getlines(filename))
        if not transformed:
            return None
        raw_hist, parsed_hist = history.input_hist_raw, history.input_hist_parsed
        stripped = transformed.rstrip("\n")
        for n in range(min(len(raw_hist), len(parsed_hist)) - 1, 0, -1):  # latest first
            if parsed_hist[n] != stripped:
                continue
            for newlines in range(4):
                raw = raw_hist[n] + "\n" * newlines
                if self.compiler.get_code_name(raw, transformed, n) == filename:
                    return CellSource(raw, transformed, filename, n, None, _notebook_path(self.ip), recovered=True)
        return None

    def for_class(self, cls: type) -> CellSource | None:
        base = cls.__dict__.get("_wb_base")
        if isinstance(base, type):
            cls = base
        body = self.class_bodies.get(cls)
        if body is not None:
            return self.for_code(body)
        # Functions defined in the class body carry the cell's file name.
        prefix = cls.__qualname__ + "."
        for value in cls.__dict__.values():
            for fn in _functions_in(value):
                code = getattr(fn, "__code__", None)
                qualname = getattr(fn, "__qualname__", "")
                defined_here = qualname.startswith(prefix) and "." not in qualname[len(prefix):]
                if isinstance(code, types.CodeType) and defined_here and self.is_cell_file(code.co_filename):
                    return self.for_code(code)
        return None


def _functions_in(value: Any) -> Iterator[Any]:
    if isinstance(value, (staticmethod, classmethod)):
        yield value.__func__
    elif isinstance(value, property):
        yield from (f for f in (value.fget, value.fset, value.fdel) if f is not None)
    elif isinstance(value, types.FunctionType):
        yield value


def _notebook_path(ip: Any) -> str | None:
    path = os.environ.get("JPY_SESSION_NAME")
    if path:
        return path
    session = getattr(ip, "user_ns", {}).get("__session__")
    return session if isinstance(session, str) and session else None


_TRACKER: _Tracker | None = None

# ``%time``/``%%time`` compile the cell body under these shared pseudo file names, which keep no source.
_TIMED_NAMES = frozenset({"<timed exec>", "<timed eval>"})
_COMPILER_CLASSES: dict[type, type] = {}


def _tracking_compiler(base: type) -> type:
    """A subclass of the shell's compiler class that lets the tracker name ``%time`` code."""
    if base in _COMPILER_CLASSES:
        return _COMPILER_CLASSES[base]

    class TrackingCompiler(base):  # type: ignore[misc, valid-type]
        def ast_parse(self, source: Any, filename: str = "<unknown>", symbol: str = "exec") -> Any:
            tree = super().ast_parse(source, filename, symbol)
            if _TRACKER is not None:
                _TRACKER.parsed(source, filename, tree)
            return tree

        def __call__(self, source: Any, filename: str, symbol: str, **kwargs: Any) -> Any:
            name = _TRACKER.compile_name(source, filename) if _TRACKER is not None else None
            code = super().__call__(source, name or filename, symbol, **kwargs)
            if name is not None:
                _TRACKER.add_codes(name, [code])
            return code

    TrackingCompiler.__name__ = TrackingCompiler.__qualname__ = base.__name__
    TrackingCompiler._wb_base = base  # type: ignore[attr-defined]
    _COMPILER_CLASSES[base] = TrackingCompiler
    return TrackingCompiler


def _shell() -> Any:
    ipython = sys.modules.get("IPython")
    return ipython.get_ipython() if ipython is not None else None


def install(ip: Any) -> None:
    """Start recording every cell ``ip`` executes (idempotent; ``%load_ext workbench`` calls it)."""
    global _TRACKER
    if _TRACKER is not None:
        if _TRACKER.ip is ip:
            return
        uninstall(_TRACKER.ip)
    tracker = _Tracker(ip)
    ip.compile.cache = tracker.cache
    if "_wb_base" not in type(ip.compile).__dict__:
        ip.compile.__class__ = _tracking_compiler(type(ip.compile))
    ip.run_code = tracker.run_code
    builtins.__build_class__ = tracker.build_class
    ip.events.register("pre_run_cell", tracker.pre_run_cell)
    _TRACKER = tracker


def uninstall(ip: Any) -> None:
    """Stop recording; what was recorded so far is forgotten."""
    global _TRACKER
    tracker = _TRACKER
    if tracker is None or tracker.ip is not ip:
        return
    if ip.compile.__dict__.get("cache") == tracker.cache:
        del ip.compile.cache
    if "_wb_base" in type(ip.compile).__dict__:
        ip.compile.__class__ = type(ip.compile)._wb_base
    if ip.__dict__.get("run_code") == tracker.run_code:
        del ip.run_code
    if builtins.__build_class__ == tracker.build_class:
        builtins.__build_class__ = tracker._original_build_class
    try:
        ip.events.unregister("pre_run_cell", tracker.pre_run_cell)
    except ValueError:
        pass
    _TRACKER = None


def is_active() -> bool:
    """Whether cells of the running IPython shell are being recorded."""
    return _TRACKER is not None and _TRACKER.ip is _shell()


def _active() -> _Tracker | None:
    return _TRACKER if is_active() else None


def cell_for_filename(filename: str) -> CellSource | None:
    """The executed cell compiled under ``filename`` (a ``co_filename``); ``None`` if not a known cell.

    When the same text ran several times this is its latest execution; :func:`cell_for_code`
    tells the executions apart.
    """
    tracker = _active()
    return tracker.for_filename(filename) if tracker is not None else None


def cell_for_code(code: types.CodeType) -> CellSource | None:
    """The execution that compiled ``code`` (a function's ``__code__``), exactly."""
    tracker = _active()
    return tracker.for_code(code) if tracker is not None else None


def cell_for_class(cls: type) -> CellSource | None:
    """The execution whose ``class`` statement created the live class object ``cls``.

    ``None`` when that cannot be known exactly (the class was created before tracking was
    installed and has no function defined in its body, or it was not made by a ``class`` statement).
    """
    tracker = _active()
    return tracker.for_class(cls) if tracker is not None else None


def class_body_code(cls: type) -> types.CodeType | None:
    """The code object of the ``class`` statement body that created ``cls``, when it was traced.

    Its ``co_firstlineno`` is the line of that statement (or its first decorator) in
    ``cell_for_class(cls).transformed``: it tells apart two classes of the same name in one cell.
    """
    tracker = _active()
    if tracker is None:
        return None
    base = cls.__dict__.get("_wb_base")
    return tracker.class_bodies.get(base if isinstance(base, type) else cls)


def untracked_reason(cls: type) -> str | None:
    """Why no cell is known for a notebook class (for error messages); ``None`` when one is known.

    >>> untracked_reason(int) is None   # not a notebook class
    True
    """
    if getattr(cls, "__module__", None) != "__main__" or _active() is None or cell_for_class(cls) is not None:
        return None
    return (
        f"class {cls.__qualname__} was not created by a class statement in a cell executed while workbench "
        "cell tracking was on (it ran before `import workbench` / `%load_ext workbench`, or was made by "
        "type(), make_dataclass() or dataclass(slots=True)), and no method defined in its body names its cell; "
        "re-run the cell that defines it"
    )


def cells() -> list[CellSource]:
    """Every tracked execution, in execution order."""
    tracker = _active()
    return [run.source for run in tracker.executions] if tracker is not None else []


def _track_block(raw: str, transformed: str, tracker: "_Tracker | None" = None) -> str:
    """Compile-name and record a block of code run by a magic (``%%pipeline`` bodies).

    The block gets its own file name (registered in ``linecache`` so ``inspect`` finds it) and a
    record carrying the enclosing cell's raw text, execution count and cell id.
    """
    tracker = tracker or _active()
    if tracker is None:
        raise RuntimeError("workbench cell tracking is not active in this shell")
    outer = tracker.executions[-1].source if tracker.executions else None
    number = (outer.execution_count or 0) if outer else 0
    name = tracker._original_cache(transformed, number, raw_code=transformed)
    tracker.add(
        CellSource(
            outer.raw if outer else raw,
            transformed,
            name,
            outer.execution_count if outer else None,
            outer.cell_id if outer else None,
            _notebook_path(tracker.ip),
        )
    )
    return name


def _add_codes(filename: str, codes: list[types.CodeType]) -> None:
    tracker = _active()
    if tracker is not None:
        tracker.add_codes(filename, codes)

