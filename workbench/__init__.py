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
    Batch,
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
    step_name,
    unbatch,
)
from . import errors, registry
from .annotations import annotate
from .attribution import Explanation, confusion_matrix, explain, hard_examples
from .bundle import load, save
from .errors import BundleError, CaptureError, CheckError, IntegrityError, LoadFailed
from .inspector import Trace, inspect, trace
from .same import same
from .serving import serve
from .transform import FunctionTransform, transform

__version__ = "0.1.0"

# The public API, listed in docs/api.md (tests/test_public_api.py compares the two). ``inspect`` is
# not in it although ``workbench.inspect`` is public: ``from workbench import *`` must not replace
# the standard library's ``inspect`` module in the caller's namespace.
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
    "Batch",
    "unbatch",
    "identity",
    "same",
    "IfTrain",
    "IfEval",
    "IfInfer",
    "Try",
    "step_name",
    "current_mode",
    "annotate",
    "registry",
    "explain",
    "Explanation",
    "hard_examples",
    "confusion_matrix",
    "trace",
    "Trace",
    "save",
    "load",
    "serve",
    "BundleError",
    "CaptureError",
    "IntegrityError",
    "CheckError",
    "LoadFailed",
]


def __getattr__(name: str):  # noqa: ANN202 - module attribute hook
    """``workbench.ray`` on first use, so that ``import workbench`` never imports Ray."""
    if name == "ray":
        import importlib

        return importlib.import_module(".ray", __name__)
    raise AttributeError(f"module 'workbench' has no attribute {name!r}")


# --- IPython extension (``%load_ext workbench``); activated automatically on import inside IPython ---


def load_ipython_extension(ip):  # noqa: ANN001 - IPython's hook signature
    """Cell tracking, the ``%%pipeline``/``%wb_deps``/``%wb_save`` magics and the JupyterLab comm."""
    from .notebook import load

    load(ip)


def unload_ipython_extension(ip):  # noqa: ANN001
    from .notebook import unload

    unload(ip)


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """Where the prebuilt JupyterLab extension lives (read by ``jupyter labextension develop``)."""
    return [{"src": "labextension", "dest": "workbench-jupyterlab"}]


from .notebook import activate_if_in_ipython as _activate_if_in_ipython  # noqa: E402

_activate_if_in_ipython()
