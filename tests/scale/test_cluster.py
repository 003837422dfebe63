"""workbench.ray across two Ray nodes on this machine (``ray.cluster_utils.Cluster``): 4 actors."""

from __future__ import annotations

import pytest

ray = pytest.importorskip("ray")

import numpy as np  # noqa: E402

import workbench.ray as wbray  # noqa: E402
from workbench.bundle import save  # noqa: E402

from ._pipelines import items, load_module  # noqa: E402
from .conftest import quiet_ray_data, start_two_nodes  # noqa: E402

pytestmark = pytest.mark.slow

LOCATED = '''
import ray
from workbench import transform


@transform
def node_of(x):
    return ray.get_runtime_context().get_node_id()
'''


@pytest.fixture(scope="module")
def two_nodes(node_copies):
    cluster = start_two_nodes()
    quiet_ray_data()
    yield cluster
    ray.shutdown()
    cluster.shutdown()


def test_four_actors_on_two_nodes_give_eval_apply_outputs(two_nodes, tmp_path_factory):
    root = tmp_path_factory.mktemp("cluster")
    pls = load_module(root, "cluster_pipelines")
    bundle = save(pls.classify, root / "classify.wb")
    assert len([n for n in ray.nodes() if n["Alive"]]) == 2
    assert wbray.actor_resources(4) == (4, 0.75)

    xs = items(480)
    want = list(pls.classify.eval_apply(xs, batch_size=20))
    got = wbray.eval_apply(bundle, xs, batch_size=20, concurrency=4)
    assert len(got) == len(want)
    for w, g in zip(want, got):
        assert w["label"] == g["label"] and w["scores"].dtype == g["scores"].dtype
        assert np.array_equal(w["scores"].numpy(), g["scores"].numpy())

    ds = ray.data.from_items([{"id": i, "item": x} for i, x in enumerate(xs)], override_num_blocks=24)
    rows = wbray.map_batches(bundle, ds, batch_size=20, concurrency=4).take_all()
    assert sorted(r["id"] for r in rows) == list(range(480))
    for row in rows:
        assert np.array_equal(row["output"]["scores"], want[row["id"]]["scores"].numpy())


def test_actors_run_on_both_nodes(two_nodes, tmp_path_factory):
    import importlib.util
    import sys

    root = tmp_path_factory.mktemp("located")
    (root / "located.py").write_text(LOCATED)
    spec = importlib.util.spec_from_file_location("located", root / "located.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["located"] = module
    spec.loader.exec_module(module)
    nodes = set(wbray.eval_apply(module.node_of, list(range(400)), batch_size=5, concurrency=4))
    assert nodes == {n["NodeID"] for n in ray.nodes() if n["Alive"]}
