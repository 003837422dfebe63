"""Notebook to bundle: run a notebook headless in a real kernel, then save one of its pipelines.

:func:`export_notebook` starts a fresh IPython kernel (``nbclient``) in the notebook's directory,
loads the workbench extension in it *before* the first cell (so every cell is tracked; the notebook
file itself is never modified), runs the code cells in order and stops at the first one that fails.
It then saves pipeline ``name`` from inside that kernel with :func:`workbench.save`: the registered
pipeline of that name (``%%pipeline name``), else a variable of that name holding a workbench
pipeline.

Failures raise an :class:`~workbench.errors.ExportError` subclass (from :mod:`workbench.errors`) and
write nothing: :class:`NotebookFailed` (which cell, its first line, the error's type and message),
:class:`PipelineNotFound` (lists the registered names and the pipeline variables that do exist),
:class:`SaveFailed` (``save`` refused, or ``check`` found different outputs).

Check inputs (``check=True``): ``check_inputs`` is a Python expression evaluated in the kernel after
the notebook ran; it gives a list of example inputs (a tuple, or a tensor/array split along its first
dimension, works too). Without it, the ``--check EXPR`` of the ``%%pipeline name`` cell that built
the pipeline is evaluated again and used as the one example input. The bundle is then loaded in a
fresh process on those inputs and must reproduce the kernel's outputs (``save(..., check=...)``).

Warnings (``ExportResult.warnings``, also sent to ``progress``): the notebook's saved execution
counts are not in top-to-bottom order; a cell that uses ``name`` shows a different output in the
run than in the saved notebook; a cell of the notebook saves to ``out`` — such saves are skipped
(``EXPORT_OUT_ENV`` is set in the kernel), so only the export writes ``out``, and only its own
``overwrite`` replaces an existing bundle there.

>>> result = export_notebook("train.ipynb", "classifier", "classifier.wb",
...                          progress=print)   # doctest: +SKIP
[1/4] cell 2: import torch
...
"""

from __future__ import annotations

import json
import os
import re
import signal
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from ._text import shorten
from .errors import NotebookFailed, PipelineNotFound, SaveFailed

__all__ = [
    "ExportResult",
    "export_notebook",
    "execution_order_warning",
    "EXPORT_OUT_ENV",
]

_RESULT_MARKER = "@@workbench-export-result@@ "
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass
class ExportResult:
    """What :func:`export_notebook` did: the bundle path, where the pipeline came from, timings."""

    path: Path
    name: str
    found_in: str  # "registry" or "variable"
    cells: int
    seconds: float
    checked: int = 0
    executed: Path | None = None
    warnings: list[str] = field(default_factory=list)


