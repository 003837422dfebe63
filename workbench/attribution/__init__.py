"""Attribution and debugging with Captum: ``explain`` one prediction, rank ``hard_examples``.

>>> from workbench import explain, hard_examples
>>> e = explain(pl, image, method="integrated_gradients")  # doctest: +SKIP
>>> e.plot()                                               # doctest: +SKIP
>>> hard_examples(pl, images, labels, k=10)                # doctest: +SKIP
"""

from .explain import Explanation, explain
from .hard_examples import confusion_matrix, hard_examples, plot_hard_examples
from .methods import AttributionMethod, get_method, method_names, register_method
from .plots import plot_confusion_matrix, plot_explanation

__all__ = [
    "explain",
    "Explanation",
    "hard_examples",
    "confusion_matrix",
    "plot_confusion_matrix",
    "plot_hard_examples",
    "plot_explanation",
    "AttributionMethod",
    "register_method",
    "get_method",
    "method_names",
]
