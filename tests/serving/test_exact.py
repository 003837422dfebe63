"""Every answer equals ``infer_apply`` of its input bit for bit, batched under concurrency; notebook servers."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import torch

import workbench
from workbench.predict import to_json

from .conftest import Served
from .test_http import _batch_count, _post_all

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(bundles):
    served = Served(bundles["lookup"], "--max-batch", "16", "--max-wait-ms", "20", "--warmup", "[1, 2, 3]")
    yield served
    served.stop()


def test_batched_answers_equal_infer_apply_bit_for_bit_under_concurrency(server, pipelines):
    g = torch.Generator().manual_seed(5)
    xs = torch.randint(0, 50, (64, 6), generator=g).tolist()
    before = _batch_count(server.url)
    responses = asyncio.run(_post_all(server.url, xs, clients=16))
    after = _batch_count(server.url)
    assert after[1] - before[1] == len(xs)
    assert after[0] - before[0] < len(xs), f"no two requests shared a batch ({before} -> {after})"
    for x, r in zip(xs, responses):
        assert r.status_code == 200
        # JSON floats round-trip exactly: equal text means equal bits
        assert r.text == '{"output": ' + to_json(pipelines.lookup.infer_apply(x)) + "}"


def test_a_notebook_server_serves_a_live_pipeline_and_stops(pipelines):
    pipeline = workbench.annotate(pipelines.scorer >> workbench.identity, class_names=["a", "b", "c", "d", "e"])
    x = [0.25] * 16
    with workbench.serve(pipeline, warmup=[x], max_batch=4) as server:
        assert server.url.startswith("http://127.0.0.1:") and "ready" in repr(server)
        answer = httpx.post(server.url + "/predict", json=x).json()
        # The output is a dict, not a class index: no label; /info shows the annotations.
        assert answer == {"output": json.loads(to_json(pipeline.infer_apply(x)))}
        assert httpx.get(server.url + "/info").json()["annotations"] == pipeline.annotations
    assert not server.running and "stopped" in repr(server)
    with pytest.raises(httpx.TransportError):
        httpx.get(server.url + "/health", timeout=2)


def test_class_names_label_class_index_outputs(pipelines):
    pipeline = pipelines.to_tensor >> workbench.batch >> pipelines.mlp >> workbench.unbatch >> workbench.transform(torch.argmax)
    workbench.annotate(pipeline, class_names=["zero", "one", "two", "three", "four"])
    xs = torch.randn(3, 16).tolist()
    with workbench.serve(pipeline) as server:
        answer = httpx.post(server.url + "/predict", json={"inputs": xs}).json()
        plain = httpx.post(server.url + "/predict", json=xs[0])
    indices = [int(pipeline.infer_apply(x)) for x in xs]
    assert answer == {"outputs": indices, "labels": [pipeline.annotations["class_names"][i] for i in indices]}
    assert plain.json()["label"] == pipeline.annotations["class_names"][indices[0]]
    with workbench.serve(pipeline, names=False) as server:
        assert httpx.post(server.url + "/predict", json=xs[0]).json() == {"output": indices[0]}


def test_padded_batches_answer_exactly_what_infer_apply_does(pipelines):
    g = torch.Generator().manual_seed(7)
    xs = [torch.randint(1, 50, (int(n),), generator=g).tolist() for n in torch.randint(1, 9, (40,), generator=g)]
    with workbench.serve(pipelines.padded, max_batch=16, max_wait_ms=20) as server:
        responses = asyncio.run(_post_all(server.url, xs, clients=12))
        batches, items = _batch_count(server.url)
    assert items == len(xs) and batches < len(xs), "no two requests of different lengths shared a padded batch"
    for x, r in zip(xs, responses):
        assert r.status_code == 200
        assert r.text == '{"output": ' + to_json(pipelines.padded.infer_apply(x)) + "}"


def test_a_pipeline_without_batch_is_served_per_request(pipelines, bundles):
    with workbench.serve(bundles["unbatched"], max_batch=8) as server:
        info = httpx.get(server.url + "/info").json()
        assert info["serving"]["mode"].startswith("per request")
        xs = torch.randn(10, 16).tolist()
        responses = asyncio.run(_post_all(server.url, xs, clients=10))
        assert _batch_count(server.url) == (10.0, 10.0)  # ten batches of one
    for x, r in zip(xs, responses):
        assert r.text == '{"output": ' + to_json(pipelines.unbatched.infer_apply(x)) + "}"


def test_a_warmup_that_fails_stops_the_notebook_server(pipelines):
    with pytest.raises(workbench.serving.server.LoadFailed, match="warm-up input 1 failed.*to_tensor"):
        workbench.serve(pipelines.scorer, warmup=["text"])


def test_tensor_inputs_and_outputs_without_a_json_form(pipelines):
    as_set = workbench.transform(lambda t: {float(t.sum())})
    pipeline = workbench.transform(lambda t: t * 2) >> workbench.batch >> workbench.transform(lambda b: b + 1) \
        >> workbench.unbatch
    with workbench.serve(pipeline, as_type="tensor", dtype="float64") as server:
        answer = httpx.post(server.url + "/predict", json=[1.0, 2.5])
        ragged = httpx.post(server.url + "/predict", json=[[1.0], [2.0, 3.0]])
    assert answer.json() == {"output": [3.0, 6.0]}
    assert ragged.status_code == 422 and "input 1 cannot be made into a tensor" in ragged.json()["error"]
    with workbench.serve(pipeline >> as_set, as_type="tensor") as server:
        unencodable = httpx.post(server.url + "/predict", json=[1.0])
    assert unencodable.status_code == 500 and "output is a set" in unencodable.json()["error"]


def test_importing_workbench_does_not_import_the_server_stack():
    import subprocess
    import sys

    code = "import sys, workbench; print(sorted(m for m in ('uvicorn', 'starlette', 'prometheus_client') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