def export_notebook(
    notebook: str | os.PathLike[str],
    name: str,
    out: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    check: bool = False,
    check_inputs: str | None = None,
    timeout: int | None = None,
    executed: str | os.PathLike[str] | None = None,
    kernel_name: str = "python3",
    progress: Callable[[str], None] | None = None,
) -> ExportResult:
    """Run ``notebook`` in a fresh kernel and save its pipeline ``name`` as a bundle at ``out``.

    ``timeout`` limits each of the notebook's cells (whole seconds, as Jupyter's clients count them;
    ``None``: no limit). ``executed`` also writes the executed
    notebook, outputs included, to that path (only when the export succeeds). ``progress`` receives
    one line per code cell before it runs.

    Errors found before any kernel starts are ``FileNotFoundError`` (no such notebook),
    ``FileExistsError`` (``out`` exists and not ``overwrite``) and ``ValueError`` (not a notebook, a
    bad name); later ones are :class:`ExportError` subclasses. Nothing is written on any error.
    """
    import nbformat

    started = time.monotonic()
    notebook = Path(notebook).resolve()
    out = Path(os.path.abspath(out))
    executed = Path(os.path.abspath(executed)) if executed is not None else None
    if not name.isidentifier():
        raise ValueError(f"pipeline name {name!r} is not a Python identifier")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 1):
        raise ValueError(f"timeout={timeout!r}: give a whole number of seconds, at least 1 (or None: no limit)")
    if not notebook.exists():
        raise FileNotFoundError(f"notebook {str(notebook)!r} does not exist")
    if notebook.is_dir():
        raise ValueError(f"notebook {str(notebook)!r} is a directory, not a .ipynb file")
    from .bundle.writer import is_bundle

    if os.path.lexists(out) and not overwrite:
        raise FileExistsError(f"{str(out)!r} already exists; pass --overwrite (overwrite=True) to replace it")
    if os.path.lexists(out) and not is_bundle(out):  # a folder that merely holds a manifest.json is not one
        raise FileExistsError(f"{str(out)!r} exists and is not a bundle; --overwrite only replaces bundles")
    if executed is not None and executed.exists() and not overwrite:
        raise FileExistsError(f"{str(executed)!r} already exists; pass --overwrite (overwrite=True) to replace it")
    _check_kernel(kernel_name)
    try:
        nb = nbformat.read(str(notebook), as_version=4)
    except Exception as exc:  # nbformat raises JSON, validation and reader errors alike
        raise ValueError(f"{str(notebook)!r} is not a readable notebook ({type(exc).__name__}: {exc})") from None

    code_cells = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code" and cell.source.strip()]
    say = progress or (lambda line: None)
    notes: list[str] = []

    def warn(message: str) -> None:
        notes.append(message)
        say(f"warning: {message}")

    order = execution_order_warning(nb)
    if order:
        warn(order)
    stored = _shown_outputs(nb, code_cells, name)
    client = _client(nb, notebook, timeout, kernel_name)
    env = dict(os.environ)
    env["JPY_SESSION_NAME"] = str(notebook)
    env[EXPORT_OUT_ENV] = str(out)  # saves by the notebook's own cells to `out` are skipped
    with tempfile.TemporaryFile(mode="w+b") as kernel_log:
        try:
            result = _run_notebook(client, nb, code_cells, env, kernel_log, name, out, overwrite=overwrite,
                                   check=bool(check or check_inputs), check_inputs=check_inputs, say=say)
        except NotebookFailed as exc:
            if exc.error_type in ("DeadKernelError", "KernelStartError"):
                exc.args = (exc.args[0] + _log_tail(kernel_log),)
            raise
    if not result:
        raise NotebookFailed(f"saving {name!r}: the kernel reported no result")
    if not result.get("ok"):
        if result.get("kind") == "missing":
            raise PipelineNotFound(result["message"], registered=result["registered"], variables=result["variables"])
        raise SaveFailed(result["message"], error_type=result.get("error_type", ""),
                         traceback=result.get("traceback", ""))
    for message in _skipped_saves(nb, code_cells) + _output_differences(nb, stored, name):
        warn(message)
    if executed is not None:
        _write_notebook(nb, executed)
    return ExportResult(
        path=Path(result["path"]),
        name=name,
        found_in=result["found_in"],
        cells=len(code_cells),
        seconds=time.monotonic() - started,
        checked=result.get("checked", 0),
        executed=executed,
        warnings=notes,
    )


# --- what the saved notebook says about itself ---------------------------------------------------

EXPORT_OUT_ENV = "WORKBENCH_EXPORT_OUT"
"""Set in the exporting kernel to the export's output path: the notebook's own saves to it are skipped."""

_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")


def execution_order_warning(nb: Any) -> str | None:
    """A warning when the saved execution counts do not increase from top to bottom, else None.

    The export runs the cells top to bottom; a notebook last run in another order may have built a
    different pipeline in the author's kernel.
    """
    counts = [(i + 1, cell.get("execution_count")) for i, cell in enumerate(nb.cells)
              if cell.cell_type == "code" and cell.source.strip() and cell.get("execution_count") is not None]
    swaps = [(a, b) for a, b in zip(counts, counts[1:]) if b[1] <= a[1]]
    if not swaps:
        return None
    shown = ", ".join(f"cell {a[0]} ran as [{a[1]}] but cell {b[0]} below it as [{b[1]}]" for a, b in swaps[:3])
    more = f" and {len(swaps) - 3} more" if len(swaps) > 3 else ""
    return (f"the notebook was last run out of order ({shown}{more}); the export runs it top to bottom, so the "
            "pipeline it saves may differ from the one in the kernel it was saved from")


def _output_text(cell: Any) -> str:
    """What a cell shows: its result's text/plain and what it printed (addresses and colours removed)."""
    parts = []
    for output in cell.get("outputs", []):
        kind = output.get("output_type")
        if kind in ("execute_result", "display_data"):
            text = output.get("data", {}).get("text/plain", "")
            parts.append(text if isinstance(text, str) else "".join(text))
        elif kind == "stream" and output.get("name") == "stdout":
            text = output.get("text", "")
            parts.append(text if isinstance(text, str) else "".join(text))
    return _ADDRESS.sub("0x…", _clean("".join(parts))).strip()


