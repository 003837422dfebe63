"""Running a pipeline: on one item (``infer_apply``), or on many for evaluation or training.

``eval_apply`` and ``train_apply`` split the pipeline at ``batch``/``unbatch`` into its three stages:
preprocessing runs per item (in a ``torch.utils.data.DataLoader`` when ``num_workers > 0`` or when
loader options are given, otherwise in a plain loop that does the same work with less overhead),
the forward stage runs once per batch, and postprocessing per item. Without ``unbatch`` the
outputs are batches. Without ``batch`` nothing is preprocessed in the loader (a pipeline without
markers is all forward stage): the loader only reads the items, and the pipeline runs on each of
them in this process, after its input is moved to the layers' device.

The mode (``infer``/``eval``/``train``) and grad mode are set while each output is computed and
restored before it is handed to the caller, so a training loop over ``train_apply`` runs its own
code (``loss.backward()``, ``optimizer.step()``) with its own settings.

>>> preds = pl.eval_apply(xs, batch_size=32, num_workers=2, progress=True)  # doctest: +SKIP
>>> len(preds), next(iter(preds))                                            # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Sequence

import torch

from ._running import (
    DEVICE,
    MODE,
    Indexed,
    Join,
    Scope,
    batch_marker,
    mark_item,
    parts,
    set_grad_enabled,
    span,
    step_failed,
    step_of,
    target_device,
)
from ._text import short_repr
from .collate import to_device, uncollate
from .pipeline import FORWARD, POSTPROCESS, PREPROCESS, Transform

__all__ = ["infer_apply", "eval_apply", "train_apply", "ApplyIterator"]


def infer_apply(pipeline: Transform, x: Any) -> Any:
    """``pipeline`` on one item in infer mode, without grad; ``batch`` makes a batch of one."""
    # Written out rather than with Scope: this is the per-call overhead users pay on every item.
    run = pipeline._wb_entry()
    device = target_device(pipeline)
    mode_token = MODE.set("infer")
    device_token = DEVICE.set(device) if device is not None else None
    grad_before = torch.is_grad_enabled()
    if grad_before:
        set_grad_enabled(False)
    try:
        if device_token is not None and pipeline._wb_entry_stage() == FORWARD:
            x = to_device(x)  # no batch step to move it: the input goes to the layers' device first
        return run(x)
    except Exception as exc:
        mark_item(exc, f"input {short_repr(x)}")
        raise
    finally:
        if grad_before:
            set_grad_enabled(True)
        if device_token is not None:
            DEVICE.reset(device_token)
        MODE.reset(mode_token)


def eval_apply(pipeline: Transform, xs: Any, *, batch_size: int = 64, num_workers: int = 0,
               progress: bool = False, **loader_options: Any) -> "ApplyIterator":
    """Outputs of ``pipeline`` over ``xs`` in eval mode, without grad (see the module docstring)."""
    return ApplyIterator(pipeline, xs, mode="eval", grad=False, batch_size=batch_size,
                         num_workers=num_workers, progress=progress, loader_options=loader_options)


def train_apply(pipeline: Transform, xs: Any, *, batch_size: int = 64, shuffle: bool = True,
                num_workers: int = 0, progress: bool = False, **loader_options: Any) -> "ApplyIterator":
    """Outputs of ``pipeline`` over ``xs`` in train mode, with grad, shuffled by default."""
    return ApplyIterator(pipeline, xs, mode="train", grad=True, batch_size=batch_size,
                         num_workers=num_workers, progress=progress,
                         loader_options={"shuffle": shuffle, **loader_options})


class ApplyIterator:
    """The outputs of one ``eval_apply``/``train_apply`` call: iterable (again), with ``len``.

    ``len`` counts items when the pipeline has ``unbatch`` (or no ``batch``), batches otherwise.
    Each ``iter()`` is a new pass over the data (reshuffled when shuffling); ``next()`` continues
    the current one.
    """

    def __init__(self, pipeline: Transform, xs: Any, *, mode: str, grad: bool, batch_size: int,
                 num_workers: int, progress: bool, loader_options: dict[str, Any]):
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.pipeline = pipeline
        self.xs = xs if hasattr(xs, "__getitem__") and hasattr(xs, "__len__") else list(xs)
        (pre, fwd, post), end = parts(pipeline)
        # Without batch nothing is collated: the items go through forward (and postprocess) one by one.
        self.batched = pipeline._wb_entry_stage() == PREPROCESS
        self.per_item = end == POSTPROCESS or not self.batched
        self._pre = pre._wb_callable() if pre is not None else None
        self._fwd = fwd._wb_callable() if fwd is not None else None
        self._post = post._wb_callable() if post is not None else None
        # The per-item stages, called step-direct in this process (see step_of).
        self._pre_step, self._pre_node = step_of(pre)
        self._post_step, self._post_node = step_of(post)
        self.mode, self.grad = mode, grad
        self.batch_size, self.num_workers, self.progress = batch_size, num_workers, progress
        options = dict(loader_options)
        self._shuffle = bool(options.pop("shuffle", False))
        self._drop_last = bool(options.pop("drop_last", False))
        self._sampler = options.pop("sampler", None)
        self._batch_sampler = options.pop("batch_sampler", None)
        self._generator = options.pop("generator", None)
        if "collate_fn" in options:
            raise TypeError(
                "collate_fn= is not a loader option here: the pipeline's batch step collates, so that "
                "infer_apply, eval_apply, explain and a saved bundle all batch the same way; put "
                "batch.collate(fn) (or batch.pad(value=0) for tensors of different lengths) in the "
                "pipeline in place of batch")
        self._loader_options = options
        self._join: Callable[..., Any] = Join(*batch_marker(pipeline)) if self.batched else list
        self._device = target_device(pipeline)
        self._len = self._count()
        self._current: Iterator[Any] | None = None

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[Any]:
        return self._pass()

    def __next__(self) -> Any:
        if self._current is None:
            self._current = self._pass()
        return next(self._current)

    def __repr__(self) -> str:
        unit = "items" if self.per_item else "batches"
        return f"<{self.mode}_apply over {len(self.xs)} inputs: {self._len} {unit}>"

    # --- batching ------------------------------------------------------------------------------

    def _index_batches(self) -> list[list[int]]:
        if self._batch_sampler is not None:
            return [list(b) for b in self._batch_sampler]
        if self._sampler is not None:
            order: Sequence[int] = list(self._sampler)
        elif self._shuffle:
            order = torch.randperm(len(self.xs), generator=self._generator).tolist()
        else:
            order = range(len(self.xs))
        size = self.batch_size
        batches = [list(order[i:i + size]) for i in range(0, len(order), size)]
        if self._drop_last and batches and len(batches[-1]) < size:
            batches.pop()
        return batches

    def _count(self) -> int:
        if self._batch_sampler is None and self._sampler is None:
            n = len(self.xs)
            if self._drop_last:
                n -= n % self.batch_size
            return n if self.per_item else -(-n // self.batch_size)
        batches = self._index_batches()
        return sum(map(len, batches)) if self.per_item else len(batches)

    def _batches(self, index_batches: list[list[int]]) -> Iterator[Any]:
        """Preprocessed (and, with ``batch``, collated) batches, one per index batch."""
        dataset = _PreprocessDataset(self.xs, self._pre, self.mode)
        dataset.with_indices = self.batched
        join = self._join
        if self.num_workers == 0 and not self._loader_options:
            # What dataset[i] does, inlined: this loop's cost is paid on every item.
            xs, pre, node = self.xs, self._pre_step, self._pre_node
            for indices in index_batches:
                with Scope(self.mode, self.grad, None):
                    if pre is None:
                        items = [xs[i] for i in indices]
                    else:
                        items = []
                        append = items.append
                        for i in indices:
                            x = xs[i]
                            try:
                                append(pre(x))
                            except Exception as exc:
                                step_failed(exc, node, f"item {i}")
                                raise
                    joined = join(items, indices) if self.batched else join(items)
                yield joined
            return
        loader = torch.utils.data.DataLoader(
            dataset, batch_sampler=index_batches, num_workers=self.num_workers,
            collate_fn=join, **self._loader_options,
        )
        yield from loader

    # --- the pass --------------------------------------------------------------------------------

    def _pass(self) -> Iterator[Any]:
        index_batches = self._index_batches()
        bar = _progress_bar(self._len, self.mode) if self.progress else None
        try:
            for indices, batch in zip(index_batches, self._batches(index_batches)):
                outputs = self._finish(indices, batch)
                if bar is not None:
                    bar.update(len(outputs) if self.per_item else 1)
                if self.per_item:
                    yield from outputs
                else:
                    yield outputs[0]
        finally:
            if bar is not None:
                bar.close()

    def _finish(self, indices: list[int], batch: Any) -> list[Any]:
        """Forward and postprocess one preprocessed batch; a list of items (or the one batch)."""
        with Scope(self.mode, self.grad, self._device):
            if not self.batched:
                return self._unbatched(indices, batch)
            batch = to_device(batch)
            if self._fwd is not None:
                try:
                    batch = self._fwd(batch)
                except Exception as exc:
                    mark_item(exc, f"the batch of items {span(indices)}")
                    raise
            if not self.per_item:
                return [batch]
            items = uncollate(batch)
            if len(items) != len(indices):
                raise ValueError(f"unbatch produced {len(items)} items from a batch of {len(indices)}: the "
                                 "forward stage must keep the batch dimension first")
            post, node = self._post_step, self._post_node
            if post is None:
                return items
            out = []
            append = out.append
            for i, item in zip(indices, items):
                try:
                    append(post(item))
                except Exception as exc:
                    step_failed(exc, node, f"item {i}")
                    raise
            return out

    def _unbatched(self, indices: list[int], items: list[Any]) -> list[Any]:
        """Forward and postprocess of a pipeline without ``batch``: per item, in this process."""
        stages = [s for s in (self._fwd, self._post) if s is not None]
        out = []
        for i, x in zip(indices, items):
            try:
                x = to_device(x)
                for stage in stages:
                    x = stage(x)
            except Exception as exc:
                mark_item(exc, f"item {i}")
                raise
            out.append(x)
        return out


class _PreprocessDataset(torch.utils.data.Dataset):
    """``xs[i]`` through the preprocessing stage; what DataLoader workers run."""

    def __init__(self, xs: Any, pre: Callable[[Any], Any] | None, mode: str):
        self.xs, self.pre, self.mode = xs, pre, mode
        self.with_indices = False

    def __len__(self) -> int:
        return len(self.xs)

    def __getitem__(self, i: int) -> Any:
        if MODE.get() != self.mode:  # in a worker process: adopt the run's mode for good
            MODE.set(self.mode)
        x = self.xs[i]
        if self.pre is not None:
            try:
                x = self.pre(x)
            except Exception as exc:
                mark_item(exc, f"item {i}")
                raise
        return Indexed(i, x) if self.with_indices else x

    def __reduce__(self) -> Any:
        # Workers started with spawn unpickle the dataset: lambdas and notebook functions need cloudpickle.
        import cloudpickle

        return (_load_dataset, (cloudpickle.dumps((self.xs, self.pre, self.mode)), self.with_indices))


def _load_dataset(payload: bytes, with_indices: bool = False) -> _PreprocessDataset:
    import pickle

    dataset = _PreprocessDataset(*pickle.loads(payload))
    dataset.with_indices = with_indices
    return dataset


def _progress_bar(total: int, mode: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"{mode}_apply")
