"""Layers as users wrap them: recurrent models, parametrizations and hooks (see ``test_layer_wrappers.py``).

``CASES[name]()`` returns ``(layer, args)`` like ``_torch_nn_table.LAYERS``. The hook functions and
user classes here are copied into the bundles as source (this module is not installed).
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import torch
from torch import nn
from torch.nn.utils import parametrizations, parametrize

__all__ = ["CASES"]


def r(*shape: int) -> torch.Tensor:
    return torch.randn(*shape)


# --- recurrent models ---------------------------------------------------------------------------------


class TextClassifier(nn.Module):
    """Embedding -> bidirectional LSTM -> linear, the usual recurrent text model."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(20, 6)
        self.rnn = nn.LSTM(6, 5, num_layers=2, bidirectional=True, batch_first=True, dropout=0.3)
        self.head = nn.Linear(10, 3)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        out, (h, c) = self.rnn(self.embed(tokens))
        return self.head(out[:, -1])


class StatefulGRU(nn.Module):
    """A GRU called with an initial hidden state."""

    def __init__(self) -> None:
        super().__init__()
        self.gru = nn.GRU(4, 3, num_layers=3, bidirectional=True)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.gru(x, h)


class CalledWithState(nn.Module):
    """A recurrent layer or cell called with an initial hidden state."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> Any:
        return self.layer(x, h)


# --- parametrizations -------------------------------------------------------------------------------


class Symmetric(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.triu() + x.triu(1).transpose(-1, -2)


class Scaled(nn.Module):
    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale

    def right_inverse(self, x: torch.Tensor) -> torch.Tensor:
        return x / self.scale


def _custom_parametrizations() -> tuple[nn.Module, tuple[Any, ...]]:
    layer = nn.Linear(4, 4)
    parametrize.register_parametrization(layer, "weight", Symmetric())
    parametrize.register_parametrization(layer, "weight", Scaled(1.5))
    parametrize.register_parametrization(layer, "bias", Scaled(0.5), unsafe=True)
    return layer, (r(3, 4),)


def _orthogonal(kind: str) -> Callable[[], tuple[nn.Module, tuple[Any, ...]]]:
    return lambda: (parametrizations.orthogonal(nn.Linear(4, 4), orthogonal_map=kind), (r(3, 4),))


def _parametrized_inside_model() -> tuple[nn.Module, tuple[Any, ...]]:
    model = nn.Sequential(parametrizations.weight_norm(nn.Conv1d(2, 3, 3)), nn.ReLU(),
                          parametrizations.spectral_norm(nn.Conv1d(3, 2, 3), n_power_iterations=2))
    return model, (r(2, 2, 9),)


def _transform_then_parametrize() -> tuple[nn.Module, tuple[Any, ...]]:
    from workbench import transform

    return parametrizations.weight_norm(transform(nn.Linear(4, 2))), (r(3, 4),)


def _deprecated_norms() -> tuple[nn.Module, tuple[Any, ...]]:
    return nn.Sequential(nn.utils.weight_norm(nn.Linear(4, 3)), nn.utils.spectral_norm(nn.Linear(3, 2))), (r(3, 4),)


# --- hooks ----------------------------------------------------------------------------------------------


def double_output(module: nn.Module, args: tuple[Any, ...], output: torch.Tensor) -> torch.Tensor:
    return output * 2


def add_one_to_input(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
    return (args[0] + 1,)


def shift_by_kwarg(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    return (args[0] - 0.25,), kwargs


def square_output(module: nn.Module, args: tuple[Any, ...], output: torch.Tensor) -> torch.Tensor:
    return output ** 2


def clamp_at(limit: float) -> Callable[..., torch.Tensor]:
    def clamp(module: nn.Module, args: tuple[Any, ...], output: torch.Tensor) -> torch.Tensor:
        return output.clamp(max=limit)

    return clamp


def add_constant(module: nn.Module, args: tuple[Any, ...], output: torch.Tensor, value: float) -> torch.Tensor:
    return output + value


def halve_gradient(module: nn.Module, grad_input: tuple[Any, ...], grad_output: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(None if g is None else g / 2 for g in grad_input)


def note_loaded(module: nn.Module, incompatible_keys: Any) -> None:
    module.loaded_once = True


def rename_state(module: nn.Module, state: dict[str, Any], prefix: str, local_metadata: Any) -> dict[str, Any]:
    state[prefix + "double_scale"] = state[prefix + "scale"] * 2
    return state


class Gated(nn.Module):
    """A layer whose own method is its hook (bound methods keep the layer)."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = nn.Linear(4, 4)
        self.scale = nn.Parameter(torch.tensor(0.5))
        self.inner.register_forward_hook(self.gate)
        self._register_state_dict_hook(rename_state)

    def gate(self, module: nn.Module, args: tuple[Any, ...], output: torch.Tensor) -> torch.Tensor:
        return output * torch.sigmoid(self.scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x)


