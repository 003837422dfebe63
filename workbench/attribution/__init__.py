"""Attribution and debugging with Captum: ``explain`` one prediction, rank ``hard_examples``.

>>> from workbench import explain, hard_examples
>>> e = explain(pl, image, method="integrated_gradients")  # doctest: +SKIP
>>> e.plot()                                               # doctest: +SKIP
>>> table = hard_examples(pl, images, labels, k=10)        # doctest: +SKIP
>>> w = inspect(pl, images, examples=table, labels=example_labels(table))  # doctest: +SKIP

Importing this package adds the "Attribution" tab to the inspector (:mod:`.view`).
"""

from typing import Any

from .explain import Explanation, explain
from .hard_examples import confusion_matrix, example_labels, hard_examples, plot_hard_examples
from .methods import AttributionMethod, get_method, method_names, register_method
from .plots import plot_confusion_matrix, plot_explanation

__all__ = [
    "explain",
    "Explanation",
    "hard_examples",
    "example_labels",
    "confusion_matrix",
    "plot_confusion_matrix",
    "plot_hard_examples",
    "plot_explanation",
    "AttributionMethod",
    "register_method",
    "get_method",
    "method_names",
]


def _attribution_view(state: Any) -> Any:
    from .view import AttributionView  # ipywidgets is imported when an inspector first shows the tab

    return AttributionView(state)


def _register_view() -> None:
    from ..inspector.extensions import register_view

    register_view("Attribution", _attribution_view)


_register_view()
