"""``workbench serve`` in a subprocess, spoken to over HTTP: endpoints, answers, batching and failures."""

from __future__ import annotations

import asyncio
import json
import math

import httpx
import pytest
import torch

from workbench.predict import to_json

from .conftest import Served

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(bundles):
    served = Served(bundles["scorer"], "--max-batch", "8", "--max-wait-ms", "20", "--queue", "16",
                    "--timeout-s", "3", "--warmup", json.dumps([0.0] * 16))
    yield served
    served.stop()


def _inputs(n: int, seed: int = 1) -> list[list[float]]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 16, generator=g).tolist()


def _expected(pipelines, x):
    return json.loads(to_json(pipelines.scorer.infer_apply(x)))


async def _post_all(url: str, bodies: list, clients: int = 12) -> list[httpx.Response]:
    """All bodies posted by ``clients`` concurrent connections (fewer than the queue holds)."""
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=clients)) as client:
        return await asyncio.gather(*(client.post(url + "/predict", json=b) for b in bodies))


def _batch_count(url: str) -> tuple[float, float]:
    """(batches run, inputs run) from /metrics."""
    text = httpx.get(url + "/metrics").text
    values = {}
    for line in text.splitlines():
        if line.startswith(("workbench_batch_size_count", "workbench_batch_size_sum")):
            name, value = line.split()
            values[name] = float(value)
    return values["workbench_batch_size_count"], values["workbench_batch_size_sum"]


def test_status_endpoints(server, bundles):
    assert httpx.get(server.url + "/health").json() == {"status": "up"}
    assert httpx.get(server.url + "/ready").json() == {"status": "ready"}
    info = httpx.get(server.url + "/info").json()
    manifest = json.loads((bundles["scorer"] / "manifest.json").read_text())
    assert info["manifest"] == manifest and info["structure"] == manifest["structure"]
    assert info["ready"] is True and info["serving"]["max_batch"] == 8 and info["serving"]["mode"] == "dynamic"
    schema = httpx.get(server.url + "/openapi.json").json()
    assert schema["openapi"].startswith("3.") and "/predict" in schema["paths"]
    metrics = httpx.get(server.url + "/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    for name in ("workbench_requests_total", "workbench_errors_total", "workbench_batch_size_bucket",
                 "workbench_queue_depth", "workbench_request_seconds_bucket"):
        assert name in metrics.text


def test_one_input_and_several_equal_infer_apply_bit_for_bit(server, pipelines):
    xs = _inputs(3)
    one = httpx.post(server.url + "/predict", json=xs[0])
    assert one.status_code == 200 and one.headers["content-type"] == "application/json"
    assert one.json() == {"output": _expected(pipelines, xs[0])}
    several = httpx.post(server.url + "/predict", json={"inputs": xs[1:]})
    assert several.status_code == 200
    got = several.json()["outputs"]
    expected = [_expected(pipelines, x) for x in xs[1:]]
    # Two inputs of one request form one batch: labels exact, scores up to the kernels' rounding.
    assert [g["label"] for g in got] == [e["label"] for e in expected]
    assert torch.allclose(torch.tensor([g["scores"] for g in got]), torch.tensor([e["scores"] for e in expected]),
                          rtol=1e-5, atol=1e-7)


def test_concurrent_requests_are_batched_and_each_gets_its_own_answer(server, pipelines):
    xs = _inputs(48, seed=2)
    batches_before, items_before = _batch_count(server.url)
    responses = asyncio.run(_post_all(server.url, xs))
    assert [r.status_code for r in responses] == [200] * len(xs)
    batches, items = _batch_count(server.url)
    assert items - items_before == len(xs)
    assert batches - batches_before < len(xs), "no two requests shared a batch"
    for x, r in zip(xs, responses):
        got, expected = r.json()["output"], _expected(pipelines, x)
        assert got["label"] == expected["label"]
        assert all(math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-7) for a, b in zip(got["scores"], expected["scores"]))


def test_bad_requests_fail_alone_with_the_step_named(server, pipelines):
    xs = _inputs(12, seed=3)
    bodies: list = list(xs)
    bodies[3] = "text"                      # preprocessing raises
    bodies[6] = [1.0, 2.0, 3.0]             # the forward stage cannot take it (and it cannot be stacked)
    responses = asyncio.run(_post_all(server.url, bodies))
    for i, r in enumerate(responses):
        if i == 3:
            assert r.status_code == 422
            assert r.json()["step"] == "to_tensor" and r.json()["stage"] == "preprocess"
            assert "expected a list of numbers, got str" in r.json()["error"]
        elif i == 6:
            assert r.status_code == 422 and r.json()["stage"] == "forward"
            assert "Sequential" in r.json()["error"] or "batch" in r.json()["error"]
        else:
            assert r.status_code == 200 and r.json()["output"]["label"] == _expected(pipelines, xs[i])["label"]
    nan = httpx.post(server.url + "/predict", content=json.dumps([float("nan")] + [0.0] * 15))
    assert nan.status_code == 422 and nan.json()["step"] == "finish" and nan.json()["stage"] == "postprocess"
    assert "the scores hold NaN" in nan.json()["error"]
    several = httpx.post(server.url + "/predict", json={"inputs": [xs[0], "text"]})
    assert several.status_code == 422 and several.json()["input"] == 1
    assert several.json()["error"].startswith("input 1: TypeError")
    bad_json = httpx.post(server.url + "/predict", content=b"{not json")
    assert bad_json.status_code == 400 and "not valid JSON" in bad_json.json()["error"]
    assert httpx.post(server.url + "/predict", json={"inputs": []}).status_code == 400
    assert httpx.post(server.url + "/predict", json={"inputs": xs[:1] * 17}).status_code == 413
    # and the server still answers
    assert httpx.post(server.url + "/predict", json=xs[0]).json() == {"output": _expected(pipelines, xs[0])}


def test_a_full_queue_answers_503_with_retry_after(server, pipelines):
    async def scenario():
        async with httpx.AsyncClient(timeout=30) as client:
            slow = asyncio.create_task(client.post(server.url + "/predict", json={"sleep": 2.0, "x": [0.0] * 16}))
            await asyncio.sleep(0.3)       # the pipeline thread is now busy with it
            filling = asyncio.create_task(client.post(server.url + "/predict", json={"inputs": _inputs(16)}))
            await asyncio.sleep(0.2)       # 16 inputs wait: the queue is full
            refused = await client.post(server.url + "/predict", json=_inputs(1)[0])
            return refused, await slow, await filling

    refused, slow, filling = asyncio.run(scenario())
    assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
    assert "busy" in refused.json()["error"]
    assert slow.status_code == 200 and filling.status_code == 200 and len(filling.json()["outputs"]) == 16
    assert httpx.post(server.url + "/predict", json=_inputs(1)[0]).status_code == 200


def test_a_request_past_the_time_limit_answers_504_and_the_others_go_on(server, pipelines):
    async def scenario():
        async with httpx.AsyncClient(timeout=30) as client:
            slow = asyncio.create_task(client.post(server.url + "/predict", json={"sleep": 3.5, "x": [0.0] * 16}))
            await asyncio.sleep(0.2)
            return await slow

    response = asyncio.run(scenario())
    assert response.status_code == 504 and "time limit of 3 s" in response.json()["error"]
    x = _inputs(1, seed=9)[0]
    assert httpx.post(server.url + "/predict", json=x, timeout=30).json() == {"output": _expected(pipelines, x)}
    errors = httpx.get(server.url + "/metrics").text
    assert 'workbench_errors_total{kind="timeout"} 1.0' in errors