def _shown_outputs(nb: Any, code_cells: list[int], name: str) -> dict[int, str]:
    """The stored output of every code cell that uses pipeline ``name`` and shows something."""
    uses = re.compile(rf"\b{re.escape(name)}\b")
    shown = {}
    for index in code_cells:
        cell = nb.cells[index]
        if uses.search(cell.source):
            text = _output_text(cell)
            if text:
                shown[index] = text
    return shown


def _output_differences(nb: Any, stored: dict[int, str], name: str) -> list[str]:
    """A warning for each cell using ``name`` whose output differs between the saved notebook and the run."""
    out = []
    for index, before in stored.items():
        after = _output_text(nb.cells[index])
        if after != before:
            out.append(f"cell {index + 1} ({_first_line(nb.cells[index].source)!r}) uses {name!r} and showed "
                       f"{_short(before)} in the saved notebook but {_short(after)} in the export run: the exported "
                       "pipeline may not be the one the notebook was saved with")
    return out


def _skipped_saves(nb: Any, code_cells: list[int]) -> list[str]:
    out = []
    for index in code_cells:
        for output in nb.cells[index].get("outputs", []):
            if output.get("output_type") == "stream" and _SKIPPED_MARK in output.get("text", ""):
                out.append(f"cell {index + 1} ({_first_line(nb.cells[index].source)!r}) saves to the export's "
                           "output path; that save was skipped (the export writes the bundle itself)")
                break
    return out


_SKIPPED_MARK = "is the output of the running `workbench export`"


def _short(text: str, limit: int = 80) -> str:
    return repr(shorten(" ".join(text.split()), limit, "..."))


def _run_notebook(client: Any, nb: Any, code_cells: list[int], env: dict[str, str], kernel_log: Any, name: str,
                  out: Path, *, overwrite: bool, check: bool, check_inputs: str | None,
                  say: Callable[[str], None]) -> dict[str, Any]:
    say(f"starting a {client.kernel_name!r} kernel in {Path(client.resources['metadata']['path'])}")
    try:
        context = client.setup_kernel(env=env, stderr=kernel_log)
        context.__enter__()
    except Exception as exc:  # jupyter_client raises RuntimeError, TimeoutError, OSError, ...
        raise NotebookFailed(f"the kernel {client.kernel_name!r} did not start: {type(exc).__name__}: {exc}",
                             error_type="KernelStartError", error_message=str(exc)) from None
    try:
        with _interrupts(client) as interrupted:
            try:
                _shim_cell_ids(client)
                _run_hidden(client, "%load_ext workbench", "loading the workbench extension")
                for k, index in enumerate(code_cells, 1):
                    cell = nb.cells[index]
                    say(f"[{k}/{len(code_cells)}] cell {index + 1}: {_first_line(cell.source)}")
                    _run_cell(client, cell, index)
                    if interrupted:
                        raise KeyboardInterrupt
                say(f"saving {name!r} to {out}" + (" (with check)" if check else ""))
                result = _run_hidden(
                    client,
                    "__import__('workbench.export', fromlist=['_'])._save_in_kernel("
                    f"{name!r}, {str(out)!r}, overwrite={overwrite!r}, check={check!r}, "
                    f"check_inputs={check_inputs!r})",
                    f"saving {name!r}",
                )
            except NotebookFailed:
                if interrupted:
                    raise KeyboardInterrupt from None
                raise
            if interrupted:
                raise KeyboardInterrupt
            return result
    except BaseException:
        client.shutdown_kernel = "immediate"  # a cell may still be running: do not wait for it
        raise
    finally:
        context.__exit__(None, None, None)


@contextmanager
def _interrupts(client: Any) -> Iterator[list[bool]]:
    """Ctrl-C interrupts the kernel's running cell (as in JupyterLab) and then stops the export.

    The yielded list becomes non-empty once SIGINT arrived; callers raise ``KeyboardInterrupt``
    when the interrupted cell has returned, so the kernel is shut down cleanly.
    """
    flag: list[bool] = []
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def on_sigint(signum: int, frame: Any) -> None:
        flag.append(True)
        pid = getattr(getattr(client.km, "provisioner", None), "pid", None)
        if pid:
            try:
                os.kill(pid, signal.SIGINT)
            except OSError:
                pass

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def _log_tail(log: Any, lines: int = 15) -> str:
    log.flush()
    log.seek(0)
    text = log.read().decode("utf-8", "replace")
    kept = [line for line in text.splitlines() if "running over TCP without encryption" not in line]
    return ("\nkernel output:\n" + "\n".join(kept[-lines:])) if kept else ""


