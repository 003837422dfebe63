"""The IPython extension: cell tracking, the magics and (when present) the JupyterLab comm.

``%load_ext workbench`` calls :func:`load`; importing :mod:`workbench` inside IPython calls it
too, so tracking starts with the first ``import workbench``. Loading twice is harmless.

>>> from workbench import notebook
>>> notebook.activate_if_in_ipython() is None   # outside IPython: nothing happens
True
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import Any

from . import tracking

__all__ = ["load", "unload", "activate_if_in_ipython"]

_LOADED: set[int] = set()


def load(ip: Any) -> None:
    """Install cell tracking, the magics and the JupyterLab comm in shell ``ip``."""
    from .magics import PipelineMagics

    tracking.install(ip)
    if id(ip) in _LOADED:
        return
    ip.register_magics(PipelineMagics)
    if importlib.util.find_spec("workbench.comm") is not None:
        importlib.import_module("workbench.comm").install(ip)
    _LOADED.add(id(ip))
    ip.extension_manager.loaded.add("workbench")


def unload(ip: Any) -> None:
    """Stop tracking cells (the magics stay registered, as IPython cannot unregister a class)."""
    tracking.uninstall(ip)
    _LOADED.discard(id(ip))
    ip.extension_manager.loaded.discard("workbench")
    if importlib.util.find_spec("workbench.comm") is not None:
        comm = importlib.import_module("workbench.comm")
        if hasattr(comm, "uninstall"):
            comm.uninstall(ip)


def activate_if_in_ipython() -> None:
    """Load the extension when running inside an IPython shell (called on ``import workbench``)."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return None
    ip = ipython.get_ipython()
    if ip is None or not hasattr(ip, "run_code"):
        return None
    load(ip)
    return None
