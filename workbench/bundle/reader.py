"""``load``: verify a bundle's files, then run its source to rebuild the pipeline.

Loading executes ``source.py`` — load only bundles you trust, and use ``workbench info BUNDLE`` to
read one without running anything. Every file's size and sha256 are checked against the manifest
first; weights are hashed on a worker thread while the source rebuilds the pipeline, and the result
is only returned once every check has passed. Weights and data are read without pickle.

>>> pl = load("model.wb")  # doctest: +SKIP
"""

from __future__ import annotations

import itertools
import os
import sys
import types
from pathlib import Path
from typing import Any

from . import manifest as _manifest
from .artifacts import WEIGHTS
from .errors import IntegrityError
from .runtime import BundleRuntime

__all__ = ["load"]

_counter = itertools.count(1)


def load(path: str | os.PathLike[str]) -> Any:
    """The pipeline saved in the bundle at ``path``.

    Raises :class:`IntegrityError` naming any missing, truncated, edited or unexpected file.
    """
    root = Path(path)
    manifest = _manifest.read(root)
    big = {WEIGHTS} if WEIGHTS in manifest["files"] else set()
    _manifest.verify(root, manifest, skip=big)
    pending = _manifest.verify_in_background(root, manifest, big) if big else None
    try:
        pipeline = _execute(root, manifest)
    finally:
        if pending is not None:
            pending.result()  # raises IntegrityError for a bad weights file
    return pipeline


def _execute(root: Path, manifest: dict[str, Any]) -> Any:
    source_path = (root / _manifest.SOURCE).resolve()
    text = source_path.read_text(encoding="utf-8")
    digest = manifest["files"][_manifest.SOURCE]["sha256"][:12]
    name = f"workbench_bundle_{digest}_{next(_counter)}"
    module = types.ModuleType(name)
    module.__file__ = str(source_path)
    module.__dict__["_bundle"] = BundleRuntime(root.resolve())
    sys.modules[name] = module
    try:
        import cloudpickle

        cloudpickle.register_pickle_by_value(module)  # DataLoader workers started by spawn need it
    except (ImportError, ValueError):
        pass
    try:
        code = compile(text, str(source_path), "exec", dont_inherit=True)
        exec(code, module.__dict__)
    except IntegrityError:
        raise
    except Exception as exc:
        exc.add_note(f"workbench: while running the source of bundle {root}")
        raise
    if "pipeline" not in module.__dict__:
        raise IntegrityError(f"bundle {root}: {_manifest.SOURCE} does not define `pipeline`")
    return module.__dict__["pipeline"]
