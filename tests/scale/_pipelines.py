"""Pipelines the Ray tests run, written to a module file so that bundles copy their source."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

SOURCE = '''
import os
import signal

import numpy as np
import torch
from workbench import transform, batch, unbatch

nn = transform(torch.nn)
torch.manual_seed(0)
net = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 3))

KILL_FLAG = {kill_flag!r}


@transform
def features(x):
    return torch.as_tensor(np.asarray(x, dtype=np.float32))


@transform
def label(logits):
    return {{"label": int(logits.argmax()), "scores": logits}}


@transform
def refuse_negative(x):
    if float(np.asarray(x)[0]) < 0:
        raise ValueError("the first feature must not be negative")
    return x


@transform
def die_once(x):
    # The first time an item starting with 666 arrives, the worker process dies (SIGKILL).
    if float(np.asarray(x)[0]) == 666.0 and not os.path.exists(KILL_FLAG):
        with open(KILL_FLAG, "w") as f:
            f.write(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    return x


@transform
def doubled(t):
    return t * 2


classify = features >> batch >> net >> unbatch >> label
scores = features >> batch >> net
unmarked = features >> doubled
strict = refuse_negative >> features >> batch >> net >> unbatch >> label
mortal = die_once >> features >> batch >> net >> unbatch >> label
'''


def load_module(root: Path, name: str = "ray_pipelines") -> ModuleType:
    """Write the pipelines to ``root`` and import them as ``name``."""
    path = root / f"{name}.py"
    path.write_text(SOURCE.format(kill_flag=str(root / "killed")))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def items(n: int, seed: int = 1) -> list[list[float]]:
    """``n`` items of 8 features each, non-negative first feature."""
    import numpy as np

    rng = np.random.default_rng(seed)
    data = rng.random((n, 8)).astype(np.float32)
    return [row.tolist() for row in data]
