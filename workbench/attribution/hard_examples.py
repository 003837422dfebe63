"""``hard_examples``: which examples does the model get most wrong, and which look unlike its training data?

One batched ``eval_apply`` pass over ``preprocess >> forward`` (the preprocess stage ends with
``batch``) gives the forward outputs (logits) of every input; from them and the targets come, per
example: the loss, prediction, confidence (top probability), margin (top-1 minus top-2
probability), entropy of the predicted distribution, and an out-of-distribution score. The table is ranked by loss, highest first.

The OOD score (default ``ood="mahalanobis"``) is the squared Mahalanobis distance of an example's
logits to the nearest class centroid, with the centroids and one shared covariance estimated in the
same pass from the examples the model gets right (prediction == target). It is relative to the set
given: score a training or validation set together with the suspects. Softmax- and logit-scale
scores (``ood="energy"``: ``-logsumexp(logits)``, Liu et al. 2020; ``ood="max_softmax"``:
``1 - max probability``) are available but fail exactly where debugging needs them: ReLU networks
give inputs far from the data (noise, saturated images) large logits and confident softmaxes, so
those inputs score no better than chance (planted noise and blank images among digits: AUROC 0.49
for energy, 0.61 for max-softmax, 0.94 for Mahalanobis; see docs/attribution.md).

>>> table = hard_examples(pl, images, labels, k=10)              # doctest: +SKIP
>>> table.columns.tolist()                                       # doctest: +SKIP
['index', 'target', 'prediction', 'confidence', 'margin', 'entropy', 'loss', 'ood_score']
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np
import torch

from ..annotations import class_label
from ..pipeline import PREPROCESS, Transform

if TYPE_CHECKING:
    import pandas
    from matplotlib.figure import Figure

__all__ = ["hard_examples", "example_labels", "confusion_matrix", "plot_hard_examples", "forward_outputs", "COLUMNS"]

OOD_SCORES = ("mahalanobis", "energy", "max_softmax")

COLUMNS = ["index", "target", "prediction", "confidence", "margin", "entropy", "loss", "ood_score"]

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def forward_outputs(pipeline: Transform, inputs: Any, *, batch_size: int = 256, num_workers: int = 0,
                    progress: bool = False) -> torch.Tensor:
    """The forward stage's outputs for all ``inputs``, concatenated along the batch dimension, on CPU."""
    if not isinstance(pipeline, Transform):
        raise TypeError(f"hard_examples needs a workbench pipeline, got {type(pipeline).__name__}")
    if pipeline._wb_entry_stage() != PREPROCESS:
        raise ValueError("hard_examples needs a pipeline with a batch step (preprocess >> batch >> model): "
                         "it scores the forward stage's outputs")
    stages = pipeline.stages
    scorer = stages.preprocess >> stages.forward  # the preprocess stage ends with its batch step
    chunks = []
    for out in scorer.eval_apply(inputs, batch_size=batch_size, num_workers=num_workers, progress=progress):
        if not isinstance(out, torch.Tensor) or out.dim() != 2:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(f"hard_examples needs the forward stage to return [batch, classes] scores, got {shape}")
        chunks.append(out.detach().float().cpu())
    if not chunks:
        raise ValueError("hard_examples got no inputs")
    return torch.cat(chunks)


