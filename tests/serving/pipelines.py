"""Pipelines the serving tests save as bundles (a module file, so that bundles hold their source)."""

import time

import torch
from workbench import batch, transform, unbatch

torch.manual_seed(0)


@transform
def to_tensor(x):
    if not isinstance(x, list):
        raise TypeError(f"expected a list of numbers, got {type(x).__name__}")
    return torch.tensor(x, dtype=torch.float32)


@transform
def maybe_sleep(x):
    """``{"sleep": s, "x": [...]}`` waits s seconds first: the tests' slow request."""
    if isinstance(x, dict):
        time.sleep(x["sleep"])
        return x["x"]
    return x


@transform
def finish(y):
    if torch.isnan(y).any():
        raise ValueError("the scores hold NaN")
    return {"label": y.argmax(), "scores": y.softmax(-1)}


mlp = transform(torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.GELU(), torch.nn.Linear(64, 5)))
scorer = maybe_sleep >> to_tensor >> batch >> mlp >> unbatch >> finish

table = transform(torch.nn.Embedding(50, 8))


@transform
def ids(x):
    return torch.tensor(x, dtype=torch.long)


@transform
def pooled(e):
    # Lookups, products and max: no sums whose order a batch could change, so batching is exact.
    return (e * 3.0 + 1.0).relu().amax(dim=1)


lookup = ids >> batch >> table >> pooled >> unbatch
unbatched = to_tensor >> mlp

padded_table = transform(torch.nn.Embedding(50, 8, padding_idx=0))


@transform
def max_pool(e):
    # The padding row is zeros, and relu makes every real value >= 0: padding never changes the max.
    return e.relu().amax(dim=1)


padded = ids >> batch.pad(0) >> padded_table >> max_pool >> unbatch
