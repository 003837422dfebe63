"""A local Ray for the tests of this directory, started by the test itself."""

from __future__ import annotations

import pytest


def _busy_start(exc: BaseException) -> bool:
    # Ray raises a bare Exception when a raylet misses its fixed 30 s start window on a busy machine.
    return "timed out during startup" in str(exc)


def start_local_ray(**options) -> None:
    """``ray.init`` with the test settings; up to two retries when a busy machine delays the raylet."""
    import ray

    for attempt in (1, 2, 3):
        try:
            ray.init(include_dashboard=False, log_to_driver=False, **options)
            return
        except Exception as exc:
            ray.shutdown()
            if attempt == 3 or not _busy_start(exc):
                raise


def start_two_nodes():
    """A head and a second node of 2 CPUs each on this machine, the driver connected; retried like above."""
    import ray
    from ray.cluster_utils import Cluster

    for attempt in (1, 2, 3):
        cluster = Cluster()
        try:
            cluster.add_node(num_cpus=2, include_dashboard=False)
            cluster.add_node(num_cpus=2)
            ray.init(address=cluster.address, log_to_driver=False)
            cluster.wait_for_nodes()
            return cluster
        except Exception as exc:
            ray.shutdown()
            cluster.shutdown()
            if attempt == 3 or not _busy_start(exc):
                raise


def quiet_ray_data() -> None:
    """No progress bars or per-run banners in the test log."""
    import ray.data

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Torch on one thread here, as in an actor of at most one CPU.

    Float results of a matrix product depend on how many threads split it; with the same thread
    count and the same batches, the local reference and the actors agree bit for bit.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def local_ray(node_copies):
    import ray

    start_local_ray(num_cpus=2)
    quiet_ray_data()
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def node_copies():
    """Remove the node-local bundle copies the actors of this module wrote (``$TMPDIR/workbench-ray``)."""
    import shutil
    import tempfile
    from pathlib import Path

    root = Path(tempfile.gettempdir()) / "workbench-ray"
    before = set(root.iterdir()) if root.exists() else set()
    yield root
    for path in (set(root.iterdir()) if root.exists() else set()) - before:
        shutil.rmtree(path, ignore_errors=True)
