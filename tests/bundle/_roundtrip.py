"""Save torch layers inside pipelines here, load them all in one fresh interpreter, compare exactly.

For each case the layer is trained for a few optimizer steps (so weights, optimizer-touched state and
running statistics are not the initial ones), left in a mixed ``train()``/``eval()`` state, saved as
``identity >> layer``, and recorded: every sub-layer's ``training`` flag, the ``state_dict``,
``infer_apply`` output and a train-mode output under a fixed seed (dropout draws the same mask).
One interpreter started in an empty directory (no test code importable) then loads every bundle
and records the same things; the test compares them with ``workbench.bundle.compare.difference``.
"""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import torch

import workbench
from workbench import identity, transform

__all__ = ["save_case", "load_all", "compare", "plain"]


def plain(value: Any) -> Any:
    """``value`` as tensors, numbers, strings and lists only, keeping each container's type name."""
    if isinstance(value, torch.Tensor) and value.is_quantized:
        if value.qscheme() == torch.per_tensor_affine:
            return ["quantized", value.int_repr(), value.q_scale(), value.q_zero_point()]
        return ["quantized", value.int_repr(), value.q_per_channel_scales(), value.q_per_channel_zero_points()]
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, torch.ScriptObject):  # packed weights: compared through the state they pickle
        return ["ScriptObject", value._type().qualified_name(), plain(value.__getstate__())]
    if isinstance(value, (tuple, list)):
        return [type(value).__name__] + [plain(v) for v in value]
    if isinstance(value, dict):
        return ["dict"] + [[k, plain(v)] for k, v in value.items()]
    return value


def _tensors(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _tensors(v)]
    return []


def _train(layer: torch.nn.Module, args: tuple[Any, ...]) -> None:
    params = [q for q in layer.parameters() if q.requires_grad and q.is_floating_point()]
    opt = torch.optim.SGD(params, lr=0.05, momentum=0.9) if params else None
    layer.train()
    for step in range(3):
        torch.manual_seed(100 + step)
        out = layer(*args)
        losses = [t.float().sum() for t in _tensors(out) if t.requires_grad]
        if opt is not None and losses:
            opt.zero_grad()
            sum(losses).backward()
            opt.step()


def save_case(root: Path, name: str, build: Callable[[], tuple[Any, tuple[Any, ...] | None]], *,
              train: bool = True) -> None:
    """Build, train, save and record one case under ``root/name``.

    ``build()`` gives ``(layer, args)``; ``args`` None means the layer has no forward (state only).
    ``train=False`` for layers whose training forward cannot run here.
    """
    torch.manual_seed(0)
    layer, args = build()
    layer = transform(layer)
    if args is not None and train:
        _train(layer, args)
    layer.train(train)
    children = list(layer.children())
    if children:
        children[0].eval()
    record: dict[str, Any] = {
        "flags": [m.training for m in layer.modules()],
        "names": [n for n, _ in layer.named_modules()],
        "state": {k: plain(v) for k, v in layer.state_dict().items()},
    }
    pl = identity >> layer
    workbench.save(pl, root / name / "bundle")
    if args is not None:
        record["args"] = list(args)
        torch.manual_seed(1)
        record["infer"] = plain(pl.infer_apply(args[0] if len(args) == 1 else tuple(args)))
        if train:
            layer.train()
            torch.manual_seed(2)
            record["train"] = plain(layer(*args))
    torch.save(record, root / name / "live.pt")


LOAD_ALL = r"""
from __future__ import annotations
import sys, traceback
import torch, workbench
from pathlib import Path
""" + inspect.getsource(plain) + r"""
torch.set_num_threads(int(sys.argv[1]))  # as in the saving process: some kernels split work by thread
root = Path(sys.argv[2])
for name in sys.argv[3:]:
    d = root / name
    live = torch.load(d / "live.pt", weights_only=True)
    out = {}
    try:
        pl = workbench.load(d / "bundle")
        layer = pl[1]
        out["flags"] = [m.training for m in layer.modules()]
        out["names"] = [n for n, _ in layer.named_modules()]
        out["state"] = {k: plain(v) for k, v in layer.state_dict().items()}
        if "args" in live:
            args = live["args"]
            torch.manual_seed(1)
            out["infer"] = plain(pl.infer_apply(args[0] if len(args) == 1 else tuple(args)))
            if "train" in live:
                layer.train()
                torch.manual_seed(2)
                out["train"] = plain(layer(*args))
    except BaseException as exc:
        out = {"error": "".join(traceback.format_exception(exc))[-3000:]}
    torch.save(out, d / "loaded.pt")
"""


def load_all(root: Path, names: list[str]) -> None:
    """Load every case's bundle in one fresh interpreter started in an empty directory."""
    work = root / "_empty"
    work.mkdir(exist_ok=True)
    proc = subprocess.run([sys.executable, "-c", LOAD_ALL, str(torch.get_num_threads()), str(root), *names], cwd=work,
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"the loading interpreter failed:\n{proc.stderr[-3000:]}")


def compare(root: Path, name: str) -> list[str]:
    """Differences between the live and the loaded records of one case (empty: exact)."""
    from workbench.bundle.compare import difference

    live = torch.load(root / name / "live.pt", weights_only=True)
    loaded = torch.load(root / name / "loaded.pt", weights_only=True)
    if "error" in loaded:
        return [loaded["error"]]
    problems = []
    for key in ("flags", "names", "state", "infer", "train"):
        if key in live:
            problem = difference(live[key], loaded.get(key), key)
            if problem:
                problems.append(problem)
    return problems

