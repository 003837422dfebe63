"""``InspectorState``: what the inspector shows, computed in plain Python (the widget only wires it up).

The state holds the pipeline, the inputs, the selected step, the selected example (and the one it
is compared with), and a small LRU cache of traces. Nothing is traced until an example is looked
at, and at most ``cache_size`` traced examples are kept (default 8; each holds one example's
outputs of every step), so inspecting a pipeline over 10,000 inputs holds at most 8 examples'
intermediate outputs whichever examples are browsed.

>>> import os, shutil, tempfile, torch
>>> from workbench import batch, transform, unbatch
>>> conv = torch.nn.Conv2d(1, 32, 3)
>>> _ = torch.nn.init.constant_(conv.weight, 0.1), torch.nn.init.zeros_(conv.bias)
>>> pl = batch >> transform(conv) - "conv1" >> unbatch
>>> state = InspectorState(pl, torch.ones(20, 1, 8, 8))
>>> state.select_step("conv1").label, state.select_example(17)
('conv1', None)
>>> round(state.summary().mean, 3), state.image_layout().note
(0.9, 'showing 16 of 32 channels')
>>> png = state.export_png(os.path.join(tempfile.mkdtemp(), "conv1-17.png"))
>>> os.path.basename(png), os.path.getsize(png) > 0
('conv1-17.png', True)
>>> shutil.rmtree(os.path.dirname(png))
"""

from __future__ import annotations

import dataclasses
import operator
import re
from collections import OrderedDict
from typing import Any, Callable, Mapping, Sequence

from matplotlib.figure import Figure

from .._running import batch_marker
from ..pipeline import Transform
from .summary import ImageLayout, Summary, TopK, image_layout, leaves, summarize, text_of, top_k
from .tracing import StepInfo, Trace, _run, pipeline_steps
from .raw import raw_html, token_list, tokens_html
from .views import Column, ViewOptions, save_png, view_figure

__all__ = ["InspectorState", "DEFAULT_CACHE_SIZE"]

DEFAULT_CACHE_SIZE = 8

Listener = Callable[["InspectorState", str], None]


