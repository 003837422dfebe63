"""Real kernels for the tracking tests: drive a kernel cell by cell, and load bundles in fresh processes.

``Kernel`` talks to an ipykernel through jupyter_client, so a test chooses the order cells run in
and the cell id each execute request carries (as JupyterLab sends it). ``load_and_compare`` loads
bundles in fresh interpreters (one forked child per bundle from a parent that has imported nothing
but torch, numpy, pandas and workbench) and compares outputs with what the kernel computed.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_client.manager import start_new_kernel

HERE = Path(__file__).parent
REPO = HERE.parent.parent


@dataclass
class CellResult:
    code: str
    status: str = "ok"
    stdout: str = ""
    stderr: str = ""
    ename: str | None = None
    evalue: str | None = None
    traceback: str = ""
    results: list[dict[str, Any]] = field(default_factory=list)
    execution_count: int | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def text(self) -> str:
        plain = "".join(r.get("text/plain", "") for r in self.results)
        return self.stdout + plain


class Kernel:
    """One ipykernel process; ``run`` executes a cell and collects what it printed, returned or raised."""

    def __init__(self, env: dict[str, str] | None = None):
        full_env = dict(os.environ)
        full_env.update(env or {})
        full_env.setdefault("MPLBACKEND", "Agg")
        self.km, self.kc = start_new_kernel(kernel_name="python3", env=full_env, cwd=str(REPO))

    def run(self, code: str, cell_id: str | None = None, timeout: float = 180) -> CellResult:
        content = {
            "code": code,
            "silent": False,
            "store_history": True,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": False,
        }
        metadata = {"cellId": cell_id} if cell_id else {}
        msg = self.kc.session.msg("execute_request", content, metadata=metadata)
        self.kc.shell_channel.send(msg)
        msg_id = msg["header"]["msg_id"]
        result = CellResult(code)
        while True:
            try:
                reply = self.kc.get_iopub_msg(timeout=timeout)
            except queue.Empty:
                raise TimeoutError(f"cell did not finish in {timeout}s:\n{code}") from None
            if reply["parent_header"].get("msg_id") != msg_id:
                continue
            kind, body = reply["msg_type"], reply["content"]
            if kind == "stream":
                if body["name"] == "stdout":
                    result.stdout += body["text"]
                else:
                    result.stderr += body["text"]
            elif kind in ("execute_result", "display_data"):
                result.results.append(body["data"])
            elif kind == "error":
                result.status = "error"
                result.ename, result.evalue = body["ename"], body["evalue"]
                result.traceback = "\n".join(body["traceback"])
            elif kind == "status" and body["execution_state"] == "idle":
                break
        while True:
            shell = self.kc.get_shell_msg(timeout=timeout)
            if shell["parent_header"].get("msg_id") == msg_id:
                break
        reply = shell["content"]
        result.execution_count = reply.get("execution_count")
        if reply["status"] != "ok":  # e.g. a UsageError, which IPython prints without an error message
            result.status = reply["status"]
            result.ename = result.ename or reply.get("ename")
            result.evalue = result.evalue or reply.get("evalue")
        return result

    def ok(self, code: str, cell_id: str | None = None) -> CellResult:
        """Run a cell that must succeed."""
        result = self.run(code, cell_id)
        assert result.ok, f"cell failed: {result.ename}: {result.evalue}\n{code}\n{_strip_ansi(result.traceback)}"
        return result

    def json(self, expression: str) -> Any:
        """Evaluate ``expression`` in the kernel and return its value through JSON."""
        result = self.ok(f"import json as _json\nprint(_json.dumps({expression}))")
        return json.loads(result.stdout.strip().splitlines()[-1])

    def shutdown(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


def _strip_ansi(text: str) -> str:
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def load_and_compare(cases: list[dict[str, str]], fork: bool = True, timeout: float = 300) -> dict[str, dict]:
    """Load each ``{"name", "bundle", "expected"}`` bundle in a fresh process and compare its outputs.

    Returns ``{name: {"ok": bool, "detail": str}}``.
    """
    spec = json.dumps(cases)
    args = [sys.executable, str(HERE / "_load_compare.py"), spec] + ([] if fork else ["--no-fork"])
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd="/")
    found: dict[str, dict] = {}
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            found[entry["name"]] = entry
    missing = [c["name"] for c in cases if c["name"] not in found]
    assert not missing, f"no result for {missing}; exit {proc.returncode}\n{proc.stderr[-4000:]}"
    return found
