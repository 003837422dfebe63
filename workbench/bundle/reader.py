"""``load``: read a bundle once, verify it, then run its source to rebuild the pipeline.

Loading executes ``source.py``: load only bundles you trust (like ``torch.load`` without
``weights_only``), and use ``workbench info BUNDLE`` to read one without running anything. Every
file is read exactly once (:mod:`.snapshot`) and checked against the manifest's size and sha256;
the source that runs and the tensors that are built are those very bytes. Large files are hashed on
worker threads while the source runs, and the pipeline is returned only once every check has passed.
Weights and data are read without pickle, into the process's own memory: a loaded pipeline does not
change when the files change afterwards.

Verification detects damage (a truncated copy, a bit flip, a stray edit), not deliberate tampering:
whoever can edit the files can also rewrite the manifest. To be sure a bundle is the one you
checked, pin the manifest's sha256 (printed by ``workbench info``) and pass it as ``expect=``.

>>> pl = load("model.wb")                                 # doctest: +SKIP
>>> pl = load("model.wb", expect="3f0c...64 hex digits")  # doctest: +SKIP
"""

from __future__ import annotations

import itertools
import linecache
import os
import sys
import types
import warnings
from pathlib import Path
from typing import Any

from . import manifest as _manifest
from . import snapshot as _snapshot
from .errors import BundleWarning, IntegrityError
from .runtime import BundleRuntime

__all__ = ["load"]

_counter = itertools.count(1)


def load(path: str | os.PathLike[str], *, expect: str | None = None) -> Any:
    """The pipeline saved in the bundle at ``path``. **This runs the bundle's code: load only bundles you trust.**

    Raises :class:`IntegrityError` naming any missing, truncated, edited or unexpected file, or
    when ``expect`` (a manifest sha256, as ``workbench info`` prints it) does not match. Warns
    (:class:`BundleWarning`) when the bundle was written by another Python version.
    """
    root = Path(path)
    snap = _snapshot.read(root, load=True)
    try:
        _snapshot.check_digest(expect, snap)
        _warn_python(snap)
        pipeline = _execute(snap)
    finally:
        if snap.pending is not None:
            snap.pending.result()  # raises IntegrityError for a damaged large file
    return pipeline


def _written_by(snap: _snapshot.Snapshot) -> str | None:
    version = snap.manifest.get("versions", {}).get("python")
    return ".".join(version.split(".")[:2]) if isinstance(version, str) else None


def _warn_python(snap: _snapshot.Snapshot) -> None:
    written = _written_by(snap)
    here = ".".join(map(str, sys.version_info[:2]))
    if written is not None and written != here:
        warnings.warn(f"bundle {snap.root} was written by Python {written}; this is Python {here}. Its source "
                      f"may not compile or may behave differently: load it with Python {written}.",
                      BundleWarning, stacklevel=3)


def _execute(snap: _snapshot.Snapshot) -> Any:
    root = snap.root
    source_path = str(root.resolve() / _manifest.SOURCE)
    try:
        text = bytes(snap.files[_manifest.SOURCE]).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise IntegrityError(f"bundle {root}: {_manifest.SOURCE} is not UTF-8 text ({exc.reason})") from None
    # tracebacks show the text that ran, not whatever the file holds later
    linecache.cache[source_path] = (len(text), None, text.splitlines(keepends=True), source_path)
    digest = snap.manifest["files"][_manifest.SOURCE]["sha256"][:12]
    name = f"workbench_bundle_{digest}_{next(_counter)}"
    module = types.ModuleType(name)
    module.__file__ = source_path
    module.__dict__["_bundle"] = BundleRuntime(root.resolve(), snap.files,
                                               snap.pending.result if snap.pending is not None else None)
    sys.modules[name] = module
    try:
        import cloudpickle

        cloudpickle.register_pickle_by_value(module)  # DataLoader workers started by spawn need it
    except (ImportError, ValueError):
        pass
    try:
        code = compile(text, source_path, "exec", dont_inherit=True)
        exec(code, module.__dict__)
    except IntegrityError:
        raise
    except Exception as exc:
        written = _written_by(snap)
        here = ".".join(map(str, sys.version_info[:2]))
        if isinstance(exc, SyntaxError) and written is not None and written != here:
            exc.add_note(f"workbench: bundle {root} was written by Python {written}; this is Python {here}")
        exc.add_note(f"workbench: while running the source of bundle {root}")
        raise
    if "pipeline" not in module.__dict__:
        raise IntegrityError(f"bundle {root}: {_manifest.SOURCE} does not define `pipeline`")
    return module.__dict__["pipeline"]
