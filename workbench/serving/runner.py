"""Running a pipeline on a group of inputs as one forward batch, each input failing on its own.

:class:`BatchRunner` is what the server's inference thread calls: per-item preprocessing, one
forward batch, per-item postprocessing, all in infer mode without grad — the work ``infer_apply``
does on one input, spread over several. An input that fails in preprocessing or postprocessing
fails alone; a batch whose collation or forward pass fails is run again item by item, so that only
the input that caused it fails. A pipeline without ``batch`` (all forward stage) cannot be batched
and runs through ``infer_apply``, one input at a time.

>>> runner = BatchRunner(pl)                      # doctest: +SKIP
>>> [r.value for r in runner.run([x1, x2])]        # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from .._running import Scope, batch_marker, mark_item, split, step_failed, step_of, target_device
from ..collate import collate, to_device, uncollate
from ..pipeline import FORWARD, POSTPROCESS, PREPROCESS, STAGE_NAMES, Transform, Unbatch

__all__ = ["BatchRunner", "Result"]


@dataclass
class Result:
    """One input's outcome: its ``value``, or the ``error`` it raised and the ``stage`` it raised in."""

    value: Any = None
    error: BaseException | None = None
    stage: str | None = None
    step: str | None = None

    def __post_init__(self) -> None:
        if self.error is not None and self.step is None:
            self.step = getattr(self.error, "_wb_step", None)

    @property
    def ok(self) -> bool:
        return self.error is None


class BatchRunner:
    """Runs a pipeline's stages over a list of inputs (see the module docstring).

    ``batchable`` is False for a pipeline without ``batch``; :meth:`run` then runs each input
    through ``infer_apply``.
    """

    def __init__(self, pipeline: Transform):
        self.pipeline = pipeline
        nodes = list(pipeline._wb_walk())
        marker = batch_marker(pipeline)
        self.batchable = marker is not None
        # The pipeline's own batch step collates (batch, batch.pad(...), batch.collate(fn)), as infer_apply does.
        self._collate = marker[1]._wb_collate if marker is not None else collate
        # Without unbatch, infer_apply answers a batch of one.
        self.per_item_output = any(isinstance(n, Unbatch) for n in nodes)
        (pre, fwd, post), _ = split(pipeline, PREPROCESS)
        self._pre, self._pre_node = step_of(pre)
        self._fwd = fwd._wb_callable() if fwd is not None else None
        self._post, self._post_node = step_of(post)

    def run(self, inputs: Sequence[Any]) -> list[Result]:
        """One :class:`Result` per input, in order; never raises for an input's failure."""
        if not self.batchable:
            return [self._whole(x) for x in inputs]
        results = [Result() for _ in inputs]
        with Scope("infer", False, target_device(self.pipeline)):
            items, where = self._preprocess(inputs, results)
            if items:
                try:
                    self._finish(items, where, results)
                except _BatchFailed as failed:
                    if len(items) == 1:
                        results[where[0]] = Result(error=failed.cause, stage=STAGE_NAMES[FORWARD], step=failed.step)
                    else:
                        # The batch as a whole failed (collation or forward): one input may be to blame.
                        for item, i in zip(items, where):
                            try:
                                self._finish([item], [i], results)
                            except _BatchFailed as alone:
                                results[i] = Result(error=alone.cause, stage=STAGE_NAMES[FORWARD], step=alone.step)
            return results

    def _whole(self, x: Any) -> Result:
        try:
            return Result(value=self.pipeline.infer_apply(x))
        except Exception as exc:
            return Result(error=exc, stage=STAGE_NAMES[FORWARD])

    def _preprocess(self, inputs: Sequence[Any], results: list[Result]) -> tuple[list[Any], list[int]]:
        pre, node = self._pre, self._pre_node
        if pre is None:
            return list(inputs), list(range(len(inputs)))
        items, where = [], []
        for i, x in enumerate(inputs):
            try:
                items.append(pre(x))
                where.append(i)
            except Exception as exc:
                step_failed(exc, node, "this input")
                results[i] = Result(error=exc, stage=STAGE_NAMES[PREPROCESS])
        return items, where

    def _finish(self, items: list[Any], where: list[int], results: list[Result]) -> None:
        """Forward ``items`` as one batch and postprocess each; :class:`_BatchFailed` when the batch fails."""
        try:
            batch = to_device(self._collate(items))
        except Exception as exc:
            raise _BatchFailed(exc, "batch") from exc
        if self._fwd is not None:
            try:
                batch = self._fwd(batch)
            except Exception as exc:
                mark_item(exc, "this input" if len(items) == 1 else f"a batch of {len(items)}")
                raise _BatchFailed(exc, getattr(exc, "_wb_step", None)) from exc
        try:
            outputs = uncollate(batch)
            if len(outputs) != len(items):
                raise ValueError(f"unbatch produced {len(outputs)} items from a batch of {len(items)}: the "
                                 "forward stage must keep the batch dimension first")
        except Exception as exc:
            raise _BatchFailed(exc, "unbatch") from exc
        post, node = self._post, self._post_node
        for i, output in zip(where, outputs):
            if not self.per_item_output:
                results[i] = Result(value=self._collate([output]))
                continue
            if post is None:
                results[i] = Result(value=output)
                continue
            try:
                results[i] = Result(value=post(output))
            except Exception as exc:
                step_failed(exc, node, "this input")
                results[i] = Result(error=exc, stage=STAGE_NAMES[POSTPROCESS])


class _BatchFailed(Exception):
    """The batch as a whole failed: in collation, the forward stage or unbatch (``step``)."""

    def __init__(self, cause: Exception, step: str | None):
        super().__init__(str(cause))
        self.cause, self.step = cause, step