def _hooks_in_order() -> tuple[nn.Module, tuple[Any, ...]]:
    layer = nn.Linear(4, 4)
    layer.register_forward_hook(double_output)
    layer.register_forward_hook(square_output, prepend=True)  # runs first: order matters
    layer.register_forward_hook(clamp_at(3.0), always_call=True)
    layer.register_forward_hook(functools.partial(add_constant, value=0.125))
    layer.register_forward_pre_hook(add_one_to_input)
    layer.register_forward_pre_hook(shift_by_kwarg, with_kwargs=True, prepend=True)
    layer.register_full_backward_hook(halve_gradient)
    layer.register_load_state_dict_post_hook(note_loaded)
    return layer, (r(3, 4),)


def _hooks_on_sublayers() -> tuple[nn.Module, tuple[Any, ...]]:
    model = TextClassifier()
    model.head.register_forward_hook(double_output)
    model.embed.register_forward_pre_hook(lambda module, args: (args[0].flip(-1),))
    return model, (torch.randint(0, 20, (2, 6)),)


# --- TorchScript -----------------------------------------------------------------------------------------


class Scorer(nn.Module):
    """Attributes of several kinds, a tensor attribute, a constant and an exported method."""

    __constants__ = ["offset"]

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.Dropout(0.3), nn.ReLU())
        self.head = nn.Linear(6, 2)
        self.weights = [0.5, 2.0]
        self.offset = 0.25
        self.table = torch.arange(6.0)

    @torch.jit.export
    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x) + self.table

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.head(self.features(x))
        return out * torch.tensor(self.weights) + self.offset


def _traced() -> tuple[nn.Module, tuple[Any, ...]]:
    model = TextClassifier().eval()
    tokens = torch.randint(0, 20, (2, 6))
    return torch.jit.trace(model, tokens), (tokens,)


# --- torch.compile ----------------------------------------------------------------------------------------


def _compiled() -> tuple[nn.Module, tuple[Any, ...]]:
    model = nn.Sequential(nn.Linear(4, 6), nn.Dropout(0.2), nn.GELU(), nn.Linear(6, 2))
    return torch.compile(model, backend="aot_eager", fullgraph=True, dynamic=False), (r(3, 4),)


def _compiled_in_place() -> tuple[nn.Module, tuple[Any, ...]]:
    model = nn.Sequential(nn.Linear(4, 3), nn.Tanh())
    model[0].compile(backend="eager")
    return model, (r(3, 4),)


# --- dynamic quantization ---------------------------------------------------------------------------------


def _quantized(**spec: Any) -> Callable[[], tuple[nn.Module, tuple[Any, ...]]]:
    def build() -> tuple[nn.Module, tuple[Any, ...]]:
        from torch.ao.quantization import quantize_dynamic

        model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3))
        return quantize_dynamic(model, **spec), (r(5, 4),)

    return build


def _quantized_recurrent(layer: nn.Module, dtype: torch.dtype | str, *args: Any) -> Callable[
        [], tuple[nn.Module, tuple[Any, ...]]]:
    """``layer`` dynamically quantized to ``dtype`` (or ``"per_channel"``: qint8 scales per output row)."""
    def build() -> tuple[nn.Module, tuple[Any, ...]]:
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        if dtype == "per_channel":
            model = quantize_dynamic(nn.Sequential(layer), {type(layer): per_channel_dynamic_qconfig})
        else:
            model = quantize_dynamic(nn.Sequential(layer), {type(layer)}, dtype=dtype)
        return (model if len(args) == 1 else CalledWithState(model[0])), args

    return build


