"""``trace``: run one item through a pipeline and keep every step's output.

The trace executes the pipeline tree itself, node by node: each composite runs its children
through its own ``_wb_run`` hook (see :class:`workbench.pipeline._Composite`), which the trace
calls with children that record their outputs, so it computes exactly as the composite does, in
the same scope as :func:`workbench.apply.infer_apply` (infer mode, no grad, layers in eval mode, batches on
the pipeline's device), so ``trace(pl, x).output`` equals ``pl.infer_apply(x)``.

Each step's output is recorded (tensors and arrays are copied, so that a later in-place operation
such as ``ReLU(inplace=True)`` cannot change what an earlier step is shown to have produced) with
its position in the tree (a path of child indices such as ``(2, 0)``), its name and its stage.
With ``layers=True`` forward hooks on the submodules of every torch layer record their outputs too;
the hooks are removed when the run ends, also when it fails.

>>> import torch
>>> from workbench import transform, batch, unbatch
>>> from workbench.inspector import trace
>>> nn = transform(torch.nn)
>>> pl = transform(torch.tensor) - "to_tensor" >> batch >> nn.Linear(2, 3) >> unbatch
>>> t = trace(pl, [1.0, 2.0])
>>> [r.where for r in t][:3]
['[0]', '[1]', '[2]']
>>> t["to_tensor"].output
tensor([1., 2.])
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence, overload

import numpy as np
import torch

from .._running import Scope, mark_item, target_device
from .._text import short_repr, shorten
from ..collate import to_device
from ..display import kind_of, label_of
from ..pipeline import PREPROCESS, STAGE_NAMES, Batch, Transform, Unbatch, _Composite

__all__ = ["trace", "Trace", "TraceRecord", "StepInfo", "pipeline_steps"]

Path = tuple[int, ...]
Key = tuple[Path, str | None]


# --- the pipeline's structure ----------------------------------------------------------------------


@dataclass(frozen=True)
class StepInfo:
    """One place in a pipeline whose output a trace can hold.

    ``path`` is the position in the tree (``()`` is the whole pipeline, ``(2, 0)`` child 0 of
    child 2); ``module`` is the dotted name of a submodule inside the torch layer at ``path``
    (``None`` for pipeline steps). ``stage`` is the stage the step's *output* belongs to: ``batch``
    outputs a batch, so it counts as ``forward``; ``unbatch`` counts as ``postprocess``.
    """

    path: Path
    module: str | None
    label: str
    name: str | None
    kind: str
    stage: str
    depth: int

    @property
    def key(self) -> Key:
        return (self.path, self.module)

    @property
    def where(self) -> str:
        """``[2][0]`` for a step, ``[2].features.0`` for a submodule, ``(pipeline)`` for the root."""
        text = "".join(f"[{i}]" for i in self.path)
        if self.module is not None:
            text += "." + self.module
        return text or "(pipeline)"


def pipeline_steps(pipeline: Transform, layers: bool = False) -> list[StepInfo]:
    """Every step of ``pipeline`` (depth first, the pipeline itself first), without running it.

    With ``layers=True`` the submodules of each torch layer follow the layer.
    """
    out: list[StepInfo] = []
    _collect(pipeline, (), pipeline._wb_entry_stage(), 0, layers, out)
    return out


def _collect(node: Transform, path: Path, stage: int, depth: int, layers: bool, out: list[StepInfo]) -> int:
    """Append ``node`` and what is inside it; returns the stage after ``node``."""
    end = node._stage_to if isinstance(node, (Batch, Unbatch)) else stage
    info = StepInfo(path, None, label_of(node), node._wb_name, kind_of(node), STAGE_NAMES[end], depth)
    out.append(info)
    if _expanded(node):
        position = len(out)
        column = node._wb_shape.layout == "column"  # the stage flows through a column's children
        for i, child in enumerate(node._wb_children()):
            end = max(end, _collect(child, path + (i,), end if column else stage, depth + 1, layers, out))
        out[position - 1] = _replace_stage(info, end)
    elif layers and isinstance(node, torch.nn.Module):
        for name, sub in _submodules(node):
            out.append(StepInfo(path, name, _layer_label(sub), None, "layer",
                                STAGE_NAMES[end], depth + 1 + name.count(".")))
    return end


def _replace_stage(info: StepInfo, stage: int) -> StepInfo:
    return StepInfo(info.path, info.module, info.label, info.name, info.kind, STAGE_NAMES[stage], info.depth)


def _layer_label(module: torch.nn.Module) -> str:
    """``Conv2d(1, 8, kernel_size=(3, 3), ...)``: the submodule's class and settings, shortened."""
    label = " ".join(f"{type(module).__name__}({module.extra_repr()})".split())
    return shorten(label, 60)


