"""Helpers for the command-line tests: they run the installed ``workbench`` console script."""

from __future__ import annotations

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
