"""workbench.ray on a real local Ray (2 CPUs): outputs equal eval_apply, faults, errors, Serve."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import numpy as np
import pytest
import torch

ray = pytest.importorskip("ray")

import workbench.ray as wbray  # noqa: E402
from workbench.bundle import IntegrityError, save  # noqa: E402

from ._pipelines import items, load_module  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pls(tmp_path_factory):
    return load_module(tmp_path_factory.mktemp("ray-pipelines"))


@pytest.fixture(scope="module")
def bundle(pls, tmp_path_factory):
    return save(pls.classify, tmp_path_factory.mktemp("ray-bundles") / "classify.wb")


def _equal(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    if isinstance(a, dict):
        return type(a) is type(b) and a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def test_eval_apply_equals_local_eval_apply_in_order(local_ray, pls, bundle):
    xs = items(300)
    want = list(pls.classify.eval_apply(xs, batch_size=32))
    shared = wbray.ship(bundle, shared=True)  # the actors read the path itself
    assert shared.path == str(bundle.resolve()) and shared.files is None and len(shared.digest) == 64
    for source in (pls.classify, bundle, shared):
        got = wbray.eval_apply(source, xs, batch_size=32, concurrency=2)
        assert len(got) == len(xs)
        assert all(_equal(w, g) for w, g in zip(want, got))


def test_eval_apply_without_unbatch_and_without_markers(local_ray, pls):
    xs = items(70)
    # batch but no unbatch: eval_apply yields batches, and so does the Ray version (same cuts).
    want = list(pls.scores.eval_apply(xs, batch_size=16))
    got = wbray.eval_apply(pls.scores, xs, batch_size=16, concurrency=1)
    assert [g.shape[0] for g in got] == [16, 16, 16, 16, 6]
    assert all(_equal(w, g) for w, g in zip(want, got))
    # no markers at all: one output per item.
    want = list(pls.unmarked.eval_apply(xs, batch_size=16))
    got = wbray.eval_apply(pls.unmarked, xs, batch_size=16, concurrency=1)
    assert len(got) == 70 and all(_equal(w, g) for w, g in zip(want, got))


def test_map_batches_adds_outputs_row_for_row(local_ray, pls, bundle):
    xs = items(256)
    # Blocks of exactly batch_size rows: Ray's batches are eval_apply's batches, so even the float
    # scores are bit for bit the same.
    ds = ray.data.from_items([{"id": i, "features": x} for i, x in enumerate(xs)], override_num_blocks=8)
    out = wbray.map_batches(bundle, ds, batch_size=32, concurrency=2, column="features").take_all()
    assert sorted(r["id"] for r in out) == list(range(256))
    want = list(pls.classify.eval_apply([np.asarray(x, dtype=np.float32) for x in xs], batch_size=32))
    for row in out:
        expected = want[row["id"]]
        assert row["output"]["label"] == expected["label"]
        assert np.array_equal(row["output"]["scores"], expected["scores"].numpy())
        assert row["features"].tolist() == pytest.approx(xs[row["id"]])


def test_map_batches_without_unbatch_splits_batches_into_rows(local_ray, pls):
    xs = items(64)
    ds = ray.data.from_items(xs, override_num_blocks=4)
    out = wbray.map_batches(pls.scores, ds, batch_size=16, concurrency=1).take_all()
    got = np.stack([r["output"] for r in out])
    want = torch.cat(list(pls.scores.eval_apply(xs, batch_size=16))).numpy()
    assert got.shape == (64, 3)
    assert {tuple(r) for r in got.tolist()} == {tuple(r) for r in want.tolist()}


def test_map_batches_names_a_missing_column(local_ray, pls):
    ds = ray.data.from_items([{"x": 1.0}])
    with pytest.raises(Exception, match="no column 'item'"):
        wbray.map_batches(pls.classify, ds, concurrency=1).take_all()


def test_killed_actor_loses_and_duplicates_nothing(local_ray, pls):
    flag = Path(pls.KILL_FLAG)
    flag.unlink(missing_ok=True)
    xs = items(400)
    xs[250][0] = 666.0  # the worker holding this item kills itself the first time it sees it
    got = wbray.eval_apply(pls.mortal, xs, batch_size=20, concurrency=2)
    assert len(got) == 400
    want = list(pls.mortal.eval_apply(xs, batch_size=20))  # the flag exists now: nobody dies
    assert all(_equal(w, g) for w, g in zip(want, got))
    # The kill did happen, in a Ray worker (not here).
    assert int(flag.read_text()) != os.getpid()


def test_killed_actor_in_map_batches_keeps_every_row_once(local_ray, pls):
    flag = Path(pls.KILL_FLAG)
    flag.unlink(missing_ok=True)
    xs = items(200)
    xs[120][0] = 666.0
    ds = ray.data.from_items([{"id": i, "item": x} for i, x in enumerate(xs)], override_num_blocks=10)
    out = wbray.map_batches(pls.mortal, ds, batch_size=20, concurrency=2).take_all()
    assert sorted(r["id"] for r in out) == list(range(200))
    assert flag.exists()


def test_tampered_bundle_fails_at_start_naming_the_file(local_ray, pls, tmp_path):
    path = save(pls.classify, tmp_path / "tampered.wb")
    weights = path / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    started = time.perf_counter()
    for run in (lambda: wbray.eval_apply(path, items(10)),
                lambda: wbray.map_batches(path, ray.data.from_items(items(10))),
                lambda: wbray.deployment(path)):
        with pytest.raises(IntegrityError, match="weights.safetensors"):
            run()
    assert time.perf_counter() - started < 5  # refused before any actor started


def test_raising_step_names_the_item_and_the_step(local_ray, pls):
    xs = items(50)
    xs[37][0] = -1.0
    with pytest.raises(ValueError, match="must not be negative") as info:
        wbray.eval_apply(pls.strict, xs, batch_size=8, concurrency=1)
    note = " ".join(getattr(info.value, "__notes__", []))
    assert "'refuse_negative'" in note and "item 37" in note
    # The same note eval_apply gives.
    with pytest.raises(ValueError) as local:
        list(pls.strict.eval_apply(xs, batch_size=8))
    assert local.value.__notes__ == info.value.__notes__


def test_raising_step_in_map_batches_names_the_row(local_ray, pls):
    xs = items(30)
    xs[12][0] = -1.0
    ds = ray.data.from_items([{"id": i, "item": x} for i, x in enumerate(xs)])
    with pytest.raises(Exception) as info:
        wbray.map_batches(pls.strict, ds, batch_size=10, concurrency=1).take_all()
    text = str(info.value)
    assert "must not be negative" in text and "'refuse_negative'" in text and "'id': 12" in text


def test_resources_leave_a_cpu_for_the_tasks_that_feed_the_actors(local_ray):
    assert wbray.actor_resources() == (1, 1.0)
    assert wbray.actor_resources(2) == (2, 0.5)
    assert wbray.actor_resources(3) == (3, 0.3333)
    with pytest.raises(ValueError, match="leaving no CPU"):
        wbray.actor_resources(2, num_cpus=1)


def test_two_one_cpu_actors_request_is_refused_not_deadlocked(local_ray, pls):
    with pytest.raises(ValueError, match="leaving no CPU"):
        wbray.map_batches(pls.classify, ray.data.range(10), concurrency=2, num_cpus=1)


# --- Ray Serve -----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(local_ray, pls, tmp_path_factory):
    from ray import serve

    port = _free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    root = tmp_path_factory.mktemp("served")
    strict = save(pls.strict, root / "strict.wb")
    serve.run(wbray.deployment(strict, max_batch=8, max_wait_ms=20, num_cpus=0.5), name="strict",
              route_prefix="/strict")
    serve.run(wbray.deployment(pls.unmarked, num_cpus=0.25, name="unmarked"), name="unmarked",
              route_prefix="/unmarked")
    yield f"http://127.0.0.1:{port}"
    serve.shutdown()


def test_deployment_answers_like_infer_apply_under_concurrency(served, pls):
    import concurrent.futures

    import httpx

    from workbench.predict import to_json

    xs = items(40, seed=3)
    with httpx.Client(timeout=60) as client:
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            responses = list(pool.map(lambda x: client.post(f"{served}/strict", json=x), xs))
        several = client.post(f"{served}/strict", json={"inputs": xs[:5]})
    def same(got, x):
        # A batch of n is another matrix product than n batches of one: labels are equal, float
        # scores agree to the last bits.
        want = json.loads(to_json(pls.strict.infer_apply(x)))
        return got["label"] == want["label"] and got["scores"] == pytest.approx(want["scores"], abs=1e-6)

    for x, r in zip(xs, responses):
        assert r.status_code == 200, r.text
        assert list(r.json()) == ["output"] and same(r.json()["output"], x)
    assert list(several.json()) == ["outputs"]
    assert all(same(got, x) for got, x in zip(several.json()["outputs"], xs[:5]))


def test_deployment_fails_only_the_bad_input(served):
    import concurrent.futures

    import httpx

    xs = items(12, seed=4)
    xs[5][0] = -2.0
    with httpx.Client(timeout=60) as client:
        with concurrent.futures.ThreadPoolExecutor(12) as pool:
            responses = list(pool.map(lambda x: client.post(f"{served}/strict", json=x), xs))
        bad_json = client.post(f"{served}/strict", content=b"{nope")
        several = client.post(f"{served}/strict", json={"inputs": [xs[0], xs[5]]})
    assert [r.status_code for r in responses] == [200] * 5 + [422] + [200] * 6
    body = responses[5].json()
    assert body["step"] == "refuse_negative" and body["stage"] == "preprocess"
    assert "must not be negative" in body["error"]
    assert bad_json.status_code == 400 and "not valid JSON" in bad_json.json()["error"]
    assert several.status_code == 422 and several.json()["input"] == 1


def test_deployment_of_a_pipeline_without_markers(served, pls):
    import httpx

    r = httpx.post(f"{served}/unmarked", json=[1.0, 2.0], timeout=60)
    assert r.json() == {"output": [2.0, 4.0]}
