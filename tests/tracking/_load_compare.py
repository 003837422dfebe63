"""Load bundles in fresh interpreters and compare their outputs with the ones the kernel computed.

Usage: python _load_compare.py '<json list of {"name", "bundle", "expected"}>' [--no-fork]

``expected`` is a pickle of ``{"inputs": [...], "outputs": [...]}`` written by the kernel at save
time. Each bundle is loaded in a child forked from this parent, which has imported only torch, numpy,
pandas and workbench and has loaded nothing, so every load sees the same fresh state (``--no-fork``
loads the single given bundle in this process, which imported nothing before). One JSON line per
bundle: ``{"name", "ok", "detail"}``.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import sys
import traceback
from typing import Any


def same(a: Any, b: Any, path: str = "output") -> str | None:
    """``None`` when ``a`` and ``b`` are exactly equal (type, dtype, shape, every value), else why not."""
    import numpy as np
    import torch

    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
            return f"{path}: {type(a).__name__} vs {type(b).__name__}"
        if a.dtype != b.dtype or a.shape != b.shape:
            return f"{path}: {a.dtype}{list(a.shape)} vs {b.dtype}{list(b.shape)}"
        if not torch.equal(a, b):
            return f"{path}: values differ: {a} vs {b}"
        return None
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
            return f"{path}: {type(a).__name__} vs {type(b).__name__}"
        if a.dtype != b.dtype or a.shape != b.shape or not np.array_equal(a, b):
            return f"{path}: arrays differ: {a!r} vs {b!r}"
        return None
    if type(a).__name__ != type(b).__name__:
        return f"{path}: {type(a).__name__} vs {type(b).__name__}"
    if isinstance(a, (list, tuple)):
        if len(a) != len(b):
            return f"{path}: length {len(a)} vs {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            why = same(x, y, f"{path}[{i}]")
            if why:
                return why
        return None
    if isinstance(a, dict):
        if list(a) != list(b):
            return f"{path}: keys {list(a)} vs {list(b)}"
        for k in a:
            why = same(a[k], b[k], f"{path}[{k!r}]")
            if why:
                return why
        return None
    if isinstance(a, float) and math.isnan(a) and math.isnan(b):
        return None
    return None if a == b else f"{path}: {a!r} vs {b!r}"


def check(case: dict[str, str]) -> dict[str, Any]:
    import workbench

    with open(case["expected"], "rb") as f:
        expected = pickle.load(f)
    pipeline = workbench.load(case["bundle"])
    for i, (x, want) in enumerate(zip(expected["inputs"], expected["outputs"])):
        got = pipeline.infer_apply(x)
        why = same(got, want, f"output for input {i}")
        if why:
            return {"name": case["name"], "ok": False, "detail": why}
    return {"name": case["name"], "ok": True, "detail": f"{len(expected['inputs'])} outputs equal"}


def run_one(case: dict[str, str]) -> dict[str, Any]:
    try:
        return check(case)
    except BaseException:  # reported to the test, which fails with it
        return {"name": case["name"], "ok": False, "detail": traceback.format_exc()}


def main() -> None:
    cases = json.loads(sys.argv[1])
    if "--no-fork" in sys.argv:
        assert len(cases) == 1, "--no-fork loads exactly one bundle"
        print(json.dumps(run_one(cases[0])), flush=True)
        return
    import numpy  # noqa: F401
    import pandas  # noqa: F401
    import torch  # noqa: F401

    import workbench  # noqa: F401

    for case in cases:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            line = json.dumps(run_one(case)).encode()
            with os.fdopen(write, "wb") as out:
                out.write(line)
            os._exit(0)
        os.close(write)
        with os.fdopen(read, "rb") as inp:
            data = inp.read()
        os.waitpid(pid, 0)
        if data:
            print(data.decode(), flush=True)
        else:
            print(json.dumps({"name": case["name"], "ok": False, "detail": "the loading process died"}), flush=True)


if __name__ == "__main__":
    main()
