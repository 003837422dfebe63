"""Helpers for the command-line tests: the installed ``workbench`` console script in a subprocess
(``run_cli``), or its ``main`` in this process (``call_cli``) for checks of the command line itself."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

WORKBENCH = Path(sys.executable).parent / "workbench"
REPO = Path(__file__).resolve().parents[2]


def run_cli(*args: object, cwd: Path | None = None, input: str | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess:
    """``workbench ARGS...`` in a subprocess; stdout and stderr captured as text."""
    env = dict(os.environ)
    env.setdefault("MPLBACKEND", "Agg")
    return subprocess.run([str(WORKBENCH), *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          input=input, timeout=timeout, env=env)


def call_cli(*args: object, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``workbench ARGS...`` run by ``workbench.cli.main`` in this process, with what ``run_cli`` gives.

    For argument and usage errors, which the command finds before it loads a bundle or starts a
    kernel: milliseconds here against seconds for a fresh interpreter.
    """
    from workbench.cli import main

    argv = [str(a) for a in args]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.chdir(cwd or Path.cwd()), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse: --help, or a command line it refuses
            code = 0 if exc.code is None else exc.code
    return subprocess.CompletedProcess(["workbench", *argv], code, out.getvalue(), err.getvalue())
