"""Look inside a pipeline: ``trace`` one item step by step, or browse examples with ``inspect``.

- :func:`trace` runs one item like ``infer_apply`` and returns every step's output (and, with
  ``layers=True``, the outputs of submodules inside torch layers).
- :func:`inspect` returns a widget (ipywidgets pickers, the view drawn in the browser from arrays the
  kernel sends) to pick a step and an example, and see the output's summary, histogram, images or
  feature maps, top-k scores or text; compare two examples; export the view as PNG or SVG. Its logic
  is :class:`InspectorState`.
- :func:`register_view` adds a tab to every inspector (the extension point for attribution and other
  views); ``Inspector.set_examples`` feeds the example picker a ranked list.

ipywidgets, anywidget and matplotlib are imported on first use, so ``import workbench`` stays light.

>>> from workbench import trace, inspect          # doctest: +SKIP
>>> trace(pl, x)["conv1"].output.shape            # doctest: +SKIP
>>> inspect(pl, test_images, layers=True)         # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from .extensions import View, register_view, registered_views, unregister_view
from .tracing import StepInfo, Trace, TraceRecord, pipeline_steps, trace

if TYPE_CHECKING:
    from ..pipeline import Transform
    from .state import InspectorState
    from .widget import Inspector

__all__ = [
    "trace",
    "Trace",
    "TraceRecord",
    "StepInfo",
    "pipeline_steps",
    "inspect",
    "Inspector",
    "InspectorState",
    "DEFAULT_CACHE_SIZE",
    "View",
    "register_view",
    "unregister_view",
    "registered_views",
    "Summary",
    "summarize",
    "TopK",
    "top_k",
    "ImageLayout",
    "image_layout",
]

_LAZY = {
    "Inspector": "widget",
    "InspectorState": "state",
    "DEFAULT_CACHE_SIZE": "state",
    "Summary": "summary",
    "summarize": "summary",
    "TopK": "summary",
    "top_k": "summary",
    "ImageLayout": "summary",
    "image_layout": "summary",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def inspect(pipeline: "Transform", inputs: Any, *, layers: bool = False, examples: Any = None,
            labels: Sequence[str] | None = None,
            class_names: Sequence[str] | Mapping[int, str] | None = None,
            feature_names: Sequence[str] | None = None, vocab: Any = None,
            cache_size: int = 8, max_panels: int = 16, top_k: int = 5, bins: int = 30,
            step: Any = None, example: int | None = None) -> "Inspector":
    """An inspector widget for ``pipeline`` over ``inputs`` (a list, tensor or dataset of examples).

    Pick a step and an example to see the step's output: a summary, a histogram, images or
    feature-map grids, the top-k of score vectors, text for strings; compare two examples side by
    side; export the view as PNG. ``layers=True`` lists the submodules of torch layers as steps too.
    Only the examples looked at are traced, and at most ``cache_size`` traces are kept.
    ``examples``/``labels`` feed the example picker a ranked list (``Inspector.set_examples``);
    ``class_names`` label the top-k, ``feature_names`` a table row's bars, ``vocab`` turns token ids
    into tokens (each defaults to the pipeline's annotation, see :func:`workbench.annotate`); each
    example's raw input is shown above the views; ``step``/``example`` choose what is shown first.

    >>> w = inspect(pl, test_images, layers=True, class_names=[str(d) for d in range(10)])  # doctest: +SKIP
    >>> w.state.select_step("features.0"); w.export_png("conv.png")                          # doctest: +SKIP
    """
    from .state import InspectorState
    from .widget import Inspector

    state = InspectorState(pipeline, inputs, layers=layers, cache_size=cache_size, examples=examples,
                           labels=labels, class_names=class_names, feature_names=feature_names, vocab=vocab,
                           max_panels=max_panels, top_k=top_k,
                           bins=bins)
    if step is not None:
        state.select_step(step)
    if example is not None:
        state.select_example(example)
    return Inspector(state)
