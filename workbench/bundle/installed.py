"""Which modules a bundle imports (standard library, installed distributions) and which it copies.

>>> is_installed_module("json"), is_installed_module("__main__")
(True, False)
"""

from __future__ import annotations

import os
import sys
import sysconfig
import types
from typing import Any

__all__ = ["is_installed_module", "import_path", "distributions"]

_NOT_FOUND = object()

_INSTALLED_DIRS: tuple[str, ...] | None = None
_DISTRIBUTIONS: dict[str, list[str]] | None = None


def distributions() -> dict[str, list[str]]:
    global _DISTRIBUTIONS
    if _DISTRIBUTIONS is None:
        import importlib.metadata as md

        _DISTRIBUTIONS = dict(md.packages_distributions())
    return _DISTRIBUTIONS


def _installed_dirs() -> tuple[str, ...]:
    global _INSTALLED_DIRS
    if _INSTALLED_DIRS is None:
        paths = sysconfig.get_paths()
        dirs = {os.path.realpath(paths[k]) for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
        _INSTALLED_DIRS = tuple(sorted(dirs))
    return _INSTALLED_DIRS


def is_installed_module(name: str) -> bool:
    """Whether module ``name`` comes from the standard library or an installed distribution.

    Such modules are imported by the bundle; others (``__main__``, scripts' neighbours, notebook
    helpers) are copied by value.
    """
    if name in ("__main__", "") or name.startswith("workbench_bundle_"):
        return False
    top = name.split(".")[0]
    if top in sys.stdlib_module_names or top in sys.builtin_module_names or top == "workbench":
        return True
    module = sys.modules.get(name) or sys.modules.get(top)
    filename = getattr(module, "__file__", None)
    if filename:
        real = os.path.realpath(filename)
        if any(real.startswith(d + os.sep) for d in _installed_dirs()):
            return True
        if "site-packages" in real.split(os.sep) or "dist-packages" in real.split(os.sep):
            return True
        # A file outside the installation (next to the script, in the notebook's folder, an editable
        # checkout) is copied, even when some distribution happens to ship a module of that name.
        return False
    return top in distributions()


def import_path(obj: Any) -> tuple[str, str] | None:
    """``(module, qualname)`` when ``obj`` is importable from an installed module under that path.

    The shortest public path wins (``torch.nn.Linear`` rather than ``torch.nn.modules.linear.Linear``);
    classes made by ``workbench.transform`` are not importable (they are made again when loading).

    >>> import json
    >>> import_path(json.dumps)
    ('json', 'dumps')
    """
    if not isinstance(obj, (type, types.FunctionType, types.BuiltinFunctionType)) and \
            not callable(obj):
        return None
    if isinstance(obj, type) and "_wb_base" in vars(obj):
        return None
    module_name = getattr(obj, "__module__", None)
    if not isinstance(module_name, str) or not is_installed_module(module_name):
        return None
    module = sys.modules.get(module_name)
    if module is None:
        return None
    candidates = []
    qualname = getattr(obj, "__qualname__", None)
    if isinstance(qualname, str) and "<" not in qualname:
        candidates.append(qualname)
    simple = getattr(obj, "__name__", None)
    if isinstance(simple, str) and simple not in candidates:
        candidates.append(simple)
    parts = module_name.split(".")
    for depth in range(1, len(parts) + 1):
        prefix = ".".join(parts[:depth])
        prefix_module = sys.modules.get(prefix)
        if prefix_module is None:
            continue
        for qual in candidates:
            found: Any = prefix_module
            for part in qual.split("."):
                found = getattr(found, part, _NOT_FOUND)
                if found is _NOT_FOUND:
                    break
            if found is obj:
                return prefix, qual
    return None