def hard_examples(pipeline: Transform, inputs: Any, targets: Any, loss: str | LossFn = "cross_entropy",
                  k: int | None = None, *, ood: str = "mahalanobis", batch_size: int = 256,
                  num_workers: int = 0, progress: bool = False,
                  class_names: Sequence[str] | None = None) -> "pandas.DataFrame":
    """A DataFrame of the examples ranked by loss (highest first), ``k`` rows (all when ``None``).

    Columns: ``index`` (position in ``inputs``), ``target``, ``prediction``, ``confidence``,
    ``margin``, ``entropy``, ``loss``, ``ood_score`` (higher = more out-of-distribution; ``ood``
    picks it: "mahalanobis", "energy" or "max_softmax", see the module docstring; the table's
    ``attrs["ood_score"]`` names the one used).
    ``loss`` is ``"cross_entropy"`` (the forward stage returns logits), ``"nll"`` (it returns
    log-probabilities) or a callable ``(outputs, targets) -> per-example losses``, for which the
    outputs are read as logits. Ties keep input order.

    ``targets`` are class indices or class names; names are looked up in ``class_names=``, else the
    pipeline's annotation (:func:`workbench.annotate`), else the model's ``config.id2label``. With
    class names known the table also has ``target_name`` and ``prediction_name`` columns, and
    ``attrs["class_names"]`` (used by :func:`confusion_matrix` and the example labels).

    Rank held-out examples (a validation set, or out-of-fold predictions, see docs/attribution.md):
    on its own training data a model has fitted the mistakes it should reveal, so they rank low.
    """
    import pandas

    if ood not in OOD_SCORES:
        raise ValueError(f"unknown ood score {ood!r}; choose one of {', '.join(OOD_SCORES)}")
    if k is not None and (not isinstance(k, int) or isinstance(k, bool) or k < 1):
        raise ValueError(f"k must be a positive integer or None, got {k!r}")
    if not (hasattr(inputs, "__len__") and hasattr(inputs, "__getitem__")):
        inputs = list(inputs)
    from ..annotations import class_names as _class_names

    names = _class_names(pipeline, class_names)
    targets_t = _target_indices(targets, names)
    n = len(inputs)
    if len(targets_t) != n:
        raise ValueError(f"hard_examples got {n} inputs and {len(targets_t)} targets; they must pair up")
    outputs = forward_outputs(pipeline, inputs, batch_size=batch_size, num_workers=num_workers, progress=progress)
    if outputs.shape[0] != n:
        raise ValueError(f"the forward stage returned {outputs.shape[0]} rows for {n} inputs")
    classes = outputs.shape[1]
    bad = (targets_t < 0) | (targets_t >= classes)
    if bool(bad.any()):
        first = int(bad.nonzero()[0])
        raise ValueError(f"target {int(targets_t[first])} of example {first} is not a class index of the forward "
                         f"output (0..{classes - 1})")

    if loss == "nll":
        log_probs = outputs.log_softmax(1)  # renormalises; a no-op for true log-probabilities
        losses = torch.nn.functional.nll_loss(outputs, targets_t, reduction="none")
    else:
        log_probs = outputs.log_softmax(1)
        if loss == "cross_entropy":
            losses = torch.nn.functional.cross_entropy(outputs, targets_t, reduction="none")
        elif callable(loss):
            losses = torch.as_tensor(loss(outputs, targets_t)).detach().float().reshape(-1)
            if losses.shape[0] != n:
                raise ValueError(f"the loss function returned {losses.shape[0]} values for {n} examples; it must "
                                 "return one loss per example (reduction='none')")
        else:
            raise ValueError(f"unknown loss {loss!r}: use 'cross_entropy', 'nll' or a callable "
                             "(outputs, targets) -> per-example losses")
    probs = log_probs.exp()
    top = probs.topk(min(2, classes), dim=1).values
    margin = top[:, 0] - top[:, 1] if classes > 1 else top[:, 0]
    entropy = -(probs * log_probs).nan_to_num().sum(1)
    predictions = outputs.argmax(1)
    if ood == "mahalanobis":
        ood_scores = _mahalanobis(outputs, predictions == targets_t, targets_t)
    elif ood == "energy":
        ood_scores = -torch.logsumexp(outputs, dim=1)
    else:
        ood_scores = 1 - top[:, 0]
    table = pandas.DataFrame({
        "index": np.arange(n),
        "target": targets_t.numpy(),
        "prediction": predictions.numpy(),
        "confidence": top[:, 0].numpy(),
        "margin": margin.numpy(),
        "entropy": entropy.numpy(),
        "loss": losses.numpy(),
        "ood_score": ood_scores.numpy(),
    })
    table = table.sort_values("loss", ascending=False, kind="stable").reset_index(drop=True)
    if names is not None:
        table.insert(2, "target_name", [class_label(i, names) for i in table["target"]])
        table.insert(4, "prediction_name", [class_label(i, names) for i in table["prediction"]])
        table.attrs["class_names"] = list(names)
    table.attrs["ood_score"] = ood
    if k is None:
        return table
    head = table.head(k).copy()
    head.attrs.update(table.attrs)
    return head


def _target_indices(targets: Any, names: Sequence[str] | None) -> torch.Tensor:
    """Targets as a 1-D int64 tensor; class names are mapped through ``names``."""
    if isinstance(targets, torch.Tensor):
        return targets.detach().cpu().long().reshape(-1)
    values = targets.tolist() if hasattr(targets, "tolist") else list(targets)
    if any(isinstance(v, str) for v in values):
        if not names:
            raise ValueError("the targets are class names, but this pipeline has no class names: pass "
                             "class_names=[...] or annotate(pipeline, class_names=[...])")
        lookup = {name: i for i, name in enumerate(names)}
        out = []
        for position, v in enumerate(values):
            if isinstance(v, str) and v not in lookup:
                raise ValueError(f"target {v!r} of example {position} is not a class name; the classes are "
                                 f"{', '.join(map(repr, names))}")
            out.append(lookup[v] if isinstance(v, str) else int(v))
        return torch.tensor(out, dtype=torch.int64)
    try:
        return torch.from_numpy(np.array(values, dtype=np.int64)).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"targets must be class indices or class names; {exc}") from None


