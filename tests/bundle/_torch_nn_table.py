"""Every layer class of ``torch.nn``, built with small arguments, with an input it accepts.

``LAYERS[name]()`` returns ``(layer, args)``: ``layer(*args)`` runs it. ``args`` is None for classes
without a forward of their own (containers, base classes); their round trip is compared on state.
The builders run under a fixed seed, so the same table builds the same layers and inputs.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

__all__ = ["LAYERS", "UNAVAILABLE", "TRAIN_UNAVAILABLE", "torch_nn_layer_classes"]


def r(*shape: int) -> torch.Tensor:
    return torch.randn(*shape)


def p(*shape: int) -> torch.Tensor:
    return torch.rand(*shape)


def labels(n: int, classes: int) -> torch.Tensor:
    return torch.randint(0, classes, (n,))


def _pool_unpool(dims: int) -> tuple[nn.Module, tuple[Any, ...]]:
    pool = getattr(nn, f"MaxPool{dims}d")(2, return_indices=True)
    x = r(1, 2, *([4] * dims))
    out, idx = pool(x)
    return getattr(nn, f"MaxUnpool{dims}d")(2), (out, idx)


def _ctc() -> tuple[nn.Module, tuple[Any, ...]]:
    log_probs = r(6, 2, 5).log_softmax(2)
    targets = torch.randint(1, 5, (2, 3))
    return nn.CTCLoss(), (log_probs, targets, torch.tensor([6, 6]), torch.tensor([3, 2]))


LAYERS: dict[str, Callable[[], tuple[nn.Module, tuple[Any, ...] | None]]] = {
    # pooling
    "AdaptiveAvgPool1d": lambda: (nn.AdaptiveAvgPool1d(3), (r(2, 3, 7),)),
    "AdaptiveAvgPool2d": lambda: (nn.AdaptiveAvgPool2d((2, 3)), (r(2, 3, 5, 7),)),
    "AdaptiveAvgPool3d": lambda: (nn.AdaptiveAvgPool3d(2), (r(1, 2, 5, 5, 5),)),
    "AdaptiveMaxPool1d": lambda: (nn.AdaptiveMaxPool1d(3, return_indices=True), (r(2, 3, 7),)),
    "AdaptiveMaxPool2d": lambda: (nn.AdaptiveMaxPool2d(2), (r(2, 3, 5, 7),)),
    "AdaptiveMaxPool3d": lambda: (nn.AdaptiveMaxPool3d(2), (r(1, 2, 5, 5, 5),)),
    "AvgPool1d": lambda: (nn.AvgPool1d(3, stride=2, padding=1), (r(2, 3, 8),)),
    "AvgPool2d": lambda: (nn.AvgPool2d(2, ceil_mode=True, count_include_pad=False), (r(2, 3, 5, 5),)),
    "AvgPool3d": lambda: (nn.AvgPool3d(2, divisor_override=3), (r(1, 2, 4, 4, 4),)),
    "FractionalMaxPool2d": lambda: (nn.FractionalMaxPool2d(2, output_size=3), (r(1, 2, 7, 7),)),
    "FractionalMaxPool3d": lambda: (nn.FractionalMaxPool3d(2, output_ratio=0.5), (r(1, 2, 6, 6, 6),)),
    "LPPool1d": lambda: (nn.LPPool1d(2, 3), (r(2, 3, 9),)),
    "LPPool2d": lambda: (nn.LPPool2d(2, 2), (r(2, 3, 6, 6),)),
    "LPPool3d": lambda: (nn.LPPool3d(2, 2), (r(1, 2, 4, 4, 4),)),
    "MaxPool1d": lambda: (nn.MaxPool1d(3, stride=2, dilation=1), (r(2, 3, 9),)),
    "MaxPool2d": lambda: (nn.MaxPool2d(2, return_indices=True), (r(2, 3, 6, 6),)),
    "MaxPool3d": lambda: (nn.MaxPool3d(2), (r(1, 2, 4, 4, 4),)),
    "MaxUnpool1d": lambda: _pool_unpool(1),
    "MaxUnpool2d": lambda: _pool_unpool(2),
    "MaxUnpool3d": lambda: _pool_unpool(3),
    # activations
    "CELU": lambda: (nn.CELU(0.5), (r(3, 4),)),
    "ELU": lambda: (nn.ELU(0.7), (r(3, 4),)),
    "GELU": lambda: (nn.GELU("tanh"), (r(3, 4),)),
    "GLU": lambda: (nn.GLU(-1), (r(3, 4),)),
    "Hardshrink": lambda: (nn.Hardshrink(0.3), (r(3, 4),)),
    "Hardsigmoid": lambda: (nn.Hardsigmoid(), (r(3, 4),)),
    "Hardswish": lambda: (nn.Hardswish(), (r(3, 4),)),
    "Hardtanh": lambda: (nn.Hardtanh(-0.5, 0.5), (r(3, 4),)),
    "Identity": lambda: (nn.Identity(3, unused="argument"), (r(3, 4),)),
    "LeakyReLU": lambda: (nn.LeakyReLU(0.2), (r(3, 4),)),
    "LogSigmoid": lambda: (nn.LogSigmoid(), (r(3, 4),)),
    "LogSoftmax": lambda: (nn.LogSoftmax(dim=1), (r(3, 4),)),
    "Mish": lambda: (nn.Mish(), (r(3, 4),)),
    "MultiheadAttention": lambda: (nn.MultiheadAttention(8, 2, dropout=0.1, kdim=6, vdim=5, batch_first=True),
                                   (r(2, 3, 8), r(2, 4, 6), r(2, 4, 5))),
    "PReLU": lambda: (nn.PReLU(3), (r(2, 3, 4),)),
    "RReLU": lambda: (nn.RReLU(0.1, 0.3), (r(3, 4),)),
    "ReLU": lambda: (nn.ReLU(), (r(3, 4),)),
    "ReLU6": lambda: (nn.ReLU6(), (r(3, 4) * 8,)),
    "SELU": lambda: (nn.SELU(), (r(3, 4),)),
    "SiLU": lambda: (nn.SiLU(), (r(3, 4),)),
    "Sigmoid": lambda: (nn.Sigmoid(), (r(3, 4),)),
    "Softmax": lambda: (nn.Softmax(dim=0), (r(3, 4),)),
    "Softmax2d": lambda: (nn.Softmax2d(), (r(2, 3, 4, 4),)),
    "Softmin": lambda: (nn.Softmin(dim=1), (r(3, 4),)),
    "Softplus": lambda: (nn.Softplus(beta=2.0, threshold=5.0), (r(3, 4),)),
    "Softshrink": lambda: (nn.Softshrink(0.2), (r(3, 4),)),
    "Softsign": lambda: (nn.Softsign(), (r(3, 4),)),
    "Tanh": lambda: (nn.Tanh(), (r(3, 4),)),
    "Tanhshrink": lambda: (nn.Tanhshrink(), (r(3, 4),)),
    "Threshold": lambda: (nn.Threshold(0.1, -1.0), (r(3, 4),)),
    "AdaptiveLogSoftmaxWithLoss": lambda: (nn.AdaptiveLogSoftmaxWithLoss(8, 10, [4, 7], div_value=2.0),
                                           (r(5, 8), labels(5, 10))),
    # losses
    "BCELoss": lambda: (nn.BCELoss(weight=p(4)), (p(3, 4), p(3, 4))),
    "BCEWithLogitsLoss": lambda: (nn.BCEWithLogitsLoss(pos_weight=p(4) + 0.5), (r(3, 4), p(3, 4))),
    "CTCLoss": _ctc,
    "CosineEmbeddingLoss": lambda: (nn.CosineEmbeddingLoss(margin=0.1), (r(3, 4), r(3, 4), torch.tensor([1, -1, 1]))),
    "CrossEntropyLoss": lambda: (nn.CrossEntropyLoss(weight=p(4), label_smoothing=0.1), (r(3, 4), labels(3, 4))),
    "GaussianNLLLoss": lambda: (nn.GaussianNLLLoss(full=True), (r(3, 4), r(3, 4), p(3, 4) + 0.1)),
    "HingeEmbeddingLoss": lambda: (nn.HingeEmbeddingLoss(margin=0.5), (r(3, 4), torch.tensor([1.0, -1.0, 1.0, -1.0]))),
    "HuberLoss": lambda: (nn.HuberLoss(delta=0.5), (r(3, 4), r(3, 4))),
    "KLDivLoss": lambda: (nn.KLDivLoss(reduction="batchmean", log_target=True), (r(3, 4), r(3, 4))),
    "L1Loss": lambda: (nn.L1Loss(reduction="sum"), (r(3, 4), r(3, 4))),
    "LinearCrossEntropyLoss": lambda: (nn.LinearCrossEntropyLoss(6, 5, bias=True), (r(4, 6), labels(4, 5))),
    "MSELoss": lambda: (nn.MSELoss(reduction="none"), (r(3, 4), r(3, 4))),
    "MarginRankingLoss": lambda: (nn.MarginRankingLoss(0.2), (r(4), r(4), torch.tensor([1.0, -1.0, 1.0, 1.0]))),
    "MultiLabelMarginLoss": lambda: (nn.MultiLabelMarginLoss(), (r(2, 4), torch.tensor([[3, 0, -1, 1], [1, 2, 3, -1]]))),
    "MultiLabelSoftMarginLoss": lambda: (nn.MultiLabelSoftMarginLoss(weight=p(4)), (r(3, 4), p(3, 4).round())),
    "MultiMarginLoss": lambda: (nn.MultiMarginLoss(p=2, margin=0.5, weight=p(4)), (r(3, 4), labels(3, 4))),
    "NLLLoss": lambda: (nn.NLLLoss(weight=p(4), ignore_index=1), (r(3, 4).log_softmax(1), labels(3, 4))),
    "NLLLoss2d": lambda: (nn.NLLLoss2d(), (r(2, 4, 3, 3).log_softmax(1), torch.randint(0, 4, (2, 3, 3)))),
    "PoissonNLLLoss": lambda: (nn.PoissonNLLLoss(log_input=False, full=True), (p(3, 4) + 0.1, p(3, 4) * 5)),
    "SmoothL1Loss": lambda: (nn.SmoothL1Loss(beta=0.5), (r(3, 4), r(3, 4))),
    "SoftMarginLoss": lambda: (nn.SoftMarginLoss(), (r(3, 4), r(3, 4).sign())),
    "TripletMarginLoss": lambda: (nn.TripletMarginLoss(margin=0.5, p=1.0, swap=True), (r(3, 4), r(3, 4), r(3, 4))),
    "TripletMarginWithDistanceLoss": lambda: (nn.TripletMarginWithDistanceLoss(distance_function=nn.PairwiseDistance(),
                                                                               margin=0.5), (r(3, 4), r(3, 4), r(3, 4))),
    # normalisation
    "BatchNorm1d": lambda: (nn.BatchNorm1d(3, momentum=0.3), (r(4, 3, 5),)),
    "BatchNorm2d": lambda: (nn.BatchNorm2d(3, momentum=None), (r(4, 3, 2, 2),)),
    "BatchNorm3d": lambda: (nn.BatchNorm3d(2, affine=False), (r(2, 2, 2, 2, 2),)),
    "GroupNorm": lambda: (nn.GroupNorm(2, 4), (r(2, 4, 3),)),
    "InstanceNorm1d": lambda: (nn.InstanceNorm1d(3, affine=True, track_running_stats=True), (r(2, 3, 5),)),
    "InstanceNorm2d": lambda: (nn.InstanceNorm2d(3), (r(2, 3, 4, 4),)),
    "InstanceNorm3d": lambda: (nn.InstanceNorm3d(2, affine=True), (r(1, 2, 3, 3, 3),)),
    "LayerNorm": lambda: (nn.LayerNorm([3, 4], eps=1e-3), (r(2, 3, 4),)),
    "LocalResponseNorm": lambda: (nn.LocalResponseNorm(2), (r(2, 4, 3, 3),)),
    "CrossMapLRN2d": lambda: (nn.CrossMapLRN2d(3), (r(2, 4, 3, 3),)),
    "RMSNorm": lambda: (nn.RMSNorm(4, eps=1e-5), (r(3, 4),)),
    "SyncBatchNorm": lambda: (nn.SyncBatchNorm(3).eval(), (r(4, 3, 5),)),
    "LazyBatchNorm1d": lambda: (nn.LazyBatchNorm1d(), (r(4, 3),)),
    "LazyBatchNorm2d": lambda: (nn.LazyBatchNorm2d(), (r(2, 3, 2, 2),)),
    "LazyBatchNorm3d": lambda: (nn.LazyBatchNorm3d(), (r(2, 2, 2, 2, 2),)),
    "LazyInstanceNorm1d": lambda: (nn.LazyInstanceNorm1d(affine=True), (r(2, 3, 5),)),
    "LazyInstanceNorm2d": lambda: (nn.LazyInstanceNorm2d(affine=True, track_running_stats=True), (r(2, 3, 4, 4),)),
    "LazyInstanceNorm3d": lambda: (nn.LazyInstanceNorm3d(), (r(1, 2, 3, 3, 3),)),
    # convolutions and linear maps
    "Conv1d": lambda: (nn.Conv1d(2, 4, 3, stride=2, padding=1, padding_mode="circular"), (r(2, 2, 8),)),
    "Conv2d": lambda: (nn.Conv2d(2, 4, 3, padding="same", groups=2, padding_mode="reflect"), (r(2, 2, 5, 5),)),
    "Conv3d": lambda: (nn.Conv3d(2, 3, 2, dilation=1, bias=False), (r(1, 2, 4, 4, 4),)),
    "ConvTranspose1d": lambda: (nn.ConvTranspose1d(2, 3, 3, stride=2, output_padding=1), (r(2, 2, 5),)),
    "ConvTranspose2d": lambda: (nn.ConvTranspose2d(2, 4, 3, groups=2), (r(2, 2, 4, 4),)),
    "ConvTranspose3d": lambda: (nn.ConvTranspose3d(2, 2, 2), (r(1, 2, 3, 3, 3),)),
    "LazyConv1d": lambda: (nn.LazyConv1d(4, 3), (r(2, 2, 8),)),
    "LazyConv2d": lambda: (nn.LazyConv2d(4, 3, padding=1), (r(2, 2, 5, 5),)),
    "LazyConv3d": lambda: (nn.LazyConv3d(2, 2), (r(1, 2, 4, 4, 4),)),
    "LazyConvTranspose1d": lambda: (nn.LazyConvTranspose1d(3, 3), (r(2, 2, 5),)),
    "LazyConvTranspose2d": lambda: (nn.LazyConvTranspose2d(3, 3), (r(2, 2, 4, 4),)),
    "LazyConvTranspose3d": lambda: (nn.LazyConvTranspose3d(2, 2), (r(1, 2, 3, 3, 3),)),
    "Linear": lambda: (nn.Linear(4, 3), (r(2, 4),)),
    "LazyLinear": lambda: (nn.LazyLinear(3), (r(2, 4),)),
    "Bilinear": lambda: (nn.Bilinear(3, 4, 2), (r(5, 3), r(5, 4))),
    "Embedding": lambda: (nn.Embedding(10, 4, padding_idx=0, max_norm=1.0), (torch.tensor([[1, 2, 0], [4, 9, 9]]),)),
    "EmbeddingBag": lambda: (nn.EmbeddingBag(10, 3, mode="max"), (torch.tensor([[1, 2, 4], [5, 4, 3]]),)),
    # recurrent layers
    "RNN": lambda: (nn.RNN(4, 3, num_layers=2, nonlinearity="relu", bidirectional=True), (r(5, 2, 4),)),
    "LSTM": lambda: (nn.LSTM(4, 5, num_layers=2, proj_size=3, bidirectional=True, batch_first=True), (r(2, 5, 4),)),
    "GRU": lambda: (nn.GRU(4, 3, num_layers=2, dropout=0.2, bias=False), (r(5, 2, 4),)),
    "RNNCell": lambda: (nn.RNNCell(4, 3, nonlinearity="tanh"), (r(2, 4),)),
    "LSTMCell": lambda: (nn.LSTMCell(4, 3), (r(2, 4),)),
    "GRUCell": lambda: (nn.GRUCell(4, 3, bias=False), (r(2, 4),)),
    "RNNBase": lambda: (nn.RNNBase("LSTM", 4, 3, num_layers=2), None),
    "RNNCellBase": lambda: (nn.RNNCellBase(4, 3, bias=True, num_chunks=2), None),
    # dropout
    "AlphaDropout": lambda: (nn.AlphaDropout(0.3), (r(3, 4),)),
    "Dropout": lambda: (nn.Dropout(0.4), (r(3, 4),)),
    "Dropout1d": lambda: (nn.Dropout1d(0.4), (r(2, 3, 4),)),
    "Dropout2d": lambda: (nn.Dropout2d(0.4), (r(2, 3, 4, 4),)),
    "Dropout3d": lambda: (nn.Dropout3d(0.4), (r(2, 3, 2, 2, 2),)),
    "FeatureAlphaDropout": lambda: (nn.FeatureAlphaDropout(0.3), (r(2, 3, 4, 4),)),
    # padding and shape
    "CircularPad1d": lambda: (nn.CircularPad1d(2), (r(2, 3, 4),)),
    "CircularPad2d": lambda: (nn.CircularPad2d((1, 0, 2, 1)), (r(2, 3, 4, 4),)),
    "CircularPad3d": lambda: (nn.CircularPad3d(1), (r(1, 2, 3, 3, 3),)),
    "ConstantPad1d": lambda: (nn.ConstantPad1d(2, 3.5), (r(2, 3, 4),)),
    "ConstantPad2d": lambda: (nn.ConstantPad2d((1, 0, 2, 1), -1.0), (r(2, 3, 4, 4),)),
    "ConstantPad3d": lambda: (nn.ConstantPad3d(1, 0.5), (r(1, 2, 3, 3, 3),)),
    "ReflectionPad1d": lambda: (nn.ReflectionPad1d(2), (r(2, 3, 4),)),
    "ReflectionPad2d": lambda: (nn.ReflectionPad2d((1, 0, 2, 1)), (r(2, 3, 4, 4),)),
    "ReflectionPad3d": lambda: (nn.ReflectionPad3d(1), (r(1, 2, 3, 3, 3),)),
    "ReplicationPad1d": lambda: (nn.ReplicationPad1d(2), (r(2, 3, 4),)),
    "ReplicationPad2d": lambda: (nn.ReplicationPad2d((1, 0, 2, 1)), (r(2, 3, 4, 4),)),
    "ReplicationPad3d": lambda: (nn.ReplicationPad3d(1), (r(1, 2, 3, 3, 3),)),
    "ZeroPad1d": lambda: (nn.ZeroPad1d(2), (r(2, 3, 4),)),
    "ZeroPad2d": lambda: (nn.ZeroPad2d((1, 0, 2, 1)), (r(2, 3, 4, 4),)),
    "ZeroPad3d": lambda: (nn.ZeroPad3d(1), (r(1, 2, 3, 3, 3),)),
    "ChannelShuffle": lambda: (nn.ChannelShuffle(2), (r(1, 4, 2, 2),)),
    "Flatten": lambda: (nn.Flatten(1, -1), (r(2, 3, 4),)),
    "Unflatten": lambda: (nn.Unflatten(1, (2, 2)), (r(3, 4),)),
    "Fold": lambda: (nn.Fold((4, 5), (2, 2)), (r(1, 3 * 2 * 2, 12),)),
    "Unfold": lambda: (nn.Unfold((2, 3), dilation=1, padding=1, stride=2), (r(2, 3, 4, 4),)),
    "PixelShuffle": lambda: (nn.PixelShuffle(2), (r(1, 8, 2, 3),)),
    "PixelUnshuffle": lambda: (nn.PixelUnshuffle(2), (r(1, 2, 4, 6),)),
    "Upsample": lambda: (nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True), (r(1, 2, 3, 3),)),
    "UpsamplingBilinear2d": lambda: (nn.UpsamplingBilinear2d(size=(5, 4)), (r(1, 2, 3, 3),)),
    "UpsamplingNearest2d": lambda: (nn.UpsamplingNearest2d(scale_factor=3), (r(1, 2, 2, 2),)),
    "CosineSimilarity": lambda: (nn.CosineSimilarity(dim=1, eps=1e-6), (r(3, 4), r(3, 4))),
    "PairwiseDistance": lambda: (nn.PairwiseDistance(p=3.0, keepdim=True), (r(3, 4), r(3, 4))),
    # transformers
    "Transformer": lambda: (nn.Transformer(8, 2, num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=16,
                                           dropout=0.1, batch_first=True), (r(2, 5, 8), r(2, 3, 8))),
    "TransformerEncoder": lambda: (nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, batch_first=True), 2,
                                                         enable_nested_tensor=False), (r(2, 5, 8),)),
    "TransformerDecoder": lambda: (nn.TransformerDecoder(nn.TransformerDecoderLayer(8, 2, 16), 2, norm=nn.LayerNorm(8)),
                                   (r(3, 2, 8), r(5, 2, 8))),
    "TransformerEncoderLayer": lambda: (nn.TransformerEncoderLayer(8, 2, 16, activation="gelu", norm_first=True),
                                        (r(5, 2, 8),)),
    "TransformerDecoderLayer": lambda: (nn.TransformerDecoderLayer(8, 2, 16, bias=False, batch_first=True),
                                        (r(2, 3, 8), r(2, 5, 8))),
    # containers and wrappers
    "Module": lambda: (nn.Module(), None),
    "Container": lambda: (nn.Container(first=nn.Linear(2, 2), second=nn.ReLU()), None),
    "Sequential": lambda: (nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Dropout(0.2), nn.Tanh()), (r(5, 4),)),
    "ModuleList": lambda: (nn.ModuleList([nn.Linear(2, 2), nn.LayerNorm(2)]), None),
    "ModuleDict": lambda: (nn.ModuleDict({"a": nn.Linear(2, 2), "b": nn.ReLU()}), None),
    "ParameterList": lambda: (nn.ParameterList([nn.Parameter(r(2, 2)), nn.Parameter(r(3), requires_grad=False)]), None),
    "ParameterDict": lambda: (nn.ParameterDict({"w": nn.Parameter(r(2, 2)), "b": nn.Parameter(r(2))}), None),
    "DataParallel": lambda: (nn.DataParallel(nn.Sequential(nn.Linear(4, 3), nn.ReLU())), (r(2, 4),)),
}

# Classes this machine cannot run at all, with the reason (DataParallel without GPUs runs its module directly).
UNAVAILABLE: dict[str, str] = {}

# Classes whose training forward this machine cannot run; they are compared in eval mode only.
TRAIN_UNAVAILABLE: dict[str, str] = {
    "SyncBatchNorm": "its training forward needs CUDA tensors and a distributed process group",
}


def torch_nn_layer_classes() -> list[str]:
    """Names of every ``torch.nn`` attribute that is a ``torch.nn.Module`` subclass."""
    return sorted(name for name in dir(nn) if isinstance(getattr(nn, name), type)
                  and issubclass(getattr(nn, name), nn.Module))
