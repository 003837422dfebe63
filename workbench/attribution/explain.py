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
import operator
from typing import Any, Iterator, Sequence

import torch

from ..collate import _move
from ..mode import apply_mode
from ..pipeline import FORWARD, Transform
from .methods import AttributionMethod, get_method, method_names

__all__ = ["explain", "Explanation", "prepare", "resolve_layer"]


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

    @property
    def scores(self) -> torch.Tensor:
        """One score per position, ready to draw: per pixel, per token or per feature.

        Image attributions ``[C, H, W]`` are summed over channels; embedding-layer attributions
        ``[tokens, dim]`` over the embedding dimension (when the input is token ids).
        """
        attr = self.attributions[0] if isinstance(self.attributions, tuple) else self.attributions
        attr = attr.detach().float()
        item = self.input[0] if isinstance(self.input, tuple) else self.input
        token_ids = isinstance(item, torch.Tensor) and not item.is_floating_point() and item.dim() == 1
        if self.layer is not None and token_ids and attr.dim() == 2 and attr.shape[0] == item.shape[0]:
            return attr.sum(-1)
        if attr.dim() == 3:
            return attr.sum(0)
        return attr

    def plot(self, **options: Any) -> Any:
        """A matplotlib Figure drawing the attributions on the input (see :func:`plot_explanation`)."""
        from .plots import plot_explanation

        return plot_explanation(self, **options)

    def __repr__(self) -> str:
        attr = self.attributions
        shape = tuple(tuple(a.shape) for a in attr) if isinstance(attr, tuple) else tuple(attr.shape)
        delta = "" if self.delta is None else f", delta={self.delta:.3g}"
        layer = "" if self.layer is None else f", layer={self.layer!r}"
        return (f"Explanation(method={self.method!r}{layer}, target={self.target}, prediction={self.prediction}, "
                f"attributions shape {shape}{delta})")


def explain(pipeline: Transform, x: Any, method: str = "integrated_gradients", target: int | None = None,
            layer: Any = None, *, tokens: Sequence[str] | None = None, **options: Any) -> Explanation:
    """Attribute the pipeline's forward output for ``target`` (default: the prediction) on input ``x``.

    ``method`` is a registered name (see :func:`workbench.attribution.methods.method_names`):
    integrated_gradients, saliency, input_x_gradient, occlusion, feature_ablation, grad_cam (needs
    ``layer``), layer_integrated_gradients (needs ``layer``), noise_tunnel (``base=`` the gradient
    method to smooth, saliency by default). ``layer`` is a ``torch.nn.Module`` inside the model, or
    its name: a dotted submodule path (``"features.0"``) or a pipeline step's name. ``tokens`` names
    the positions of a text input for the plot; without it, a list of strings given as ``x`` is
    used, or ``x.split()`` when ``x`` is a string with as many words as positions. Other
    ``options`` go to the method (e.g. ``n_steps``, ``baselines``, ``internal_batch_size``).

    Layers run in eval mode with grad enabled during the call; training flags, ``requires_grad``
    and the grad mode are restored afterwards.

    >>> e = explain(pl, image, method="grad_cam", layer="conv2")  # doctest: +SKIP
    >>> e.plot()                                                   # doctest: +SKIP
    """
    method_cls = get_method(method)
    prepared = prepare(pipeline, x)
    if layer is not None and not method_cls.needs_layer:
        layered = ", ".join(n for n in method_names() if get_method(n).needs_layer)
        raise ValueError(f"method {method!r} attributes to the forward input and takes no layer; "
                         f"methods for a layer: {layered}")
    layer_module, layer_name = (None, None) if layer is None else resolve_layer(pipeline, layer)
    inputs = prepared.inputs
    if method_cls.gradient and layer_module is None:
        for t in _tensors(inputs):
            if not t.is_floating_point():
                raise TypeError(
                    f"method {method!r} needs gradients of the forward input, but it is a {t.dtype} tensor "
                    f"(token ids?); attribute to the embedding layer instead: "
                    f"method='layer_integrated_gradients', layer=<the embedding module>")

    if method_cls.gradient and layer_module is None:
        # Gradient methods need inputs that require grad; asking up front keeps Captum from warning.
        inputs = _map(lambda t: t.detach().requires_grad_(), inputs)

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
            target = _class_index(target, logits.shape[0])
        explainer: AttributionMethod = method_cls(prepared.forward, layer_module)
        try:
            attributions, delta = explainer.attribute(inputs, int(target) if target is not None else None,
                                                      **dict(options))
        except Exception as exc:
            exc.add_note(f"workbench: while explaining with method {method!r}")
            raise

    attributions = _unbatch(attributions)
    if method == "grad_cam":
        attributions = _squeeze_channel(attributions)
    if tokens is None:
        tokens = _recover_tokens(x, attributions)
    elif isinstance(tokens, str):
        raise TypeError("tokens= must be a list of strings, one per position; got a string")
    return Explanation(
        attributions=attributions, target=None if target is None else int(target), prediction=prediction,
        delta=delta, method=method, input=_unbatch(_cpu(inputs)), output=logits.cpu(), raw=x,
        tokens=list(tokens) if tokens is not None else None, layer=layer_name, options=dict(options),
    )


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
    _, end = pipeline._wb_split(0)
    if end < FORWARD:
        raise ValueError("explain needs a pipeline with a batch step: the forward stage (between batch and "
                         "unbatch) is what gets explained, e.g. preprocess >> batch >> model")
    stages = pipeline.stages
    with apply_mode("infer"):
        try:
            item = stages.preprocess._wb_callable()(x)
        except Exception as exc:
            exc.add_note("workbench: explain failed in the preprocessing stage")
            raise
    batched = _move(pipeline._wb_batch_marker()[1]._wb_collate([item]), pipeline.device)
    if isinstance(batched, list):
        batched = tuple(batched)
    for t in _tensors(batched):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"explain attributes to the forward stage's input, which must be a tensor or a tuple of "
                            f"tensors; the collated preprocessing output contains a {type(t).__name__}")
    run = stages.forward._wb_callable()
    is_tuple = isinstance(batched, tuple)

    def forward(*tensors: torch.Tensor) -> torch.Tensor:
        with apply_mode("infer"):
            return run(tuple(tensors) if is_tuple else tensors[0])

    return _Prepared(batched, forward)


def _class_index(target: Any, classes: int) -> int:
    try:
        index = operator.index(target.item() if isinstance(target, torch.Tensor) else target)
    except (TypeError, ValueError, RuntimeError):
        index = -1
    if isinstance(target, bool) or not 0 <= index < classes:
        raise ValueError(f"target={target!r} is not a class index of the forward output (0..{classes - 1})")
    return index


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


def _recover_tokens(x: Any, attributions: Any) -> list[str] | None:
    """Tokens for a text input: a list of strings as given, or a string's words when they line up."""
    attr = attributions[0] if isinstance(attributions, tuple) else attributions
    if not isinstance(attr, torch.Tensor) or attr.dim() == 0:
        return None
    positions = attr.shape[0]
    if isinstance(x, (list, tuple)) and x and all(isinstance(t, str) for t in x):
        return list(x) if len(x) == positions else None
    if isinstance(x, str):
        words = x.split()
        return words if len(words) == positions else None
    return None
