"""Which modules a bundle imports (standard library, installed distributions) and which it copies.

>>> is_installed_module("json"), is_installed_module("__main__")
(True, False)
"""

from __future__ import annotations

import os
import sys
import sysconfig

__all__ = ["is_installed_module", "distributions"]

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