CASES: dict[str, Callable[[], tuple[nn.Module, tuple[Any, ...]]]] = {
    "lstm_text_model": lambda: (TextClassifier(), (torch.randint(0, 20, (2, 6)),)),
    "lstm_projection_one_direction": lambda: (nn.LSTM(4, 6, proj_size=2), (r(5, 4),)),
    "gru_three_layers_with_state": lambda: (StatefulGRU(), (r(5, 2, 4), r(6, 2, 3))),
    "rnn_no_bias_batch_first": lambda: (nn.RNN(3, 4, bias=False, batch_first=True), (r(2, 5, 3),)),
    "weight_norm": lambda: (parametrizations.weight_norm(nn.Linear(4, 3), dim=1), (r(3, 4),)),
    "spectral_norm": lambda: (parametrizations.spectral_norm(nn.Linear(4, 3)), (r(3, 4),)),
    "orthogonal_matrix_exp": _orthogonal("matrix_exp"),
    "orthogonal_cayley": _orthogonal("cayley"),
    "orthogonal_householder": _orthogonal("householder"),
    "custom_parametrizations": _custom_parametrizations,
    "parametrized_inside_model": _parametrized_inside_model,
    "transform_then_parametrize": _transform_then_parametrize,
    "deprecated_weight_and_spectral_norm": _deprecated_norms,
    "hooks_in_order": _hooks_in_order,
    "hooks_on_sublayers": _hooks_on_sublayers,
    "hook_is_a_bound_method": lambda: (Gated(), (r(3, 4),)),
    "torchscript_scripted": lambda: (torch.jit.script(Scorer()), (r(3, 4),)),
    "torchscript_scripted_lstm": lambda: (torch.jit.script(TextClassifier()), (torch.randint(0, 20, (2, 6)),)),
    "torchscript_traced": _traced,
    "torch_compile": _compiled,
    "torch_compile_in_place": _compiled_in_place,
    "quantize_dynamic_qint8": _quantized(qconfig_spec={nn.Linear}, dtype=torch.qint8),
    "quantize_dynamic_float16": _quantized(qconfig_spec={nn.Linear}, dtype=torch.float16),
    "quantize_dynamic_per_channel": lambda: _quantized(
        qconfig_spec={nn.Linear: torch.ao.quantization.per_channel_dynamic_qconfig})(),
    "quantize_dynamic_lstm_qint8_two_layers_bidirectional": lambda: _quantized_recurrent(
        nn.LSTM(4, 5, num_layers=2, bidirectional=True), torch.qint8, r(6, 2, 4))(),
    "quantize_dynamic_lstm_float16_two_layers_bidirectional": lambda: _quantized_recurrent(
        nn.LSTM(4, 5, num_layers=2, bidirectional=True, batch_first=True), torch.float16, r(2, 6, 4))(),
    "quantize_dynamic_gru_qint8_two_layers_bidirectional": lambda: _quantized_recurrent(
        nn.GRU(4, 5, num_layers=2, bidirectional=True), torch.qint8, r(6, 2, 4))(),
    "quantize_dynamic_gru_float16_with_state": lambda: _quantized_recurrent(
        nn.GRU(4, 5, num_layers=2), torch.float16, r(6, 2, 4), r(2, 2, 5))(),
    "quantize_dynamic_lstm_per_channel": lambda: _quantized_recurrent(nn.LSTM(4, 5, num_layers=2), "per_channel",
                                                                     r(6, 2, 4))(),
    "quantize_dynamic_lstm_cell_qint8": lambda: _quantized_recurrent(nn.LSTMCell(4, 5), torch.qint8, r(3, 4))(),
    "quantize_dynamic_lstm_cell_float16": lambda: _quantized_recurrent(nn.LSTMCell(4, 5), torch.float16, r(3, 4))(),
    "quantize_dynamic_gru_cell_qint8": lambda: _quantized_recurrent(nn.GRUCell(4, 5), torch.qint8, r(3, 4), r(3, 5))(),
    "quantize_dynamic_gru_cell_float16": lambda: _quantized_recurrent(nn.GRUCell(4, 5), torch.float16, r(3, 4))(),
    "quantize_dynamic_rnn_cell_qint8": lambda: _quantized_recurrent(nn.RNNCell(4, 5), torch.qint8, r(3, 4))(),
    "quantize_dynamic_rnn_cell_float16": lambda: _quantized_recurrent(
        nn.RNNCell(4, 5, nonlinearity="relu"), torch.float16, r(3, 4))(),
}
