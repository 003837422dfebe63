"""Running a pipeline on a Ray cluster: batch inference with Ray Data, online serving with Ray Serve.

A bundle is what travels to Ray's workers: a live pipeline is saved to a bundle once, the bundle's
files go to the workers (through Ray's object store, or as a path on storage every node reads with
``shared=True``) and each worker actor loads it once, verifying every hash. Ray pickles nothing of the
pipeline; only data rows (and, for :func:`eval_apply`, the outputs) travel between processes.

- :func:`map_batches` adds an output column to a ``ray.data.Dataset``: each row's item preprocessed,
  the forward stage run on Ray's batches, each output postprocessed — ``eval_apply`` row for row.
- :func:`eval_apply` does the same for a plain sequence and returns the outputs in input order, so
  ``pl.eval_apply(xs)`` becomes ``workbench.ray.eval_apply(pl, xs)``.
- :func:`deployment` is a Ray Serve application answering ``workbench serve``'s JSON requests, with
  Serve's own batching (``@serve.batch``).

Resources: the actors together reserve at most the cluster's CPUs minus one, so the tasks that feed
them (reads, earlier maps) always find a CPU; see :func:`actor_resources` and docs/scale.md.

>>> import ray, workbench.ray                                                   # doctest: +SKIP
>>> ray.init()                                                                   # doctest: +SKIP
>>> outputs = workbench.ray.eval_apply(pl, items, batch_size=64)                # doctest: +SKIP
>>> ds = workbench.ray.map_batches("model.wb", ray.data.read_parquet(path), column="image")  # doctest: +SKIP
>>> ray.serve.run(workbench.ray.deployment("model.wb", max_batch=32))           # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import os
import pickle
import re
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import ray
import ray.data
from ray import serve

from workbench._running import has_note, item_of, mark_item
from workbench._text import short_repr
from workbench.apply import ApplyIterator
from workbench.bundle import manifest as _manifest
from workbench.bundle import snapshot as _snapshot
from workbench.errors import IntegrityError
from workbench.bundle.reader import load
from workbench.bundle.writer import save
from workbench.collate import uncollate
from workbench.pipeline import Transform

__all__ = ["map_batches", "eval_apply", "deployment", "actor_resources", "BundleShipment", "ship"]


# --- getting the bundle to the workers ------------------------------------------------------------


@dataclass(frozen=True)
class BundleShipment:
    """How Ray's workers get a bundle: a ``path`` every node can read, or its ``files`` in the object store.

    Built by :func:`ship` on the driver; :meth:`load` runs on each worker. ``files`` is the ``ObjectRef``
    of ``{relative path: bytes}``; ``digest`` (the manifest's sha256) names the bundle's version.
    """

    digest: str
    path: str | None = None
    files: Any = None

    def load(self) -> Transform:
        """The pipeline, loaded (and every file verified) from the shared path or a node-local copy."""
        if self.path is not None:
            return load(self.path)
        root = _node_copy(self.digest)
        if root.exists():
            try:
                return load(root)
            except IntegrityError:  # a damaged local copy: write it again from the shipped bytes
                shutil.rmtree(root, ignore_errors=True)
        _write_copy(root, ray.get(self.files))
        return load(root)


def ship(pipeline_or_bundle: Transform | str | os.PathLike[str], *, shared: bool = False) -> BundleShipment:
    """Prepare a pipeline or a bundle directory for Ray's workers (call once per job, on the driver).

    A live pipeline is saved to a temporary bundle whose files are put in Ray's object store. A bundle
    path is verified here first — a missing or edited file fails the job before anything starts, with
    the file named (:class:`~workbench.bundle.IntegrityError`) — and then shipped the same way, or, with
    ``shared=True``, read by each worker from that path (storage every node mounts).

    >>> shipment = ship("model.wb")                                  # doctest: +SKIP
    """
    if isinstance(pipeline_or_bundle, Transform):
        if shared:
            raise ValueError("shared=True needs a bundle path on shared storage, not a live pipeline")
        with tempfile.TemporaryDirectory(prefix="workbench-ray-") as work:
            root = save(pipeline_or_bundle, Path(work) / "pipeline.wb")
            files = _read_bundle(root)
    else:
        if not isinstance(pipeline_or_bundle, (str, os.PathLike)):
            raise TypeError(f"expected a workbench pipeline or a bundle path, got {type(pipeline_or_bundle).__name__}")
        root = Path(pipeline_or_bundle)
        if shared:
            return BundleShipment(digest=_snapshot.read(root).digest, path=str(root.resolve()))
        files = _read_bundle(root)
    # The manifest holds the sha256 of every other file, so its own hash names the whole bundle.
    digest = hashlib.sha256(files[_manifest.MANIFEST]).hexdigest()
    return BundleShipment(digest=digest, files=ray.put(files))


def _read_bundle(root: Path) -> dict[str, bytes]:
    """Every file of the bundle at ``root``, manifest included, read once and verified (by name when not)."""
    snap = _snapshot.read(root, keep=None)
    files = {rel: bytes(_snapshot._plain(data)) for rel, data in snap.files.items()}
    files[_manifest.MANIFEST] = snap.raw
    return files


def _node_copy(digest: str) -> Path:
    return Path(tempfile.gettempdir()) / "workbench-ray" / digest[:20]


def _write_copy(root: Path, files: dict[str, bytes]) -> None:
    """Write the bundle to ``root`` atomically; actors on one node share one copy."""
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = root.parent / f".{root.name}.tmp-{uuid.uuid4().hex[:10]}"
    try:
        for rel, data in files.items():
            target = tmp / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        try:
            os.rename(tmp, root)
        except OSError:  # another actor on this node finished first
            if not root.exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --- resources ------------------------------------------------------------------------------------


def actor_resources(concurrency: int | None = None, num_cpus: float | None = None,
                    num_gpus: float | None = None) -> tuple[int, float]:
    """``(actors, CPUs per actor)`` for the cluster Ray is connected to, chosen so it cannot deadlock.

    The actors together reserve at most the cluster's CPUs minus one. Ray Data's actors wait for rows
    that read tasks and earlier stages produce, and each of those needs a CPU: if the actors held every
    CPU (two 1-CPU actors on a 2-CPU cluster) nothing would ever produce their input. With one CPU
    always free, the tasks that feed them keep running. By default there is one actor per spare CPU
    (at least one; with ``num_gpus``, one per that many GPUs) and the spare CPUs are divided among the
    actors, at most one each. An explicit ``num_cpus`` that would break the rule is an error.

    >>> actor_resources(2)           # on a 2-CPU cluster          # doctest: +SKIP
    (2, 0.5)
    """
    total = float(ray.cluster_resources().get("CPU", 0.0))
    spare = max(total - 1.0, 0.0)
    if concurrency is None:
        if num_gpus:
            gpus = float(ray.cluster_resources().get("GPU", 0.0))
            concurrency = max(1, int(gpus // num_gpus))
        else:
            concurrency = max(1, int(spare))
    if not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1:
        raise ValueError(f"concurrency must be a positive number of actors, got {concurrency!r}")
    if num_cpus is None:
        # Ray accepts four decimals of a resource; round down so the sum never exceeds what is spare.
        num_cpus = math.floor(min(1.0, spare / concurrency) * 10_000) / 10_000
    elif concurrency * num_cpus > spare + 1e-9:
        raise ValueError(
            f"{concurrency} actors of {num_cpus:g} CPU would reserve {concurrency * num_cpus:g} of the cluster's "
            f"{total:g} CPUs, leaving no CPU for the tasks that feed them (Ray Data would wait forever); "
            f"use at most {spare:g} CPUs in total, e.g. num_cpus={spare / concurrency:.4g}, or leave num_cpus out")
    return concurrency, num_cpus


def _remote_options(concurrency: int | None, num_cpus: float | None, num_gpus: float | None) -> dict[str, Any]:
    actors, cpus = actor_resources(concurrency, num_cpus, num_gpus)
    options: dict[str, Any] = {
        "compute": ray.data.ActorPoolStrategy(size=actors),
        "num_cpus": cpus,
    }  # Ray Data's actor pools restart a killed actor and re-run its unfinished batches by default
    if num_gpus:
        options["num_gpus"] = num_gpus
    return options


# --- running a group of items on a worker -----------------------------------------------------------


def _apply(pipeline: Transform, items: Sequence[Any], first: int) -> tuple[list[Any], bool]:
    """``eval_apply`` of ``items`` as one batch, and whether its outputs are per item (else one batch).

    Errors name items by ``first + position``.
    """
    keyed = {first + i: x for i, x in enumerate(items)}
    run = ApplyIterator(pipeline, keyed, mode="eval", grad=False, batch_size=max(1, len(items)),
                        num_workers=0, progress=False,
                        loader_options={"batch_sampler": [list(keyed)]})
    return list(run), run.per_item


_ITEM = re.compile(r"item (\d+)$")


def _name_rows(exc: BaseException, batch: dict[str, Any], size: int) -> None:
    """Replace the position in a Ray batch that an error names with the row itself (all its columns)."""
    item = item_of(exc)
    if item is None:
        return
    match = _ITEM.match(item)
    if match:
        i = int(match.group(1))
        mark_item(exc, f"row {short_repr(_row(batch, i))}", replace=True)
    else:
        mark_item(exc, f"a batch of {size} rows starting with row {short_repr(_row(batch, 0))}", replace=True)


def _row(batch: dict[str, Any], i: int) -> dict[str, Any]:
    return {k: _plain_scalar(v[i]) for k, v in batch.items()}


def _plain_scalar(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _column(values: list[Any]) -> Any:
    """A Ray Data column from per-row outputs: tensors become numpy arrays (stacked when alike)."""
    converted = [_to_numpy(v) for v in values]
    if converted and all(isinstance(v, np.ndarray) for v in converted):
        shapes = {(v.shape, v.dtype) for v in converted}
        if len(shapes) == 1:
            return np.stack(converted)
    column = np.empty(len(converted), dtype=object)
    for i, v in enumerate(converted):
        column[i] = v
    return column


def _to_numpy(value: Any) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(_to_numpy(v) for v in value)
    if isinstance(value, list):
        return [_to_numpy(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_numpy(v) for k, v in value.items()}
    return value


def _placed(pipeline: Transform) -> Transform:
    """The pipeline on the GPU Ray gave this actor, if any (batches follow the layers' device)."""
    if ray.get_gpu_ids():
        pipeline.to("cuda")
    return pipeline


class _RowWorker:
    """A Ray Data actor: loads the bundle once, then adds the output column to each batch of rows."""

    def __init__(self, shipment: BundleShipment, column: str, output_column: str):
        self.pipeline = _placed(shipment.load())
        self.column, self.output_column = column, output_column

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        if self.column not in batch:
            raise KeyError(f"the dataset has no column {self.column!r} (columns: {', '.join(batch)}); "
                           "pass column=... to say which column holds the items")
        items = list(batch[self.column])
        try:
            outputs, per_item = _apply(self.pipeline, items, 0)
        except Exception as exc:
            _name_rows(exc, batch, len(items))
            raise
        if not per_item:  # a pipeline without unbatch: split its batch back into rows
            outputs = uncollate(outputs[0])
        out = dict(batch)
        out[self.output_column] = _column(outputs)
        return out


class _ChunkWorker:
    """A Ray Data actor for :func:`eval_apply`: each row is one batch of items, pickled, with its position."""

    def __init__(self, shipment: BundleShipment):
        self.pipeline = _placed(shipment.load())

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import cloudpickle

        starts, payloads = [], []
        for start, data in zip(batch["start"], batch["items"]):
            outputs, _ = _apply(self.pipeline, pickle.loads(data), int(start))
            starts.append(int(start))
            # cloudpickle: outputs may be instances of classes defined in the bundle's source.
            payloads.append(cloudpickle.dumps(outputs))
        column = np.empty(len(payloads), dtype=object)
        column[:] = payloads
        return {"start": np.array(starts, dtype=np.int64), "outputs": column}


# --- batch inference -------------------------------------------------------------------------------


def map_batches(pipeline_or_bundle: Transform | str | os.PathLike[str] | BundleShipment, dataset: Any, *,
                batch_size: int = 64, concurrency: int | None = None, num_cpus: float | None = None,
                num_gpus: float | None = None, column: str = "item", output_column: str = "output",
                shared: bool = False) -> Any:
    """``dataset`` (a ``ray.data.Dataset``) with an ``output_column`` computed by the pipeline from ``column``.

    Each row's ``column`` value goes through the pipeline as ``eval_apply`` runs it: preprocessing per
    item, the forward stage on Ray's batches of up to ``batch_size`` rows, postprocessing per item (a
    pipeline without ``unbatch`` has its batch output split into rows). Items arrive as Ray Data's numpy
    batches hold them (arrays for tensor columns, numpy scalars, strings). Outputs are stored with
    tensors as numpy arrays; the other columns are kept. ``concurrency`` actors (each loading the bundle
    once) with ``num_cpus``/``num_gpus`` each; defaults from :func:`actor_resources`. The result is lazy,
    like every Dataset: it runs when consumed. A step raising names the step and the row.

    >>> ds = ray.data.from_items([[0.1, 0.2], [0.3, 0.4]])                   # doctest: +SKIP
    >>> map_batches(pl, ds, batch_size=32).take_all()                          # doctest: +SKIP
    """
    _check_batch_size(batch_size)
    shipment = pipeline_or_bundle if isinstance(pipeline_or_bundle, BundleShipment) else \
        ship(pipeline_or_bundle, shared=shared)
    out = dataset.map_batches(
        _RowWorker, fn_constructor_kwargs={"shipment": shipment, "column": column, "output_column": output_column},
        batch_size=batch_size, batch_format="numpy", **_remote_options(concurrency, num_cpus, num_gpus))
    _raise_original(out)
    return out


def _raise_original(dataset: Any) -> None:
    """Errors in this dataset's maps come out as the step's own exception, note included (a copied context)."""
    dataset.context.raise_original_map_exception = True


def eval_apply(pipeline_or_bundle: Transform | str | os.PathLike[str] | BundleShipment, items: Any, *,
               batch_size: int = 64, concurrency: int | None = None, num_cpus: float | None = None,
               num_gpus: float | None = None, shared: bool = False) -> list[Any]:
    """``pipeline.eval_apply(items, batch_size=...)`` computed on the Ray cluster: a list in input order.

    The items are cut into the same batches ``eval_apply`` makes; each batch travels as one Ray Data row
    (pickled) to an actor, so the outputs are exactly ``list(pl.eval_apply(items, batch_size=...))`` —
    items, or batches for a pipeline without ``unbatch``. Every batch is checked to come back exactly
    once. A step raising re-raises here with its note naming the step and the item's index, as
    ``eval_apply`` does.

    >>> outputs = eval_apply(pl, items, batch_size=64, concurrency=2)          # doctest: +SKIP
    """
    import cloudpickle

    _check_batch_size(batch_size)
    items = list(items)
    if not items:
        return []
    shipment = pipeline_or_bundle if isinstance(pipeline_or_bundle, BundleShipment) else \
        ship(pipeline_or_bundle, shared=shared)
    starts = list(range(0, len(items), batch_size))
    rows = [{"start": s, "items": pickle.dumps(items[s:s + batch_size], protocol=5)} for s in starts]
    options = _remote_options(concurrency, num_cpus, num_gpus)
    dataset = ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(
        _ChunkWorker, fn_constructor_kwargs={"shipment": shipment}, batch_size=1, batch_format="numpy", **options)
    _raise_original(dataset)
    received: dict[int, list[Any]] = {}
    try:
        for row in dataset.iter_rows():
            start = int(row["start"])
            if start in received:
                raise RuntimeError(f"Ray returned the batch starting at item {start} twice")
            received[start] = cloudpickle.loads(row["outputs"])
    except ray.exceptions.RayTaskError as exc:
        cause = _user_error(exc)
        if cause is None:
            raise
        raise cause.with_traceback(None) from exc
    missing = [s for s in starts if s not in received]
    if missing:
        raise RuntimeError(f"Ray returned no outputs for the batches starting at items {missing[:10]}")
    return [output for s in starts for output in received[s]]


def _check_batch_size(batch_size: int) -> None:
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")


def _user_error(exc: BaseException) -> BaseException | None:
    """The pipeline's own exception inside Ray's wrappers: the one carrying the workbench note."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if has_note(current) and not isinstance(current, ray.exceptions.RayError):
            return current
        todo.extend([getattr(current, "cause", None), current.__cause__, current.__context__])
    return None


# --- online serving ---------------------------------------------------------------------------------


@serve.deployment
class _Server:
    """The Ray Serve deployment behind :func:`deployment` (one replica loads the bundle once)."""

    def __init__(self, shipment: BundleShipment, max_batch: int, max_wait_ms: float, as_type: str,
                 dtype: str | None, non_finite: str):
        from workbench.serving.runner import BatchRunner

        self.pipeline = _placed(shipment.load())
        self.runner = BatchRunner(self.pipeline)
        self.as_type, self.dtype, self.non_finite = as_type, dtype, non_finite
        self._run.set_max_batch_size(max_batch)
        self._run.set_batch_wait_timeout_s(max_wait_ms / 1000)

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.005)
    async def _run(self, values: list[Any]) -> list[Any]:
        return await asyncio.get_running_loop().run_in_executor(None, self._answers, values)

    def _answers(self, values: list[Any]) -> list[Any]:
        from workbench.annotations import class_names
        from workbench.serving.app import encode_results

        return encode_results(self.runner.run(values), self.non_finite, class_names(self.pipeline))

    async def __call__(self, request: Any) -> Any:
        """``workbench serve``'s ``/predict``: the same parsing, answers and errors."""
        from workbench.predict import InputError, convert_inputs
        from workbench.serving.app import parse_request, respond

        parsed = parse_request(await request.body())
        if not isinstance(parsed, tuple):
            return parsed
        values, several = parsed
        try:
            values = convert_inputs(values, self.as_type, self.dtype)
        except InputError as exc:
            return _error_response(422, str(exc))
        return respond(await asyncio.gather(*(self._run(v) for v in values)), several)


def _error_response(status: int, message: str) -> Any:
    from starlette.responses import JSONResponse

    return JSONResponse({"error": message, "type": None, "step": None, "stage": None}, status_code=status)


def deployment(bundle: Transform | str | os.PathLike[str] | BundleShipment, *, max_batch: int = 32,
               max_wait_ms: float = 5.0, num_replicas: int = 1, num_cpus: float = 1.0,
               num_gpus: float | None = None, as_type: str = "json", dtype: str | None = None,
               non_finite: str = "string", shared: bool = False, name: str = "workbench") -> Any:
    """A Ray Serve application serving the bundle with ``workbench serve``'s JSON contract.

    ``POST`` one JSON input to get ``{"output": ...}``, or ``{"inputs": [...]}`` to get
    ``{"outputs": [...]}``, in ``workbench predict``'s encoding (``as_type``/``dtype``/``non_finite``
    as its ``--as``/``--dtype``/``--non-finite``). Requests are batched by Serve's ``@serve.batch``
    (up to ``max_batch`` inputs, waiting at most ``max_wait_ms``); each answer equals ``infer_apply`` of
    its input. An input the pipeline rejects gets 422 with ``{"error", "type", "step", "stage"}`` and
    fails alone; a body that is not JSON gets 400. Each of ``num_replicas`` replicas loads the bundle once.

    >>> from ray import serve                                                  # doctest: +SKIP
    >>> serve.run(deployment("model.wb", max_batch=16), route_prefix="/predict")  # doctest: +SKIP
    """
    from workbench.predict import AS_TYPE_CHOICES, NON_FINITE_CHOICES

    if not isinstance(max_batch, int) or max_batch < 1:
        raise ValueError(f"max_batch must be a positive integer, got {max_batch!r}")
    if max_wait_ms < 0:
        raise ValueError(f"max_wait_ms must not be negative, got {max_wait_ms!r}")
    if as_type not in AS_TYPE_CHOICES:
        raise ValueError(f"as_type must be one of {', '.join(AS_TYPE_CHOICES)}, not {as_type!r}")
    if non_finite not in NON_FINITE_CHOICES:
        raise ValueError(f"non_finite must be one of {', '.join(NON_FINITE_CHOICES)}, not {non_finite!r}")
    shipment = bundle if isinstance(bundle, BundleShipment) else ship(bundle, shared=shared)
    actor_options: dict[str, Any] = {"num_cpus": num_cpus}
    if num_gpus:
        actor_options["num_gpus"] = num_gpus
    return _Server.options(name=name, num_replicas=num_replicas, ray_actor_options=actor_options,
                           max_ongoing_requests=max(2 * max_batch, 8)).bind(
        shipment, max_batch, max_wait_ms, as_type, dtype, non_finite)
