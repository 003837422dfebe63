"""Run a notebook headless in a real kernel and print what it produced, cell by cell.

    python notebooks/run.py notebooks/quickstart.ipynb      # what `make demo` runs

Every code cell runs in order in a fresh Jupyter kernel (nbclient), in the notebook's own
directory, as it would in JupyterLab. Each cell's printed text, results and errors are written out
as the cell finishes; rich outputs without a text form are named by their type (``[image/png]``).
The notebook file itself is left untouched.

Exit status: 0 when every cell ran; 1 when a cell failed, with a message naming the cell (its
position in the notebook and its first line) and the error; 2 when the notebook cannot be read.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

__all__ = ["run", "main", "NotebookFailed"]

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _first_line(source: str) -> str:
    for line in source.splitlines():
        if line.strip():
            return line.strip()
    return "(empty cell)"


def _output_text(output: Any) -> str:
    """The text form of one cell output."""
    kind = output.get("output_type")
    if kind == "stream":
        return output.get("text", "")
    if kind in ("execute_result", "display_data"):
        data = output.get("data", {})
        rich = [f"[{mime}]" for mime in data if mime != "text/plain" and not mime.startswith("text/")]
        text = data.get("text/plain")
        if rich and (text is None or text.startswith("<")):  # a figure or widget: say what it is
            return " ".join(rich) + (f" {text}" if text else "") + "\n"
        return (text if text is not None else " ".join(rich)) + "\n"
    if kind == "error":
        return f"{output.get('ename')}: {output.get('evalue')}\n"
    return ""


class _Printer:
    """nbclient hooks that print each code cell's outputs as soon as the cell has run."""

    def __init__(self, out: Any, total: int):
        self.out, self.total = out, total
        self.current: tuple[int, str] | None = None
        self.started = 0.0

    def cell_start(self, cell: Any, cell_index: int, **_: Any) -> None:
        self.current = (cell_index, cell.source)
        self.started = time.perf_counter()

    def cell_executed(self, cell: Any, cell_index: int, **_: Any) -> None:
        texts = [_output_text(o) for o in cell.get("outputs", [])]
        if not any(texts):
            return
        seconds = time.perf_counter() - self.started
        self.out.write(f"--- cell {cell_index + 1}/{self.total} ({seconds:.1f} s): {_first_line(cell.source)}\n")
        for text in texts:
            self.out.write(text)
        self.out.flush()


def run(path: Path, *, timeout: int = 600, kernel_name: str | None = None, out: Any = sys.stdout) -> None:
    """Execute the notebook at ``path``, printing outputs to ``out``; raises on the first failing cell.

    >>> run(Path("notebooks/quickstart.ipynb"))  # doctest: +SKIP
    """
    nb = nbformat.read(path, as_version=4)
    printer = _Printer(out, len(nb.cells))
    options: dict[str, Any] = {}
    if kernel_name:
        options["kernel_name"] = kernel_name
    client = NotebookClient(
        nb, timeout=timeout, allow_errors=False,
        resources={"metadata": {"path": str(path.parent.resolve())}},
        on_cell_start=printer.cell_start, on_cell_executed=printer.cell_executed,
        **options,
    )
    try:
        client.execute()
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as exc:
        raise NotebookFailed(path, printer.current, exc) from exc


class NotebookFailed(Exception):
    """A cell of the notebook failed: which one, and why."""

    def __init__(self, path: Path, cell: tuple[int, str] | None, error: Exception):
        self.path, self.cell, self.error = path, cell, error
        where = (f"cell {cell[0] + 1} ({_first_line(cell[1])!r})" if cell is not None else "before the first cell")
        if isinstance(error, CellExecutionError):
            why = f"{error.ename}: {error.evalue}"
        elif isinstance(error, CellTimeoutError):
            why = "timed out"
        else:
            why = f"the kernel died ({type(error).__name__})"
        super().__init__(f"{path}: {where} failed: {why}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run a notebook headless and print its outputs.")
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--timeout", type=int, default=600, help="seconds allowed per cell (default 600)")
    parser.add_argument("--kernel", default=None, help="kernel name (default: the notebook's own)")
    args = parser.parse_args(argv)

    try:
        nbformat.read(args.notebook, as_version=4)
    except FileNotFoundError:
        print(f"error: no notebook at {args.notebook}", file=sys.stderr)
        return 2
    except Exception as exc:  # nbformat raises several kinds for unreadable files
        print(f"error: cannot read {args.notebook} as a notebook: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2

    start = time.perf_counter()
    try:
        run(args.notebook, timeout=args.timeout, kernel_name=args.kernel)
    except NotebookFailed as exc:
        if isinstance(exc.error, CellExecutionError):
            report = str(exc.error)  # the cell and its traceback, as the kernel reported them
            sys.stderr.write((report if sys.stderr.isatty() else _ANSI.sub("", report)) + "\n")
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"--- {args.notebook}: every cell ran in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
