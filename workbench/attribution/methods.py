"""Attribution methods: one class per method, one call signature, registered by name.

Each method wraps one Captum algorithm. It is built from the forward function (a callable taking the
forward stage's input tensors and returning its output) and, for layer methods, the layer; its
:meth:`AttributionMethod.attribute` takes the batched inputs, the target class and the method's
options and returns ``(attributions, delta)`` (``delta`` is the convergence delta as a float, or
``None`` for methods without one). Defaults keep memory bounded: gradient-path methods evaluate at
most ``internal_batch_size`` points per forward pass, perturbation methods at most
``perturbations_per_eval`` perturbed copies.

>>> import torch
>>> model = torch.nn.Linear(3, 2)
>>> ig = get_method("integrated_gradients")(model)
>>> attributions, delta = ig.attribute(torch.ones(1, 3), target=0)
>>> attributions.shape, abs(delta) < 1e-4
(torch.Size([1, 3]), True)

New methods register with :func:`register_method`::

    @register_method("my_method")
    class MyMethod(AttributionMethod):
        def attribute(self, inputs, target, **options): ...
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, ClassVar, Iterable, Sequence

import torch

__all__ = [
    "AttributionMethod",
    "register_method",
    "get_method",
    "method_names",
    "default_method",
    "IntegratedGradients",
    "Saliency",
    "InputXGradient",
    "Occlusion",
    "FeatureAblation",
    "GradCam",
    "LayerIntegratedGradients",
    "NoiseTunnel",
]

#: Default number of interpolation points (or noisy samples) evaluated in one forward pass.
INTERNAL_BATCH_SIZE = 32
#: Default number of perturbed copies evaluated in one forward pass.
PERTURBATIONS_PER_EVAL = 16

_METHODS: dict[str, type["AttributionMethod"]] = {}


def register_method(name: str) -> Callable[[type["AttributionMethod"]], type["AttributionMethod"]]:
    """Class decorator: make an :class:`AttributionMethod` available to ``explain`` as ``method=name``."""

    def register(cls: type[AttributionMethod]) -> type[AttributionMethod]:
        if not (isinstance(cls, type) and issubclass(cls, AttributionMethod)):
            raise TypeError(f"register_method({name!r}) needs an AttributionMethod subclass, got {cls!r}")
        cls.name = name
        _METHODS[name] = cls
        return cls

    return register


def get_method(name: str) -> type["AttributionMethod"]:
    """The method class registered as ``name``; a ``ValueError`` names the known ones otherwise."""
    try:
        return _METHODS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown attribution method {name!r}; known methods: {', '.join(method_names())}") from None


def method_names() -> list[str]:
    """Names of every registered method, in registration order."""
    return list(_METHODS)


def default_method(integer_input: bool) -> str:
    """The method ``explain`` uses when none is named: the one declared the default for floating-point
    inputs, or for integer inputs (token ids, which have no gradient)."""
    kind = "integer" if integer_input else "float"
    return next(name for name, cls in _METHODS.items() if cls.default_for == kind)


class AttributionMethod:
    """Base class: a Captum algorithm behind ``attribute(inputs, target, **options)``.

    Class attributes describe the method to ``explain`` and to the inspector's method picker:
    ``needs_layer`` (a layer must be given), ``gradient`` (needs floating-point inputs, or a layer),
    ``has_delta`` (reports a convergence delta), ``layer_types``/``last_layer``/``layer_kind`` (the
    layer taken when none is given: the first, or last, of the model's layers of those types),
    ``default_for`` (``"float"`` or ``"integer"``: the default method for such forward inputs),
    ``bases`` (the methods it wraps, chosen with the option ``base=``; the first is the default),
    ``one_channel`` (one map per example with a channel dimension of one, which ``explain`` drops).
    :meth:`offered` says whether the inspector offers it for a model.
    """

    name: ClassVar[str] = ""
    needs_layer: ClassVar[bool] = False
    gradient: ClassVar[bool] = True
    has_delta: ClassVar[bool] = False
    layer_types: ClassVar[tuple[type[torch.nn.Module], ...]] = ()
    last_layer: ClassVar[bool] = False
    layer_kind: ClassVar[str] = ""
    default_for: ClassVar[str | None] = None
    bases: ClassVar[tuple[str, ...]] = ()
    one_channel: ClassVar[bool] = False

    @classmethod
    def default_layer(cls, layers: Iterable[tuple[str, torch.nn.Module]]) -> tuple[str, torch.nn.Module] | None:
        """The ``(name, layer)`` of ``layers`` taken when none is given; ``None`` when there is none to take."""
        found = [(n, m) for n, m in layers if cls.layer_types and isinstance(m, cls.layer_types)]
        if not found:
            return None
        return found[-1] if cls.last_layer else found[0]

    @classmethod
    def offered(cls, layers: Sequence[tuple[str, torch.nn.Module]], integer_input: bool | None) -> bool:
        """Whether the method can run on a model whose layers are ``layers`` (``named_modules()`` of each
        torch layer of the pipeline, the layer itself named ``""``), for integer forward inputs (token
        ids, which have no gradient) or not (``None``: not known)."""
        if cls.needs_layer and not layers:
            return False
        return not (integer_input and cls.gradient and not cls.needs_layer)

    def __init__(self, forward_func: Callable[..., torch.Tensor], layer: torch.nn.Module | None = None):
        if self.needs_layer and layer is None:
            raise ValueError(f"method {self.name!r} attributes to a layer: pass layer=<a module inside the model>")
        self.forward_func = forward_func
        self.layer = layer

    def attribute(self, inputs: Any, target: int | None, **options: Any) -> tuple[Any, float | None]:
        """Attributions for ``target`` (same structure as ``inputs``, or the layer's output) and the delta."""
        raise NotImplementedError

    def _check_options(self, options: dict[str, Any], allowed: Iterable[str]) -> None:
        unknown = sorted(set(options) - set(allowed))
        if unknown:
            raise TypeError(f"method {self.name!r} got unknown option(s) {', '.join(unknown)}; "
                            f"it accepts: {', '.join(sorted(allowed)) or 'none'}")


def _delta(delta: Any) -> float | None:
    """The convergence delta with the largest magnitude, as a float."""
    if delta is None:
        return None
    delta = torch.as_tensor(delta).detach().flatten()
    return float(delta[delta.abs().argmax()]) if delta.numel() else None


@register_method("integrated_gradients")
class IntegratedGradients(AttributionMethod):
    """Integrated gradients (Sundararajan et al. 2017) from ``baselines`` (zeros by default) to the input.

    Options: ``baselines``, ``n_steps`` (50), ``method`` ("gausslegendre"), ``internal_batch_size`` (32).
    For a linear model the attributions are exactly ``weight * (input - baseline)``; they sum to
    ``F(input) - F(baseline)`` up to the reported delta.
    """

    has_delta = True
    default_for = "float"
    _allowed = ("baselines", "n_steps", "method", "internal_batch_size")

    def attribute(self, inputs: Any, target: int | None, **options: Any) -> tuple[Any, float | None]:
        from captum.attr import IntegratedGradients as _IG

        self._check_options(options, self._allowed)
        options.setdefault("internal_batch_size", INTERNAL_BATCH_SIZE)
        attributions, delta = _IG(self.forward_func).attribute(
            inputs, target=target, return_convergence_delta=True, **options)
        return attributions, _delta(delta)


@register_method("saliency")
class Saliency(AttributionMethod):
    """The gradient of the target output with respect to the input (Simonyan et al. 2013).

    Options: ``abs`` (True: magnitudes, as in the original method; False: signed gradients).
    """

    def attribute(self, inputs: Any, target: int | None, **options: Any) -> tuple[Any, float | None]:
        from captum.attr import Saliency as _Saliency

        self._check_options(options, ("abs",))
        return _Saliency(self.forward_func).attribute(inputs, target=target, **options), None


@register_method("input_x_gradient")
class InputXGradient(AttributionMethod):
    """Input times the gradient of the target output with respect to it. No options."""

    def attribute(self, inputs: Any, target: int | None, **options: Any) -> tuple[Any, float | None]:
        from captum.attr import InputXGradient as _IxG

        self._check_options(options, ())
        return _IxG(self.forward_func).attribute(inputs, target=target), None


def _default_window(item_shape: torch.Size) -> tuple[int, ...]:
    """A 3-wide window over the spatial dimensions covering all channels of a [C, H, W] image."""
    if len(item_shape) == 3:
        return (item_shape[0], min(3, item_shape[1]), min(3, item_shape[2]))
    return tuple(min(3, n) for n in item_shape) if len(item_shape) == 2 else (1,) * len(item_shape)


@register_method("occlusion")
class Occlusion(AttributionMethod):
    """How much the target output drops when a sliding window of the input is replaced by ``baselines``.

    Options: ``sliding_window_shapes`` (default: 3x3 over all channels for images, 3x3 for 2-D
    inputs, one element for vectors), ``strides`` (1), ``baselines`` (0),
    ``perturbations_per_eval`` (16).
    """

    gradient = False
    _allowed = ("sliding_window_shapes", "strides", "baselines", "perturbations_per_eval")

    def attribute(self, inputs: Any, target: int | None, **options: Any) -> tuple[Any, float | None]:
        from captum.attr import Occlusion as _Occlusion

        self._check_options(options, self._allowed)
        if "sliding_window_shapes" not in options:
            shapes = tuple(_default_window(t.shape[1:]) for t in _as_tuple(inputs))
            options["sliding_window_shapes"] = shapes if isinstance(inputs, tuple) else shapes[0]
        options.setdefault("perturbations_per_eval", PERTURBATIONS_PER_EVAL)
        return _Occlusion(self.forward_func).attribute(inputs, target=target, **options), None


@register_method("feature_ablation")
class FeatureAblation(AttributionMethod):
    """How much the target output drops when each feature (group) is replaced by ``baselines``.

    Options: ``feature_mask`` (default: every element its own feature), ``baselines`` (0),
    ``perturbations_per_eval`` (16).
    """

    gradient = False
    _allowed = ("feature_mask", "baselines", "perturbations_per_eval")

    def attribute(self, inputs: Any, target: int | None, **options: Any) -> tuple[Any, float | None]:
        from captum.attr import FeatureAblation as _FA

        self._check_options(options, self._allowed)
        options.setdefault("perturbations_per_eval", PERTURBATIONS_PER_EVAL)
        return _FA(self.forward_func).attribute(inputs, target=target, **options), None


@register_method("grad_cam")
class GradCam(AttributionMethod):
    """Grad-CAM (Selvaraju et al. 2017) at ``layer``: channel-weighted activations, one map per example.

    The result has the layer output's spatial size (``[1, 1, h, w]`` for a conv layer; ``explain``
    drops the batch and channel dimensions). Options: ``relu_attributions`` (True, as in the paper;
    False keeps negative evidence), ``attribute_to_layer_input`` (False).
    """

    needs_layer = True
    layer_types = (torch.nn.modules.conv._ConvNd,)
    last_layer = True
    layer_kind = "convolution"
    one_channel = True
    _allowed = ("relu_attributions", "attribute_to_layer_input")

    @classmethod
    def offered(cls, layers: Sequence[tuple[str, torch.nn.Module]], integer_input: bool | None) -> bool:
        """Only for a model with a convolution."""
        return super().offered(layers, integer_input) and cls.default_layer(layers) is not None

    def attribute(self, inputs: Any, target: int | None, **options: Any) -> tuple[Any, float | None]:
        from captum.attr import LayerGradCam

        self._check_options(options, self._allowed)
        options.setdefault("relu_attributions", True)
        return LayerGradCam(self.forward_func, self.layer).attribute(inputs, target=target, **options), None


@register_method("layer_integrated_gradients")
class LayerIntegratedGradients(AttributionMethod):
    """Integrated gradients at ``layer``'s output, e.g. the embedding layer of a text model.

    The path runs from the layer's output for ``baselines`` (by default: zeros of the input's dtype,
    i.e. token id 0, conventionally padding, for token ids) to its output for the input. Options:
    ``baselines``, ``n_steps`` (50), ``method``, ``internal_batch_size`` (32),
    ``attribute_to_layer_input`` (False). For an embedding layer the attributions have shape
    ``[1, tokens, dim]``; ``Explanation.scores`` sums them per token.
    """

    needs_layer = True
    has_delta = True
    layer_types = (torch.nn.Embedding, torch.nn.EmbeddingBag)
    layer_kind = "embedding"
    default_for = "integer"
    _allowed = ("baselines", "n_steps", "method", "internal_batch_size", "attribute_to_layer_input")

    @classmethod
    def offered(cls, layers: Sequence[tuple[str, torch.nn.Module]], integer_input: bool | None) -> bool:
        """For token ids, only with an embedding inside the model to start from."""
        inside = [(n, m) for n, m in layers if n]
        return super().offered(layers, integer_input) and not (integer_input and cls.default_layer(inside) is None)

    def attribute(self, inputs: Any, target: int | None, **options: Any) -> tuple[Any, float | None]:
        from captum.attr import LayerIntegratedGradients as _LIG

        self._check_options(options, self._allowed)
        options.setdefault("internal_batch_size", INTERNAL_BATCH_SIZE)
        if options.get("baselines") is None:
            base = tuple(torch.zeros_like(t) for t in _as_tuple(inputs))
            options["baselines"] = base if isinstance(inputs, tuple) else base[0]
        attributions, delta = _LIG(self.forward_func, self.layer).attribute(
            inputs, target=target, return_convergence_delta=True, **options)
        return attributions, _delta(delta)


@register_method("noise_tunnel")
class NoiseTunnel(AttributionMethod):
    """SmoothGrad-style averaging of a gradient method over noisy copies of the input.

    ``base`` names the method to smooth (default ``"saliency"``; any registered input gradient
    method: saliency, input_x_gradient, integrated_gradients). Options: ``nt_type`` ("smoothgrad",
    "smoothgrad_sq" or "vargrad"), ``nt_samples`` (10), ``stdevs`` (default: 15% of the input's
    value range, the SmoothGrad paper's 10-20% noise level; Captum's own default of 1.0 drowns
    inputs scaled to [0, 1]), ``nt_samples_batch_size`` (32, bounds memory), and the base method's
    own options. Noise comes from torch's global generator: seed it for repeatable results.
    """

    bases = ("saliency", "input_x_gradient", "integrated_gradients")
    _own = ("nt_type", "nt_samples", "stdevs", "nt_samples_batch_size", "base")

    def attribute(self, inputs: Any, target: int | None, **options: Any) -> tuple[Any, float | None]:
        from captum.attr import InputXGradient as _IxG
        from captum.attr import IntegratedGradients as _IG
        from captum.attr import NoiseTunnel as _NT
        from captum.attr import Saliency as _Saliency

        base_name = options.pop("base", self.bases[0])
        bases = {"saliency": (_Saliency, ("abs",)), "input_x_gradient": (_IxG, ()),
                 "integrated_gradients": (_IG, IntegratedGradients._allowed)}  # the classes of self.bases
        if base_name not in bases:
            raise ValueError(f"noise_tunnel smooths a gradient method of the input; base={base_name!r} is not "
                             f"one; choose one of {', '.join(bases)}")
        base_cls, base_allowed = bases[base_name]
        self._check_options(options, set(self._own) | set(base_allowed))
        options.setdefault("nt_samples", 10)
        options.setdefault("nt_samples_batch_size", INTERNAL_BATCH_SIZE)
        if options.get("stdevs") is None:
            spreads = tuple(max(float(t.detach().max() - t.detach().min()), 1e-6) * 0.15 for t in _as_tuple(inputs))
            options["stdevs"] = spreads if isinstance(inputs, tuple) else spreads[0]
        if base_name == "integrated_gradients":
            options.setdefault("internal_batch_size", INTERNAL_BATCH_SIZE)
            attributions, delta = _NT(base_cls(self.forward_func)).attribute(
                inputs, target=target, return_convergence_delta=True, **options)
            return attributions, _delta(delta)
        with warnings.catch_warnings():
            # The noisy copies are made by Captum without requires_grad; its base method then sets it and warns.
            warnings.filterwarnings("ignore", message="Input Tensor .* did not already require gradients")
            return _NT(base_cls(self.forward_func)).attribute(inputs, target=target, **options), None


def _as_tuple(inputs: Any) -> tuple[torch.Tensor, ...]:
    return inputs if isinstance(inputs, tuple) else (inputs,)