def _check_kernel(kernel_name: str) -> None:
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    manager = KernelSpecManager()
    try:
        manager.get_kernel_spec(kernel_name)
    except NoSuchKernel:
        known = ", ".join(sorted(manager.find_kernel_specs())) or "none"
        raise ValueError(f"no Jupyter kernel named {kernel_name!r}; installed kernels: {known}") from None


def _client(nb: Any, notebook: Path, timeout: int | None, kernel_name: str) -> Any:
    from nbclient import NotebookClient

    return NotebookClient(
        nb,
        timeout=timeout,
        kernel_name=kernel_name,
        allow_errors=False,
        record_timing=True,
        resources={"metadata": {"path": str(notebook.parent)}},
    )


def _shim_cell_ids(client: Any) -> None:
    """Send each cell's id in the request metadata, as JupyterLab does, so tracking records it.

    ``nbclient`` sends none; the cell ids then appear in the bundle's manifest like they do for a
    bundle saved from JupyterLab.
    """
    kc = client.kc

    def execute(code: str, silent: bool = False, store_history: bool = True, user_expressions: Any = None,
                allow_stdin: bool | None = None, stop_on_error: bool = True) -> str:
        content = {
            "code": code,
            "silent": silent,
            "store_history": store_history,
            "user_expressions": user_expressions or {},
            "allow_stdin": kc.allow_stdin if allow_stdin is None else allow_stdin,
            "stop_on_error": stop_on_error,
        }
        msg = kc.session.msg("execute_request", content)
        cell_id = getattr(kc, "_wb_cell_id", None)
        if cell_id:
            msg["metadata"]["cellId"] = cell_id
        kc.shell_channel.send(msg)
        return msg["header"]["msg_id"]

    kc._wb_cell_id = None
    kc.execute = execute


def _run_cell(client: Any, cell: Any, index: int) -> None:
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    where = f"cell {index + 1} ({_first_line(cell.source)!r})"
    client.kc._wb_cell_id = cell.get("id")
    try:
        client.execute_cell(cell, index)
    except CellExecutionError as exc:
        message = _clean(str(exc.evalue)).strip()
        raise NotebookFailed(
            f"{where} failed: {exc.ename}: {message}" if message else f"{where} failed: {exc.ename}",
            cell=index + 1, first_line=_first_line(cell.source), error_type=exc.ename,
            error_message=message, traceback=_traceback(cell),
        ) from None
    except CellTimeoutError:
        raise NotebookFailed(
            f"{where} did not finish within {client.timeout} seconds (--timeout)",
            cell=index + 1, first_line=_first_line(cell.source), error_type="TimeoutError",
            error_message=f"timed out after {client.timeout} seconds",
        ) from None
    except DeadKernelError as exc:
        raise NotebookFailed(
            f"{where}: the kernel died while running it ({exc})",
            cell=index + 1, first_line=_first_line(cell.source), error_type="DeadKernelError",
            error_message=str(exc),
        ) from None


def _run_hidden(client: Any, code: str, what: str) -> dict[str, Any]:
    """Run code that is not part of the notebook (no history entry, no cell id); parse its result.

    ``--timeout`` limits the notebook's own cells: this code (loading workbench, which imports torch;
    saving, which may check the bundle in a fresh interpreter) runs without that limit.
    """
    from nbclient.exceptions import CellExecutionError, DeadKernelError
    from nbformat.v4 import new_code_cell

    cell = new_code_cell(code)
    # nbclient stores the executed cell back at its index: give it a slot of its own, then drop it.
    client.nb.cells.append(cell)
    client.kc._wb_cell_id = None
    limit, client.timeout = client.timeout, None
    try:
        client.execute_cell(cell, len(client.nb.cells) - 1, store_history=False)
    except CellExecutionError as exc:
        raise NotebookFailed(f"{what} in the kernel failed: {exc.ename}: {_clean(str(exc.evalue))}",
                             error_type=exc.ename, error_message=_clean(str(exc.evalue)),
                             traceback=_traceback(cell)) from None
    except DeadKernelError as exc:
        raise NotebookFailed(f"the kernel died while {what} ({exc})", error_type="DeadKernelError",
                             error_message=str(exc)) from None
    finally:
        client.timeout = limit
        client.nb.cells.remove(cell)
    for output in cell.outputs:
        if output.get("output_type") == "stream" and output.get("name") == "stdout":
            for line in output.get("text", "").split("\n"):
                if line.startswith(_RESULT_MARKER):
                    return json.loads(line[len(_RESULT_MARKER):])
    return {}


