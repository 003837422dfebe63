"""``explain``: why did the pipeline predict what it did for one input? Captum, on the forward stage.

The input goes through the pipeline's preprocessing stage and is collated into a batch of one; the
forward stage's output for that batch is attributed to the forward stage's input (or to ``layer``)
for the target class, the predicted one unless given.

>>> import torch
>>> from workbench import transform, batch, explain
>>> model = transform(torch.nn.Linear(3, 2))
>>> pl = transform(torch.tensor) >> batch >> model
>>> e = explain(pl, [1.0, 2.0, 3.0])
>>> e.attributions.shape, e.method
(torch.Size([3]), 'integrated_gradients')
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, Iterator, Sequence

import torch

from .._running import batch_marker, parts
from ..collate import move
from ..mode import apply_mode
from ..pipeline import PREPROCESS, Transform, identity
from .methods import AttributionMethod, LayerIntegratedGradients, default_method, get_method, method_names

__all__ = ["explain", "Explanation", "prepare", "resolve_layer", "default_layer", "first_embedding", "padding_id"]


@dataclasses.dataclass
class Explanation:
    """The result of :func:`explain`.

    Attributes:
        attributions: a CPU tensor without the batch dimension: the preprocessed item's shape for
            input methods; the layer's output shape for layer methods (``[tokens, dim]`` for an
            embedding layer); ``[h, w]`` (the layer's spatial size) for Grad-CAM. A tuple of
            tensors when the forward stage takes a tuple.
        target: the explained class (``None`` for a forward stage with one output per example).
        prediction: the predicted class (argmax of the forward output).
        delta: the convergence delta (``sum(attributions) - (F(x) - F(baseline))``) for integrated
            gradients methods, else ``None``.
        method: the method's registered name.
        input: the preprocessed item (what the forward stage saw, without the batch dimension).
        output: the forward stage's output for the item (e.g. the logits).
        raw: the input given to ``explain``.
        tokens: the tokens the positions stand for, when known (text inputs).
        layer: the name of the layer attributed to (layer methods), else ``None``.
        options: the options given to the method (e.g. ``{"base": "saliency"}``), for the record.
        class_names: the names of the classes (``class_names=``, the pipeline's annotation or the
            model's ``config.id2label``), else ``None``.
        feature_names: the names of a feature vector's positions, else ``None``.
        mask: for token ids, which positions are real tokens (padding excluded), else ``None``.
    """

    attributions: Any
    target: int | None
    prediction: int | None
    delta: float | None
    method: str
    input: Any
    output: torch.Tensor
    raw: Any = None
    tokens: list[str] | None = None
    layer: str | None = None
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    class_names: list[str] | None = None
    feature_names: list[str] | None = None
    mask: torch.Tensor | None = None

    @property
    def scores(self) -> torch.Tensor:
        """One score per position, ready to draw: per pixel, per real token or per feature.

        Image attributions ``[C, H, W]`` are summed over channels; embedding-layer attributions
        ``[tokens, dim]`` over the embedding dimension (when the input is token ids), and padding
        positions are left out.
        """
        attr = self.attributions[0] if isinstance(self.attributions, tuple) else self.attributions
        attr = attr.detach().float()
        item = self.input[0] if isinstance(self.input, tuple) else self.input
        token_ids = isinstance(item, torch.Tensor) and not item.is_floating_point() and item.dim() == 1
        if token_ids and attr.dim() >= 1 and attr.shape[0] == item.shape[0]:
            if attr.dim() == 2 and self.layer is not None:
                attr = attr.sum(-1)
            if attr.dim() == 1 and self.mask is not None:
                attr = attr[self.mask]
            return attr
        if attr.dim() == 3:
            return attr.sum(0)
        return attr

    @property
    def token_ids(self) -> list[int] | None:
        """The real tokens' ids (padding excluded) when the input is token ids, else ``None``."""
        item = self.input[0] if isinstance(self.input, tuple) else self.input
        if not (isinstance(item, torch.Tensor) and not item.is_floating_point() and item.dim() == 1):
            return None
        return (item[self.mask] if self.mask is not None else item).tolist()

    def named_scores(self) -> list[tuple[str, float]]:
        """``(name, score)`` per position of a text or feature-vector input: the token strings (real
        tokens only) or feature names, else the positions' numbers.

        >>> explain(pl, "a fine match").named_scores()  # doctest: +SKIP
        [('a', 0.01), ('fine', 0.12), ('match', 0.83)]
        """
        scores = self.scores.reshape(-1).tolist()
        names = self.tokens if self.tokens is not None and len(self.tokens) == len(scores) else self.feature_names
        if names is None or len(names) != len(scores):
            names = [str(i) for i in range(len(scores))]
        return list(zip(map(str, names), scores))

    def class_name(self, index: int | None) -> str:
        """The name of class ``index`` when names are known, else the index as text."""
        from ..annotations import class_label

        return class_label(index, self.class_names)

    def plot(self, **options: Any) -> Any:
        """A matplotlib Figure drawing the attributions on the input (see :func:`plot_explanation`)."""
        from .plots import plot_explanation

        return plot_explanation(self, **options)

    def __repr__(self) -> str:
        attr = self.attributions
        shape = tuple(tuple(a.shape) for a in attr) if isinstance(attr, tuple) else tuple(attr.shape)
        delta = "" if self.delta is None else f", delta={self.delta:.3g}"
        layer = "" if self.layer is None else f", layer={self.layer!r}"
        target = self.target if self.class_names is None else f"{self.target} ({self.class_name(self.target)})"
        predicted = self.prediction if self.class_names is None else \
            f"{self.prediction} ({self.class_name(self.prediction)})"
        return (f"Explanation(method={self.method!r}{layer}, target={target}, prediction={predicted}, "
                f"attributions shape {shape}{delta})")


def explain(pipeline: Transform, x: Any, method: str | None = None, target: int | str | None = None,
            layer: Any = None, *, tokens: Sequence[str] | None = None, class_names: Sequence[str] | None = None,
            feature_names: Sequence[str] | None = None, vocab: Any = None, **options: Any) -> Explanation:
    """Attribute the pipeline's forward output for ``target`` (default: the prediction) on input ``x``.

    ``method`` is a registered name (see :func:`workbench.attribution.methods.method_names`):
    integrated_gradients, saliency, input_x_gradient, occlusion, feature_ablation, grad_cam (at
    ``layer``, by default the model's last convolution), layer_integrated_gradients (at ``layer``, by
    default its first embedding), noise_tunnel (``base=`` the gradient method to smooth, saliency by
    default). By default it fits the input: integrated gradients for
    floating-point inputs, layer integrated gradients on the model's first embedding for integer
    inputs (token ids), whose gradients do not exist. ``layer`` is a ``torch.nn.Module`` inside the
    model, or its name: a dotted submodule path (``"features.0"``) or a pipeline step's name.

    ``target`` is a class index or a class name. Names come from ``class_names=``, else the
    pipeline's annotation (:func:`workbench.annotate`), else a model's ``config.id2label``;
    ``feature_names=`` name a feature vector's positions. Token ids are shown as tokens through
    ``vocab=`` (or the annotation); positions holding the embedding's ``padding_idx`` (or the value
    of ``batch.pad``) are padding and left out of :attr:`Explanation.scores`. Without a vocabulary
    ``tokens=`` names the positions, or a list of strings given as ``x``, or ``x.split()`` when the
    words line up with the real tokens. Other ``options`` go to the method (e.g. ``n_steps``,
    ``baselines``, ``internal_batch_size``).

    Layers run in eval mode with grad enabled during the call; training flags, ``requires_grad``
    and the grad mode are restored afterwards.

    >>> e = explain(pl, image, method="grad_cam", layer="conv2")  # doctest: +SKIP
    >>> e = explain(text_pl, "the match went to penalties", target="sport")  # doctest: +SKIP
    >>> e.plot()                                                   # doctest: +SKIP
    """
    from ..annotations import class_index
    from ..annotations import class_names as _class_names
    from ..annotations import feature_names as _feature_names
    from ..annotations import token_strings

    prepared = prepare(pipeline, x)
    inputs = prepared.inputs
    integer_input = any(not t.is_floating_point() for t in _tensors(inputs))
    if method is None:
        method = default_method(integer_input)
    method_cls = get_method(method)
    if layer is not None and not method_cls.needs_layer:
        layered = ", ".join(n for n in method_names() if get_method(n).needs_layer)
        raise ValueError(f"method {method!r} attributes to the forward input and takes no layer; "
                         f"methods for a layer: {layered}")
    if layer is None and method_cls.needs_layer:
        layer = default_layer(pipeline, method_cls)
        if layer is None:
            kind = method_cls.layer_kind or "suitable"
            raise ValueError(f"method {method!r} needs a layer and the model has no {kind} layer to default to: "
                             "pass layer=<a module inside the model or its name>")
    layer_module, layer_name = (None, None) if layer is None else resolve_layer(pipeline, layer)
    if method_cls.gradient and layer_module is None and integer_input:
        raise TypeError(
            f"method {method!r} needs gradients of the forward input, but it is an integer tensor "
            f"(token ids?); attribute to the embedding layer instead: method='layer_integrated_gradients' "
            "(the first embedding is used when no layer is given)")

    if method_cls.gradient and layer_module is None:
        # Gradient methods need inputs that require grad; asking up front keeps Captum from warning.
        inputs = _map(lambda t: t.detach().requires_grad_(), inputs)

    names = _class_names(pipeline, class_names)
    with _attribution_state(pipeline, layer_module):
        try:
            output = prepared.forward(*_tensors(inputs))
        except Exception as exc:
            exc.add_note("workbench: explain failed running the forward stage on the preprocessed input")
            raise
        output = _checked_output(output)
        logits = output.detach()[0]
        prediction = int(logits.argmax()) if logits.dim() == 1 else None
        if target is None:
            target = prediction
        elif prediction is None:
            raise ValueError(f"target={target!r}: the forward stage gives one value per example, there is no class "
                             "to choose; leave target=None")
        else:
            target = class_index(target, names, logits.shape[0])
        explainer: AttributionMethod = method_cls(prepared.forward, layer_module)
        try:
            attributions, delta = explainer.attribute(inputs, int(target) if target is not None else None,
                                                      **dict(options))
        except Exception as exc:
            exc.add_note(f"workbench: while explaining with method {method!r}")
            raise

    attributions = _unbatch(attributions)
    if method_cls.one_channel:
        attributions = _squeeze_channel(attributions)
    item = _unbatch(_cpu(inputs))
    first = item[0] if isinstance(item, tuple) else item
    mask = None
    if not first.is_floating_point() and first.dim() == 1:
        padding = padding_id(pipeline)
        if padding is not None and bool((first != padding).any()):
            mask = first != padding
        if tokens is None:
            real = first[mask] if mask is not None else first
            tokens = token_strings(pipeline, real, vocab)
    if tokens is None:
        positions = int(mask.sum()) if mask is not None else None
        tokens = _recover_tokens(x, attributions, positions)
    elif isinstance(tokens, str):
        raise TypeError("tokens= must be a list of strings, one per position; got a string")
    features = _feature_names(pipeline, feature_names)
    return Explanation(
        attributions=attributions, target=None if target is None else int(target), prediction=prediction,
        delta=delta, method=method, input=item, output=logits.cpu(), raw=x,
        tokens=list(tokens) if tokens is not None else None, layer=layer_name, options=dict(options),
        class_names=names, feature_names=features, mask=mask,
    )


def default_layer(pipeline: Transform, method: type[AttributionMethod]) -> torch.nn.Module | None:
    """The layer ``method`` attributes to when none is given (:meth:`AttributionMethod.default_layer`),
    looked for among the forward stage's layers, then the whole pipeline's."""
    for part in (pipeline.stages.forward, pipeline):
        found = method.default_layer((n, m) for top in part._wb_modules() for n, m in top.named_modules())
        if found is not None:
            return found[1]
    return None


def first_embedding(pipeline: Transform) -> torch.nn.Module | None:
    """The first ``nn.Embedding``/``nn.EmbeddingBag`` of the forward stage's layers (then of the whole pipeline)."""
    return default_layer(pipeline, LayerIntegratedGradients)


def padding_id(pipeline: Transform) -> int | None:
    """The token id that means padding: the first embedding's ``padding_idx``, else ``batch.pad``'s value."""
    embedding = first_embedding(pipeline)
    if embedding is not None and embedding.padding_idx is not None:
        return int(embedding.padding_idx)
    found = batch_marker(pipeline)
    value = found[1]._wb_padding if found is not None else None
    return int(value) if value is not None and float(value).is_integer() else None


# --- preparing the input -------------------------------------------------------------------------


@dataclasses.dataclass
class _Prepared:
    inputs: Any  # a tensor or tuple of tensors with a batch dimension of one
    forward: Any  # callable(*tensors) -> forward output


def prepare(pipeline: Transform, x: Any) -> _Prepared:
    """Preprocess ``x``, collate a batch of one, and wrap the forward stage for Captum."""
    if not isinstance(pipeline, Transform):
        raise TypeError(f"explain needs a workbench pipeline, got {type(pipeline).__name__}; "
                        "build one with transform(...) >> batch >> model")
    if pipeline._wb_entry_stage() != PREPROCESS:
        raise ValueError("explain needs a pipeline with a batch step: the forward stage (between batch and "
                         "unbatch) is what gets explained, e.g. preprocess >> batch >> model")
    (pre, fwd, _), _ = parts(pipeline)
    with apply_mode("infer"):
        try:
            item = pre._wb_callable()(x) if pre is not None else x
        except Exception as exc:
            exc.add_note("workbench: explain failed in the preprocessing stage")
            raise
    batched = move(batch_marker(pipeline)[1]._wb_collate([item]), pipeline.device)
    if isinstance(batched, list):
        batched = tuple(batched)
    for t in _tensors(batched):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"explain attributes to the forward stage's input, which must be a tensor or a tuple of "
                            f"tensors; the collated preprocessing output contains a {type(t).__name__}")
    run = fwd._wb_callable() if fwd is not None else identity
    is_tuple = isinstance(batched, tuple)

    def forward(*tensors: torch.Tensor) -> torch.Tensor:
        with apply_mode("infer"):
            return run(tuple(tensors) if is_tuple else tensors[0])

    return _Prepared(batched, forward)


def _tensors(inputs: Any) -> tuple[Any, ...]:
    return inputs if isinstance(inputs, tuple) else (inputs,)


def _checked_output(output: Any) -> torch.Tensor:
    if not isinstance(output, torch.Tensor):
        raise TypeError(f"explain needs the forward stage to return a tensor of scores, got {type(output).__name__}; "
                        "end the forward stage with the scores to explain")
    if output.dim() not in (1, 2) or output.shape[0] != 1:
        raise ValueError(f"explain needs the forward stage to return [batch, classes] (or [batch]) scores; for a batch "
                         f"of one it returned shape {tuple(output.shape)}")
    return output


def resolve_layer(pipeline: Transform, layer: Any) -> tuple[torch.nn.Module, str]:
    """The module ``layer`` stands for, and a display name for it."""
    modules = pipeline._wb_modules()
    if isinstance(layer, torch.nn.Module):
        for top in modules:
            for name, sub in top.named_modules():
                if sub is layer:
                    return layer, name or type(top).__name__
        raise ValueError(f"layer {type(layer).__name__} is not a module inside this pipeline's torch layers")
    if isinstance(layer, str):
        for top in modules:
            found = dict(top.named_modules()).get(layer)
            if found is not None and layer:
                return found, layer
        for t in pipeline._wb_walk():
            if t._wb_name == layer and isinstance(t, torch.nn.Module):
                return t, layer
        known = sorted({n for top in modules for n, _ in top.named_modules() if n})
        raise ValueError(f"no layer named {layer!r} in this pipeline; submodules: {', '.join(known) or 'none'}")
    raise TypeError(f"layer must be a torch.nn.Module inside the model or its name, got {type(layer).__name__}")


# --- model state -----------------------------------------------------------------------------------


@contextlib.contextmanager
def _attribution_state(pipeline: Transform, layer: torch.nn.Module | None) -> Iterator[None]:
    """Eval mode, no parameter grads, grad enabled; everything restored on exit (also on error)."""
    roots = list(pipeline._wb_modules())
    if layer is not None:
        roots.append(layer)
    modules = {id(m): m for root in roots for m in root.modules()}
    training = {key: m.training for key, m in modules.items()}
    params = {id(p): p for m in modules.values() for p in m.parameters(recurse=False)}
    requires = {key: p.requires_grad for key, p in params.items()}
    try:
        for m in modules.values():
            m.training = False
        for p in params.values():
            p.requires_grad_(False)
        with torch.enable_grad():
            yield
    finally:
        for key, m in modules.items():
            m.training = training[key]
        for key, p in params.items():
            p.requires_grad_(requires[key])


# --- results ---------------------------------------------------------------------------------------


def _cpu(value: Any) -> Any:
    if isinstance(value, tuple):
        return tuple(_cpu(v) for v in value)
    return value.detach().cpu()


def _map(fn: Any, value: Any) -> Any:
    return tuple(fn(v) for v in value) if isinstance(value, tuple) else fn(value)


def _unbatch(value: Any) -> Any:
    if isinstance(value, tuple):
        return tuple(_unbatch(v) for v in value)
    return value.detach().cpu()[0]


def _squeeze_channel(attr: Any) -> Any:
    """Grad-CAM's ``[1, h, w]`` (after the batch) as ``[h, w]``."""
    if isinstance(attr, torch.Tensor) and attr.dim() >= 2 and attr.shape[0] == 1:
        return attr[0]
    return attr


def _recover_tokens(x: Any, attributions: Any, positions: int | None = None) -> list[str] | None:
    """Tokens for a text input: a list of strings as given, or a string's words, when they line up
    with the positions (the real tokens when ``positions`` is given)."""
    attr = attributions[0] if isinstance(attributions, tuple) else attributions
    if not isinstance(attr, torch.Tensor) or attr.dim() == 0:
        return None
    positions = attr.shape[0] if positions is None else positions
    if isinstance(x, (list, tuple)) and x and all(isinstance(t, str) for t in x):
        return list(x) if len(x) == positions else None
    if isinstance(x, str):
        words = x.split()
        return words if len(words) == positions else None
    return None