def _submodules(layer: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
    return [(name, m) for name, m in layer.named_modules() if name]


# --- records and the result ------------------------------------------------------------------------


@dataclass
class TraceRecord:
    """One step's output in a trace.

    ``output`` is a copy of what the step returned. For steps inside a map (``~t``) it is the list
    of the step's outputs, one per time it ran (``mapped`` is then true). ``note`` says which branch
    an ``IfMode`` took or which exception a ``Try`` caught. ``calls`` counts how often a submodule
    ran (its first output is kept).
    """

    step: StepInfo
    output: Any
    mapped: bool = False
    note: str | None = None
    calls: int = 1

    path = property(lambda self: self.step.path)
    module = property(lambda self: self.step.module)
    label = property(lambda self: self.step.label)
    name = property(lambda self: self.step.name)
    kind = property(lambda self: self.step.kind)
    stage = property(lambda self: self.step.stage)
    where = property(lambda self: self.step.where)
    key = property(lambda self: self.step.key)

    def __repr__(self) -> str:
        extra = f", note={self.note!r}" if self.note else ""
        return (f"TraceRecord({self.where} {self.label!r}, stage={self.stage!r}, "
                f"output={_describe_value(self.output)}{extra})")


class Trace(Sequence[TraceRecord]):
    """The outputs of every step for one input, in the order the steps finished.

    ``trace[i]`` is the ``i``-th record; ``trace[(2, 0)]`` the record of the step at that path
    (``trace[()]`` the whole pipeline's); ``trace["name"]`` the step with that name (a name given
    with ``t - "name"``, else a step label such as ``"Conv2d(1, 4, ...)"``, else a submodule's
    dotted name such as ``"features.0"``). ``output`` is the pipeline's output; ``error`` the
    exception that stopped a partial trace (the inspector keeps those; :func:`trace` raises).
    """

    def __init__(self, records: list[TraceRecord], input: Any, output: Any = None,
                 error: BaseException | None = None):
        self._records = records
        self.input = input
        self.output = output
        self.error = error

    def __len__(self) -> int:
        return len(self._records)

    @overload
    def __getitem__(self, key: int) -> TraceRecord: ...
    @overload
    def __getitem__(self, key: slice) -> list[TraceRecord]: ...
    @overload
    def __getitem__(self, key: tuple[int, ...] | str) -> TraceRecord: ...

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, (int, slice)):
            return self._records[key]
        if isinstance(key, tuple):
            for r in self._records:
                if r.path == key and r.module is None:
                    return r
            raise KeyError(f"no step at position {key} in this trace; positions: "
                           f"{[r.path for r in self._records if r.module is None]}")
        if isinstance(key, str):
            for test in (lambda r: r.name == key and r.module is None,
                         lambda r: r.label == key and r.module is None,
                         lambda r: r.module == key):
                for r in self._records:
                    if test(r):
                        return r
            raise KeyError(f"no step named {key!r} in this trace; names: {self.names()}")
        raise TypeError(f"a trace is indexed by int, slice, position tuple or name, not {type(key).__name__}")

    def __iter__(self) -> Iterator[TraceRecord]:
        return iter(self._records)

    def get(self, key: Key) -> TraceRecord | None:
        """The record for a :attr:`StepInfo.key` ``(path, module)``; ``None`` when the step did not run."""
        for r in self._records:
            if r.key == key:
                return r
        return None

    def names(self) -> list[str]:
        """Given names, then labels, then submodule names (what ``trace[name]`` accepts)."""
        named = [r.name for r in self._records if r.name and r.module is None]
        labels = [r.label for r in self._records if r.module is None]
        modules = [r.module for r in self._records if r.module is not None]
        return list(dict.fromkeys(named + labels + modules))

    def __repr__(self) -> str:
        lines = [f"Trace of {len(self)} outputs for input {short_repr(self.input)}"]
        if self.error is not None:
            lines[0] += f" (stopped by {type(self.error).__name__}: {self.error})"
        for r in self._records:
            indent = "  " * (len(r.path) + (r.module.count(".") + 1 if r.module else 0))
            note = f"  [{r.note}]" if r.note else ""
            lines.append(f"{r.stage[:4]:>4} {indent}{r.where} {r.label}: {_describe_value(r.output)}{note}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        from .summary import summarize

        rows = []
        for r in self._records:
            s = summarize(r.output)
            pad = 12 * (len(r.path) + (r.module.count(".") + 1 if r.module else 0))
            stats = s.stats_text() if s.numeric else html.escape(s.preview or "")
            rows.append(
                f"<tr><td>{html.escape(r.stage)}</td><td style='padding-left:{pad}px;text-align:left'>"
                f"<code>{html.escape(r.where)}</code> {html.escape(r.label)}</td>"
                f"<td>{html.escape(s.type_name)}</td><td>{html.escape(s.shape_text)}</td>"
                f"<td>{html.escape(s.dtype or '')}</td><td style='text-align:left'>{html.escape(stats)}"
                f"{' · ' + html.escape(r.note) if r.note else ''}</td></tr>"
            )
        error = (f"<div style='color:#b00'>stopped by {html.escape(type(self.error).__name__)}: "
                 f"{html.escape(str(self.error))}</div>" if self.error is not None else "")
        return ("<div class='workbench-trace'><table style='font-size:12px'>"
                "<tr><th>stage</th><th>step</th><th>type</th><th>shape</th><th>dtype</th><th>summary</th></tr>"
                + "".join(rows) + f"</table>{error}</div>")


def _describe_value(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"tensor{tuple(value.shape)} {str(value.dtype).replace('torch.', '')}"
    if isinstance(value, np.ndarray):
        return f"ndarray{value.shape} {value.dtype}"
    if isinstance(value, (tuple, list)) and not isinstance(value, str):
        inner = ", ".join(_describe_value(v) for v in value[:4])
        more = ", ..." if len(value) > 4 else ""
        return f"{type(value).__name__}[{inner}{more}]"
    if isinstance(value, dict):
        return "dict{" + ", ".join(f"{k!r}: {_describe_value(v)}" for k, v in list(value.items())[:4]) + "}"
    return short_repr(value)


# --- running ---------------------------------------------------------------------------------------


def trace(pipeline: Transform, x: Any, layers: bool = False) -> Trace:
    """Run ``x`` through ``pipeline`` like ``pipeline.infer_apply(x)`` and return every step's output.

    ``layers=True`` also records the outputs of the submodules of torch layers (forward hooks,
    always removed afterwards). An exception in a step propagates with the same type and note as
    from ``infer_apply``.

    >>> t = trace(pl, x, layers=True)   # doctest: +SKIP
    >>> t[(2,)].output.shape, t["conv.0"].output.shape  # doctest: +SKIP
    """
    result = _run(pipeline, x, layers)
    if result.error is not None:
        raise result.error
    return result


def _run(pipeline: Transform, x: Any, layers: bool, steps: list[StepInfo] | None = None) -> Trace:
    """The trace of ``x``; a failing step ends it with ``error`` set instead of raising.

    ``steps`` is ``pipeline_steps(pipeline, layers)`` when the caller has it already (labels of
    lambdas are read from their source, which costs more than running a small pipeline).
    """
    if not isinstance(pipeline, Transform):
        raise TypeError(f"trace() needs a workbench pipeline or step, got {type(pipeline).__name__}; "
                        "wrap it with workbench.transform first")
    recorder = _Recorder(steps if steps is not None else pipeline_steps(pipeline, layers))
    recorder.batched = pipeline._wb_entry_stage() == PREPROCESS
    handles = recorder.attach_hooks(pipeline) if layers else []
    try:
        with Scope("infer", False, target_device(pipeline)):
            try:
                out = recorder.run(pipeline, to_device(x) if not recorder.batched else x, ())
            except Exception as exc:
                mark_item(exc, f"input {short_repr(x)}")
                return Trace(recorder.records, x, None, exc)
    finally:
        for handle in handles:
            handle.remove()
    return Trace(recorder.records, x, out)


def _expanded(node: Transform) -> bool:
    """Whether the trace steps into ``node``'s children: a composite computing through its ``_wb_run``
    hook (a subclass that overrides ``_call`` runs as one step)."""
    return isinstance(node, _Composite) and type(node)._call is _Composite._call


class _Recorder:
    """Executes a pipeline tree node by node, recording each node's output."""

    def __init__(self, steps: list[StepInfo]):
        self.steps = {s.key: s for s in steps}
        self.records: list[TraceRecord] = []
        self._by_key: dict[Key, TraceRecord] = {}
        self._map_depth = 0
        self._leaf_path: Path = ()
        self.batched = True  # False: the pipeline has no batch, so its unbatch has nothing to split

    # --- recording ---

    def record(self, path: Path, value: Any, note: str | None = None) -> None:
        key = (path, None)
        if self._map_depth:
            existing = self._by_key.get(key)
            if existing is None:
                existing = self._by_key[key] = TraceRecord(self.steps[key], [], mapped=True, note=note)
                self.records.append(existing)
            existing.output.append(_snapshot(value))
            existing.calls = len(existing.output)
            return
        rec = TraceRecord(self.steps[key], _snapshot(value), note=note)
        self._by_key[key] = rec
        self.records.append(rec)

    def attach_hooks(self, pipeline: Transform) -> list[Any]:
        handles: list[Any] = []
        seen: set[int] = set()
        try:
            for layer in pipeline._wb_modules():
                for name, sub in _submodules(layer):
                    if id(sub) in seen:
                        continue
                    seen.add(id(sub))
                    handles.append(sub.register_forward_hook(self._hook(name)))
        except BaseException:
            for handle in handles:
                handle.remove()
            raise
        return handles

    def _hook(self, name: str) -> Callable[..., None]:
        def record_submodule(module: Any, inputs: Any, output: Any) -> None:
            key = (self._leaf_path, name)
            step = self.steps.get(key)
            if step is None:  # the submodule ran inside another layer that shares it
                step = StepInfo(self._leaf_path, name, _layer_label(module), None, "layer",
                                "forward", len(self._leaf_path) + 1 + name.count("."))
            existing = self._by_key.get(key)
            if existing is not None:
                existing.calls += 1
                return
            rec = self._by_key[key] = TraceRecord(step, _snapshot(output))
            self.records.append(rec)

        return record_submodule

    # --- executing ---

    def run(self, node: Transform, x: Any, path: Path) -> Any:
        if not _expanded(node):
            out = self._leaf(node, x, path)
            self.record(path, out)
            return out
        notes: list[str] = []
        fns = [self._child(child, path + (i,)) for i, child in enumerate(node._wb_children())]
        repeats = int(node._wb_shape.repeats)  # its children run per element: keep lists of their outputs
        self._map_depth += repeats
        try:
            out = node._wb_run(x, fns, notes.append)
        finally:
            self._map_depth -= repeats
        self.record(path, out, notes[-1] if notes else None)
        return out

    def _child(self, child: Transform, path: Path) -> Callable[[Any], Any]:
        return lambda x: self.run(child, x, path)

    def _leaf(self, node: Transform, x: Any, path: Path) -> Any:
        if not self.batched and isinstance(node, Unbatch):
            return x
        outer = self._leaf_path
        self._leaf_path = path
        try:
            return node._wb_callable()(x)
        finally:
            self._leaf_path = outer


def _snapshot(value: Any) -> Any:
    """A copy of tensors and arrays inside ``value`` (so later in-place steps cannot change it)."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, tuple):
        items = [_snapshot(v) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
    if type(value) is list:
        return [_snapshot(v) for v in value]
    if type(value) is dict:
        return {k: _snapshot(v) for k, v in value.items()}
    return value