def _traceback(cell: Any) -> str:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return _clean("\n".join(output.get("traceback", [])))
    return ""


def _clean(text: str) -> str:
    return _ANSI.sub("", text)


def _first_line(source: str, limit: int = 60) -> str:
    lines = [line.strip() for line in source.splitlines() if line.strip()]
    line = lines[0] if lines else ""
    return shorten(line, limit, "...")


def _write_notebook(nb: Any, path: Path) -> None:
    import nbformat

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    nbformat.write(nb, str(partial))
    os.replace(partial, path)


# --- runs inside the kernel ----------------------------------------------------------------------


def _save_in_kernel(name: str, out: str, *, overwrite: bool, check: bool, check_inputs: str | None) -> None:
    """Look ``name`` up, save it, and print one marked JSON line the exporting process reads."""
    result: dict[str, Any]
    try:
        result = _find_and_save(name, out, overwrite=overwrite, check=check, check_inputs=check_inputs)
    except Exception as exc:  # reported to the exporting process, which turns it into SaveFailed
        import traceback

        message = str(exc).strip()
        result = {
            "ok": False,
            "kind": "save",
            "error_type": type(exc).__name__,
            "message": f"saving {name!r} failed: {type(exc).__name__}: {message}" if message
            else f"saving {name!r} failed: {type(exc).__name__}",
            "traceback": "".join(traceback.format_exception(exc)),
        }
    print(_RESULT_MARKER + json.dumps(result), flush=True)


def _find_and_save(name: str, out: str, *, overwrite: bool, check: bool, check_inputs: str | None) -> dict[str, Any]:
    from IPython import get_ipython

    from . import registry

    namespace = get_ipython().user_ns
    try:
        pipeline, found_in = registry.lookup(name, namespace)
    except PipelineNotFound as exc:
        return {"ok": False, "kind": "missing", "message": str(exc), "registered": exc.registered,
                "variables": exc.variables}
    inputs = _check_inputs(name, namespace, check_inputs) if check else None
    from .bundle import save

    os.environ.pop(EXPORT_OUT_ENV, None)  # from here on it is the export itself that saves
    path = save(pipeline, out, overwrite=overwrite, check=inputs)
    return {"ok": True, "path": str(path), "found_in": found_in, "checked": len(inputs or [])}


def _check_inputs(name: str, namespace: dict[str, Any], expression: str | None) -> list[Any]:
    if expression is None:
        expression = _recorded_check(name)
        if expression is None:
            raise ValueError(
                f"--check needs example inputs: pass --check-inputs EXPR (a list of inputs, evaluated in the "
                f"notebook after it ran), or build {name!r} in a '%%pipeline {name} --check EXPR' cell"
            )
        return [_evaluate(expression, namespace, f"the --check expression {expression!r} of %%pipeline {name}")]
    value = _evaluate(expression, namespace, f"--check-inputs {expression!r}")
    if isinstance(value, (list, tuple)):
        inputs = list(value)
    elif hasattr(value, "shape") and len(getattr(value, "shape", ())) > 0:
        inputs = list(value)
    else:
        raise TypeError(f"--check-inputs {expression!r} gives a {type(value).__name__}; it must give a list of "
                        "inputs (a list or tuple, or a tensor/array whose first dimension indexes the inputs)")
    if not inputs:
        raise ValueError(f"--check-inputs {expression!r} gives no inputs")
    return inputs


def _recorded_check(name: str) -> str | None:
    """The ``--check EXPR`` of the latest tracked ``%%pipeline name`` cell, if it had one."""
    from . import tracking
    from .magics import PipelineMagics

    parser = PipelineMagics.pipeline.parser
    for cell in reversed(tracking.cells()):
        first = cell.raw.lstrip().split("\n", 1)[0].strip()
        if not first.startswith("%%pipeline"):
            continue
        try:
            args = parser.parse_argstring(first[len("%%pipeline"):])
        except BaseException:  # argparse exits on bad arguments; such a cell did not build the pipeline
            continue
        if args.name == name:
            return args.check
    return None


def _evaluate(expression: str, namespace: dict[str, Any], what: str) -> Any:
    try:
        return eval(expression, namespace)
    except Exception as exc:
        raise ValueError(f"evaluating {what} in the notebook failed: {type(exc).__name__}: {exc}") from None