def _mahalanobis(outputs: torch.Tensor, correct: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Squared Mahalanobis distance of each row of ``outputs`` to the nearest class centroid.

    Centroids and the shared covariance come from the correctly classified rows; the covariance
    gets a small ridge (0.1% of its mean variance) so that it is invertible.
    """
    x = outputs.double()
    classes = [int(c) for c in targets[correct].unique()]
    if int(correct.sum()) <= x.shape[1] or not classes:
        raise ValueError(f"the Mahalanobis OOD score needs more correctly classified examples than classes "
                         f"({int(correct.sum())} of {len(x)} are correct, {x.shape[1]} classes); pass more examples "
                         "or use ood='energy'")
    centroids = torch.stack([x[correct & (targets == c)].mean(0) for c in classes])
    centred = x[correct] - centroids[torch.searchsorted(torch.tensor(classes), targets[correct])]
    cov = centred.T @ centred / len(centred)
    cov += torch.eye(len(cov), dtype=cov.dtype) * (1e-3 * float(cov.diagonal().mean()) + 1e-12)
    precision = torch.linalg.inv(cov)
    distances = torch.empty(len(x), len(classes), dtype=x.dtype)
    for i, centroid in enumerate(centroids):  # one class at a time keeps memory at O(N * classes)
        d = x - centroid
        distances[:, i] = ((d @ precision) * d).sum(1)
    return distances.min(1).values.float()


def example_labels(examples: "pandas.DataFrame") -> list[str]:
    """One line per row of a :func:`hard_examples` table for the inspector's example picker.

    >>> example_labels(table)[0]   # doctest: +SKIP
    'loss 6.21 · target 3 · pred 8 (0.99) · ood 41.2'
    """
    missing = set(COLUMNS) - set(getattr(examples, "columns", ()))
    if missing:
        raise ValueError(f"example_labels needs a hard_examples table; missing columns: {', '.join(sorted(missing))}")
    names = examples.attrs.get("class_names")
    return [f"loss {r.loss:.2f} · target {class_label(r.target, names)} · pred {class_label(r.prediction, names)} "
            f"({r.confidence:.2f}) · ood {r.ood_score:.3g}"
            for r in examples.itertuples(index=False)]


def confusion_matrix(examples: "pandas.DataFrame", classes: Sequence[Any] | int | None = None) -> "pandas.DataFrame":
    """Counts of (target, prediction) pairs from a :func:`hard_examples` table (all rows: ``k=None``).

    Rows are targets, columns predictions; ``classes`` (a count or the class labels in index order)
    fixes the axes so absent classes show as zero rows and columns. By default the axes are the
    table's class names (``hard_examples`` with names known), else the indices seen.

    >>> confusion_matrix(hard_examples(pl, xs, ys), classes=10)  # doctest: +SKIP
    """
    import pandas

    missing = {"target", "prediction"} - set(getattr(examples, "columns", ()))
    if missing:
        raise ValueError(f"confusion_matrix needs a table with target and prediction columns (from hard_examples); "
                         f"missing: {', '.join(sorted(missing))}")
    target = examples["target"].to_numpy().astype(int)
    prediction = examples["prediction"].to_numpy().astype(int)
    if classes is None and examples.attrs.get("class_names"):
        classes = list(examples.attrs["class_names"])
    if classes is None:
        count = int(max(target.max(initial=-1), prediction.max(initial=-1))) + 1
        labels: list[Any] = list(range(count))
    elif isinstance(classes, int):
        count, labels = classes, list(range(classes))
    else:
        labels = list(classes)
        count = len(labels)
    if count and (max(target.max(initial=0), prediction.max(initial=0)) >= count):
        raise ValueError(f"a class index is outside the {count} classes given")
    counts = np.zeros((count, count), dtype=np.int64)
    np.add.at(counts, (target, prediction), 1)
    return pandas.DataFrame(counts, index=pandas.Index(labels, name="target"),
                            columns=pandas.Index(labels, name="prediction"))


def plot_hard_examples(pipeline: Transform, inputs: Any, examples: "pandas.DataFrame", k: int = 8,
                       method: str | None = None, *, shape: Sequence[int] | None = None,
                       columns: int = 4, **options: Any) -> "Figure":
    """The first ``k`` rows of a :func:`hard_examples` table, each input with its attribution overlay.

    Each panel is explained (``method``, ``options`` as in :func:`workbench.explain`) for the
    predicted class and titled with target, prediction and loss; ``shape`` reshapes flat inputs.
    Inputs that cannot be drawn as images are shown as bars.
    """
    from .explain import explain
    from .plots import _figure, _numpy, attribution_kind, draw_overlay

    rows = examples.head(k)
    count = len(rows)
    if count == 0:
        raise ValueError("plot_hard_examples got an empty table")
    columns = max(1, min(columns, count))
    lines = -(-count // columns)
    fig = _figure(2.6 * columns, 2.6 * lines)
    axes = np.atleast_1d(fig.subplots(lines, columns, squeeze=False)).reshape(-1)
    for ax, row in zip(axes, rows.to_dict("records")):
        e = explain(pipeline, inputs[int(row["index"])], method=method, **options)
        if attribution_kind(e, shape) == "image":
            draw_overlay(ax, None, e, shape=shape, colorbar=False)
        else:
            scores = _numpy(e.scores).reshape(-1)
            ax.bar(np.arange(len(scores)), scores, color=np.where(scores >= 0, "tab:red", "tab:blue"))
            ax.set_xticks([])
        ax.set_title(f"#{int(row['index'])}: target {e.class_name(int(row['target']))}, "
                     f"pred {e.class_name(int(row['prediction']))}\nloss {row['loss']:.2f}", fontsize=8)
    for ax in axes[count:]:
        ax.set_axis_off()
    fig.suptitle(f"hardest {count} examples ({e.method}; red supports the prediction)", fontsize=10)
    return fig