class InspectorState:
    """The inspector's model: selection, lazily traced examples, and what to show for them.

    Parameters: ``layers`` also lists submodules of torch layers as steps; ``cache_size`` bounds the
    traced examples kept (at least 2, so a comparison never re-traces); ``examples``/``labels`` a
    ranked list of example indices for the example picker (see :meth:`set_examples`);
    ``class_names`` names the entries of score vectors in the top-k, ``feature_names`` the entries
    of a table row, ``vocab`` maps token ids to tokens (all three default to the pipeline's
    annotations, see :func:`workbench.annotate`); ``max_panels`` caps feature-map grids; ``top_k`` is
    how many scores are listed; ``bins`` the histogram bins.

    Listeners added with :meth:`subscribe` are called as ``listener(state, what)`` after every change,
    ``what`` being ``"step"``, ``"example"``, ``"compare"``, ``"part"`` or ``"examples"``.
    """

    def __init__(self, pipeline: Transform, inputs: Any, *, layers: bool = False,
                 cache_size: int = DEFAULT_CACHE_SIZE, examples: Any = None,
                 labels: Sequence[str] | None = None,
                 class_names: Sequence[str] | Mapping[int, str] | None = None,
                 feature_names: Sequence[str] | None = None, vocab: Any = None,
                 max_panels: int = 16, top_k: int = 5, bins: int = 30):
        if not isinstance(pipeline, Transform):
            raise TypeError(f"inspect() needs a workbench pipeline, got {type(pipeline).__name__}; "
                            "wrap it with workbench.transform first")
        if not (hasattr(inputs, "__getitem__") and hasattr(inputs, "__len__")) or isinstance(inputs, (str, bytes)):
            if isinstance(inputs, (str, bytes)) or not hasattr(inputs, "__iter__"):
                raise TypeError(f"inputs must be a sequence of examples (list, tensor, dataset), "
                                f"got {type(inputs).__name__}")
            inputs = list(inputs)
        if len(inputs) == 0:
            raise ValueError("inputs is empty: the inspector needs at least one example")
        if not isinstance(cache_size, int) or cache_size < 2:
            raise ValueError(f"cache_size must be an integer of at least 2, got {cache_size!r}")
        self.pipeline = pipeline
        self.inputs = inputs
        self.layers = layers
        self.cache_size = cache_size
        from ..annotations import class_names as _class_names
        from ..annotations import feature_names as _feature_names
        from ..annotations import vocabulary

        if class_names is None or not isinstance(class_names, Mapping):
            class_names = _class_names(pipeline, class_names)
        self.feature_names = _feature_names(pipeline, feature_names)
        self.vocab = vocabulary(pipeline, vocab)
        self.padding = _padding_id(pipeline) if self.vocab is not None else None
        self.options = ViewOptions(bins=bins, max_panels=max_panels, top_k=top_k, class_names=class_names,
                                   feature_names=self.feature_names)
        self.steps: list[StepInfo] = pipeline_steps(pipeline, layers)
        self.step: StepInfo = self.steps[0]
        self.example: int = 0
        self.compare: int | None = None
        self.part: int = 0
        self.examples: list[int] | None = None
        self.example_labels: list[str] | None = None
        self._cache: OrderedDict[int, Trace] = OrderedDict()
        self._listeners: list[Listener] = []
        self.traces_run = 0
        if examples is not None:
            self.set_examples(examples, labels)

    # --- listeners -------------------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(state, what)`` after each change; returns a function that unsubscribes."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _changed(self, what: str) -> None:
        for listener in list(self._listeners):
            listener(self, what)

    # --- selection -------------------------------------------------------------------------------

    def find_step(self, key: Any) -> StepInfo:
        """The step for a :class:`StepInfo`, a key ``(path, module)``, a path tuple, or a name/label/where."""
        if isinstance(key, StepInfo):
            key = key.key
        for s in self.steps:
            if s.key == key or (isinstance(key, tuple) and s.path == key and s.module is None):
                return s
        if isinstance(key, str):
            for test in (lambda s: s.name == key and s.module is None, lambda s: s.where == key,
                         lambda s: s.label == key and s.module is None, lambda s: s.module == key):
                for s in self.steps:
                    if test(s):
                        return s
        known = [s.name or s.where for s in self.steps]
        raise KeyError(f"no step {key!r} in this pipeline; steps: {known}")

    def select_step(self, key: Any) -> StepInfo:
        """Show the output of this step (see :meth:`find_step` for what ``key`` can be)."""
        step = self.find_step(key)
        if step != self.step:
            self.step, self.part = step, 0
            self._changed("step")
        return step

    def _check_index(self, index: Any) -> int:
        if isinstance(index, bool) or not isinstance(index, int):
            try:
                index = operator.index(index)  # numpy and 0-d torch integers, not floats
            except TypeError:
                raise TypeError(f"an example is chosen by its integer index, got {index!r}") from None
        n = len(self.inputs)
        if not -n <= index < n:
            raise IndexError(f"example {index} is out of range: there are {n} inputs (0..{n - 1})")
        return index % n

    def select_example(self, index: int) -> None:
        """Show example ``inputs[index]``."""
        index = self._check_index(index)
        if index != self.example:
            self.example, self.part = index, 0
            self._changed("example")

    def set_compare(self, index: int | None) -> None:
        """Compare the current example side by side with ``inputs[index]``; ``None`` ends the comparison."""
        index = None if index is None else self._check_index(index)
        if index != self.compare:
            self.compare = index
            self._changed("compare")

    def select_part(self, part: int) -> None:
        """For tuple/list/dict outputs: which part (see :meth:`parts`) the views show."""
        n = len(self.parts())
        if not 0 <= part < max(n, 1):
            raise IndexError(f"part {part} is out of range: this output has {n} parts")
        if part != self.part:
            self.part = part
            self._changed("part")

    def set_examples(self, indices: Any, labels: Sequence[str] | None = None) -> None:
        """Feed the example picker a ranked list of example indices (e.g. the hardest examples first).

        ``indices``: integers into ``inputs``, or a pandas DataFrame (its ``"index"`` column when it has
        one, else its index). ``labels``: one text per index shown next to it (e.g. "loss 2.3 · true 3 ·
        pred 8"). The first listed example is selected. ``set_examples(None)`` returns to all inputs.
        """
        if indices is None:
            self.examples = self.example_labels = None
            self._changed("examples")
            return
        if hasattr(indices, "columns") and hasattr(indices, "index"):
            indices = indices["index"] if "index" in indices.columns else indices.index
        checked = [self._check_index(i) for i in indices]
        if not checked:
            raise ValueError("set_examples() needs at least one example index")
        if labels is not None:
            labels = [str(label) for label in labels]
            if len(labels) != len(checked):
                raise ValueError(f"set_examples() got {len(checked)} indices but {len(labels)} labels")
        self.examples, self.example_labels = checked, labels
        self._changed("examples")
        self.select_example(checked[0])

    def example_label(self, index: int) -> str:
        """``example 17``, with its label from :meth:`set_examples` when it has one."""
        text = f"example {index}"
        if self.examples is not None and self.example_labels is not None and index in self.examples:
            text += f" · {self.example_labels[self.examples.index(index)]}"
        return text

    # --- tracing ---------------------------------------------------------------------------------

    def input(self, index: int | None = None) -> Any:
        """``inputs[index]`` (the current example by default)."""
        return self.inputs[self._check_index(self.example if index is None else index)]

    def trace(self, index: int | None = None) -> Trace:
        """The trace of one example (the current one by default), from the LRU cache when it is there.

        A failing example gives a partial trace whose ``error`` is set rather than raising.
        """
        index = self._check_index(self.example if index is None else index)
        cached = self._cache.get(index)
        if cached is not None:
            self._cache.move_to_end(index)
            return cached
        result = _run(self.pipeline, self.inputs[index], self.layers, self.steps)
        self.traces_run += 1
        self._cache[index] = result
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return result

    def cached(self) -> list[int]:
        """The indices of the examples whose traces are held, least recently used first."""
        return list(self._cache)

    def clear_cache(self) -> None:
        """Drop every held trace (e.g. after retraining the model)."""
        self._cache.clear()

    # --- what to show ----------------------------------------------------------------------------

    def output(self, index: int | None = None) -> tuple[Any, str | None]:
        """``(value, None)`` for the selected step's output on an example, or ``(None, message)``
        explaining why there is none (the step did not run, or the pipeline failed before it)."""
        index = self._check_index(self.example if index is None else index)
        t = self.trace(index)
        record = t.get(self.step.key)
        if record is not None:
            return record.output, None
        if t.error is not None:
            notes = "\n".join(getattr(t.error, "__notes__", []))
            return None, (f"the pipeline failed on example {index} before step {self.step.where} "
                          f"({self.step.label}):\n{type(t.error).__name__}: {t.error}\n{notes}").rstrip()
        return None, (f"step {self.step.where} ({self.step.label}) did not run for example {index} "
                      "(a branch that was not taken)")

    def parts(self, index: int | None = None) -> list[str]:
        """Labels of the parts of a tuple/list/dict output (empty for other outputs)."""
        value, message = self.output(index)
        if message is not None or not _container(value):
            return []
        return [label for label, _ in leaves(value)]

    def value(self, index: int | None = None) -> Any:
        """The value the views show: the step's output, or the selected part of a container output."""
        value, message = self.output(index)
        if message is not None:
            return None
        if _container(value):
            parts = leaves(value)
            return parts[min(self.part, len(parts) - 1)][1]
        return value

    def summary(self, index: int | None = None) -> Summary | None:
        """Type, shape, dtype, statistics and view kind of the shown value; ``None`` when there is none.

        A vector in the preprocessing stage is a feature row (``"features"``, drawn as named bars), not
        scores: the top-k view is for the forward stage's outputs. Token ids (with a vocabulary) are
        ``"tokens"``, without a mean and spread, which mean nothing for ids.
        """
        value, message = self.output(index)
        if message is not None:
            return None
        shown = self.value(index)
        s = summarize(shown)
        if s.kind == "scores" and self._feature_stage():
            s.kind = "features"
        elif self.tokens(index) is not None:
            s.kind, s.mean, s.std = "tokens", None, None
        return s

    def _feature_stage(self) -> bool:
        """Whether the shown step's vectors are feature rows: it preprocesses, before a batched forward stage."""
        return self.step.stage == "preprocess" and batch_marker(self.pipeline) is not None

    def tokens(self, index: int | None = None) -> list[tuple[str, bool]] | None:
        """``[(token, is_padding)]`` when the shown value is token ids and a vocabulary is known."""
        if self.vocab is None:
            return None
        value, message = self.output(index)
        if message is not None:
            return None
        return token_list(self.value(index), self.vocab, self.padding)

    def raw_html(self, index: int | None = None) -> str:
        """The example's raw input as HTML: text, image, named table row, or tokens of token ids."""
        value = self.input(index)
        tokens = token_list(value, self.vocab, self.padding) if self.vocab is not None else None
        if tokens is None and isinstance(value, (list, tuple)) and self.vocab is not None and value and \
                all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            tokens = [(self.vocab(v), v == self.padding) for v in value]
        if tokens is not None:
            return tokens_html(tokens)
        return raw_html(value, self.feature_names)

    @property
    def kind(self) -> str | None:
        """The view kind of the current example's shown value (see :mod:`workbench.inspector.summary`)."""
        s = self.summary()
        return None if s is None else s.kind

    def top_k(self, index: int | None = None) -> TopK | None:
        """Top-k of a score vector output (``None`` for other outputs)."""
        s = self.summary(index)
        if s is None or s.kind != "scores":
            return None
        return top_k(self.value(index), self.options.top_k, self.options.class_names)

    def image_layout(self, index: int | None = None) -> ImageLayout | None:
        """The image panels of an image-like output (``None`` for other outputs)."""
        s = self.summary(index)
        if s is None or s.kind not in ("image", "rgb", "maps"):
            return None
        return image_layout(self.value(index), self.options.max_panels)

    def text(self, index: int | None = None) -> str | None:
        """The text of a string output (``None`` for other outputs)."""
        s = self.summary(index)
        return None if s is None or s.kind != "text" else text_of(self.value(index))

    def title(self, index: int | None = None) -> str:
        index = self._check_index(self.example if index is None else index)
        step = "pipeline output" if self.step.path == () and self.step.module is None else \
            f"{self.step.where} {self.step.label}"
        title = f"{self.example_label(index)} · {step} ({self.step.stage})"
        parts = self.parts(index)
        if parts:
            title += f" · part {parts[min(self.part, len(parts) - 1)]}"
        return title

    def columns(self) -> list[Column]:
        """What the figure draws: the current example, and the compared one when there is one."""
        indices = [self.example] + ([self.compare] if self.compare is not None else [])
        out: list[Column] = []
        for i in indices:
            _, message = self.output(i)
            tokens = self.tokens(i) if message is None else None
            if tokens is not None:
                value = self.value(i)
                message = (f"token ids {tuple(value.shape)} {str(getattr(value, 'dtype', '')).replace('torch.', '')}"
                           f" as tokens ({sum(not p for _, p in tokens)} real):\n\n"
                           + " ".join(f"[{t}]" if p else t for t, p in tokens))
            out.append((self.title(i), self.value(i), message))
        return out

    def figure(self) -> Figure:
        """The current view as a matplotlib figure (two columns when comparing)."""
        options = dataclasses.replace(self.options, features=self._feature_stage())
        return view_figure(self.columns(), options)

    def export_png(self, path: str | None = None, dpi: int | None = None) -> str:
        """Write the current view to a PNG file and return its path.

        The default path is ``inspector-<step>-<example>[-vs-<other>].png`` in the working directory.
        """
        if path is None:
            step = re.sub(r"[^A-Za-z0-9_.]+", "_", self.step.where).strip("_") or "pipeline"
            other = f"-vs-{self.compare}" if self.compare is not None else ""
            path = f"inspector-{step}-{self.example}{other}.png"
        return save_png(self.figure(), path, dpi)

    def __repr__(self) -> str:
        return (f"<InspectorState step={self.step.where} {self.step.label!r} example={self.example}"
                f"{'' if self.compare is None else f' compare={self.compare}'} "
                f"cached={len(self._cache)}/{self.cache_size} of {len(self.inputs)} inputs>")


def _container(value: Any) -> bool:
    """Whether ``value`` is shown part by part (only tuples, lists and dicts can be; no statistics needed)."""
    return isinstance(value, (list, tuple, dict)) and summarize(value).kind == "container"


def _padding_id(pipeline: Transform) -> int | None:
    from ..attribution.explain import padding_id

    return padding_id(pipeline)
