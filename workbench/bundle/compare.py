"""Exact comparison of pipeline outputs: tensors bit for bit, containers element by element.

>>> import torch
>>> difference(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.5])) is not None
True
>>> difference({"a": [1, 2.0]}, {"a": [1, 2.0]}) is None
True
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["difference"]


def difference(expected: Any, actual: Any, where: str = "output") -> str | None:
    """None when ``actual`` is exactly ``expected``; else a sentence saying where they differ."""
    import torch

    if isinstance(expected, torch.Tensor) or isinstance(actual, torch.Tensor):
        if not (isinstance(expected, torch.Tensor) and isinstance(actual, torch.Tensor)):
            return f"{where}: expected {type(expected).__name__}, got {type(actual).__name__}"
        if expected.dtype != actual.dtype or expected.shape != actual.shape:
            return (f"{where}: expected a {expected.dtype} tensor of shape {tuple(expected.shape)}, "
                    f"got {actual.dtype} of shape {tuple(actual.shape)}")
        a, b = expected.detach().cpu(), actual.detach().cpu()
        same = torch.equal(a, b) or (a.is_floating_point() and torch.equal(a.isnan(), b.isnan())
                                     and torch.equal(a.nan_to_num(0.0), b.nan_to_num(0.0)))
        if not same:
            diff = (a.double() - b.double()).abs()
            return f"{where}: tensors differ in {int((a != b).sum())} elements (largest difference {diff.max().item():.6g})"
        return None
    np = _numpy()
    if np is not None and (isinstance(expected, np.ndarray) or isinstance(actual, np.ndarray)):
        if type(expected) is not type(actual) or expected.dtype != actual.dtype or expected.shape != actual.shape:
            return f"{where}: arrays differ in type, dtype or shape"
        if not np.array_equal(expected, actual, equal_nan=expected.dtype.kind in "fc"):
            return f"{where}: arrays differ"
        return None
    if type(expected) is not type(actual):
        return f"{where}: expected {type(expected).__name__} {expected!r:.60}, got {type(actual).__name__} {actual!r:.60}"
    if isinstance(expected, (list, tuple)):
        if len(expected) != len(actual):
            return f"{where}: expected length {len(expected)}, got {len(actual)}"
        for i, (x, y) in enumerate(zip(expected, actual)):
            found = difference(x, y, f"{where}[{i}]")
            if found:
                return found
        return None
    if isinstance(expected, dict):
        if list(expected) != list(actual):
            return f"{where}: keys differ ({list(expected)!r:.80} vs {list(actual)!r:.80})"
        for k in expected:
            found = difference(expected[k], actual[k], f"{where}[{k!r}]")
            if found:
                return found
        return None
    if isinstance(expected, float):
        if repr(expected) != repr(actual) or math.copysign(1.0, expected) != math.copysign(1.0, actual):
            return f"{where}: expected {expected!r}, got {actual!r}"
        return None
    try:
        equal = expected == actual
        if not isinstance(equal, bool):
            equal = bool(equal.all()) if hasattr(equal, "all") else bool(equal)
    except Exception as exc:
        return f"{where}: cannot compare {type(expected).__name__} values ({exc})"
    return None if equal else f"{where}: expected {expected!r:.80}, got {actual!r:.80}"


def _numpy() -> Any:
    import sys

    return sys.modules.get("numpy")
