"""workbench: compose, run, inspect, explain and bundle PyTorch pipelines from notebook cells.

>>> import torch
>>> from workbench import transform, batch, unbatch
>>> nn = transform(torch.nn)
>>> pl = transform(torch.tensor) >> batch >> nn.Linear(2, 3) >> unbatch >> transform(torch.argmax)
>>> pl.infer_apply([1.0, 2.0]).shape
torch.Size([])
"""

from .mode import current_mode
from .pipeline import (
    Compose,
    IfEval,
    IfInfer,
    IfTrain,
    Map,
    Parallel,
    Rollout,
    Stages,
    Transform,
    Try,
    batch,
    identity,
    unbatch,
)
from . import registry
from .same import same
from .transform import FunctionTransform, transform
from .attribution import confusion_matrix, explain, hard_examples

__version__ = "0.1.0"

__all__ = [
    "transform",
    "Transform",
    "FunctionTransform",
    "Compose",
    "Rollout",
    "Parallel",
    "Map",
    "Stages",
    "batch",
    "unbatch",
    "identity",
    "same",
    "IfTrain",
    "IfEval",
    "IfInfer",
    "Try",
    "current_mode",
    "registry",
    "explain",
    "hard_examples",
    "confusion_matrix",
]
