"""Fixtures of the serving tests: bundles of tests/serving/pipelines.py and real servers in subprocesses."""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from workbench.bundle import save

HERE = Path(__file__).resolve().parent
WORKBENCH = Path(sys.executable).parent / "workbench"


@pytest.fixture(scope="session")
def pipelines():
    spec = importlib.util.spec_from_file_location("serving_pipelines", HERE / "pipelines.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["serving_pipelines"] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("serving_pipelines", None)


@pytest.fixture(scope="session")
def bundles(pipelines, tmp_path_factory):
    root = tmp_path_factory.mktemp("serving")
    return {name: save(getattr(pipelines, name), root / f"{name}.wb") for name in ("scorer", "lookup", "unbatched")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    """A ``workbench serve`` subprocess on 127.0.0.1 and its URL."""

    def __init__(self, bundle: Path, *flags: str, ready_within: float = 90):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(bundle.parent / f"serve-{self.port}.log", "w+")
        self.process = subprocess.Popen(
            [str(WORKBENCH), "serve", str(bundle), "--port", str(self.port), *flags],
            stdout=self.log, stderr=subprocess.STDOUT, env=dict(os.environ),
        )
        deadline = time.monotonic() + ready_within
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}:\n{self.output()}")
            try:
                if httpx.get(self.url + "/ready", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"the server was not ready within {ready_within} s:\n{self.output()}")
            time.sleep(0.1)

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode
