"""Starting and stopping ``workbench serve``: a bad bundle refuses to start, SIGTERM drains."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import threading
import time

import httpx
import pytest

from .conftest import WORKBENCH, Served, free_port

pytestmark = pytest.mark.slow


def test_a_bundle_failing_its_hash_check_exits_3_naming_the_file(bundles, tmp_path):
    bad = tmp_path / "bad.wb"
    shutil.copytree(bundles["scorer"], bad)
    source = bad / "source.py"
    text = source.read_text()
    source.write_text(text.replace("0.", "1.", 1))  # same size, another hash
    port = free_port()
    result = subprocess.run([str(WORKBENCH), "serve", str(bad), "--port", str(port)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 3
    assert "source.py" in result.stderr and "modified" in result.stderr
    missing = subprocess.run([str(WORKBENCH), "serve", str(tmp_path / "nowhere.wb"), "--port", str(port)],
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 3 and "does not exist" in missing.stderr


def test_a_failing_warmup_exits_1_naming_the_step(bundles):
    port = free_port()
    result = subprocess.run([str(WORKBENCH), "serve", str(bundles["scorer"]), "--port", str(port),
                             "--warmup", '"text"'], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "warm-up input 1 failed" in result.stderr and "to_tensor" in result.stderr


def _accepted(url: str) -> float:
    """/predict requests received so far: answered ones plus those in progress."""
    total = 0.0
    for line in httpx.get(url + "/metrics").text.splitlines():
        if line.startswith(('workbench_requests_total{endpoint="/predict"', "workbench_requests_in_progress ")):
            total += float(line.split()[-1])
    return total


def test_sigterm_answers_every_accepted_request_then_exits_0(bundles):
    served = Served(bundles["scorer"], "--max-batch", "4", "--log-level", "warning")
    try:
        n = 8
        answers: list = [None] * n

        def post(i: int) -> None:
            body = {"sleep": 0.25, "x": [float(i)] * 16}
            try:
                answers[i] = httpx.post(served.url + "/predict", json=body, timeout=60).status_code
            except httpx.HTTPError as exc:
                answers[i] = repr(exc)

        threads = [threading.Thread(target=post, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30  # until all are accepted (they take 8 x 0.25 s on the pipeline thread)
        while _accepted(served.url) < n:
            assert time.monotonic() < deadline, "the requests did not arrive"
            time.sleep(0.02)
        assert _accepted(served.url) - sum(a == 200 for a in answers) > 0, "nothing left to drain"
        served.process.send_signal(signal.SIGTERM)
        for t in threads:
            t.join(60)
        code = served.process.wait(60)
        assert answers == [200] * n, served.output()
        assert code == 0, served.output()
        with pytest.raises(httpx.TransportError):
            httpx.get(served.url + "/health", timeout=2)
    finally:
        served.stop(signal.SIGKILL)


def test_two_workers_share_the_port_sum_their_metrics_and_drain(bundles, pipelines):
    import asyncio

    import torch

    from .test_http import _post_all

    served = Served(bundles["scorer"], "--workers", "2", "--threads", "1", "--log-level", "warning",
                    ready_within=240)
    try:
        deadline = time.monotonic() + 240
        x = [0.5] * 16
        while sum(httpx.post(served.url + "/predict", json=x).status_code == 200 for _ in range(6)) < 6:
            assert time.monotonic() < deadline, "the second worker did not load"  # answers 503 while loading
            time.sleep(0.5)
        before = _items(served.url)
        xs = torch.randn(24, 16, generator=torch.Generator().manual_seed(4)).tolist()
        responses = asyncio.run(_post_all(served.url, xs, clients=8))
        assert [r.status_code for r in responses] == [200] * len(xs)
        assert [r.json()["output"]["label"] for r in responses] == [int(pipelines.scorer.infer_apply(v)["label"]) for v in xs]
        assert _items(served.url) - before == len(xs)  # whichever worker answers /metrics counts both
        served.process.send_signal(signal.SIGTERM)
        assert served.process.wait(60) == 0, served.output()
    finally:
        served.stop(signal.SIGKILL)


def _items(url: str) -> float:
    for line in httpx.get(url + "/metrics").text.splitlines():
        if line.startswith("workbench_items_total "):
            return float(line.split()[-1])
    raise AssertionError("no workbench_items_total in /metrics")
