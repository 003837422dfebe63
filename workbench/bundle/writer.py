"""``save``: capture a pipeline, write the bundle next to its target, check it, then move it in place.

Nothing is written until the capture has succeeded; the bundle is then written to a hidden temporary
directory beside the target, fsynced, and moved into place in one atomic step only when complete
(and, with ``check``, only after a fresh interpreter has reproduced the live outputs); see
:mod:`.placing`. Any error removes the temporary directory, so a failed save leaves nothing behind
and never touches an existing bundle. Only a directory whose manifest parses as a workbench
bundle's is ever replaced.

>>> save(pl, "model.wb", check=[x1, x2])  # doctest: +SKIP
PosixPath('model.wb')
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any, Iterable

from .._text import shorten
from . import manifest as _manifest
from . import placing
from . import snapshot as _snapshot
from .artifacts import write_all
from .capture import Capture
from .errors import BundleError, CaptureError, CheckError
from .report import MAX_DATA_BYTES, CaptureReport, HomePathWarning, LargeDataWarning, format_bytes

__all__ = ["save", "dependency_source", "digest", "capture", "capture_report", "export_output", "check_target",
           "is_bundle"]

_DISK_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def is_bundle(path: Path) -> bool:
    """Whether ``path`` is a directory whose ``manifest.json`` parses as a workbench bundle's."""
    try:
        _snapshot.read(path, verify=False)
    except (BundleError, OSError):
        return False
    return True


def check_target(path: str | os.PathLike[str], overwrite: bool) -> Path:
    """``path`` as a Path if a bundle may be saved there; else the error ``save`` would raise.

    ``FileExistsError`` when something is there and ``overwrite`` is false, or when it is not a
    bundle; ``NotADirectoryError`` when a parent is a file.
    """
    target = Path(path)
    if os.path.lexists(target):
        if not overwrite:
            raise FileExistsError(errno.EEXIST, f"{target} already exists; pass overwrite=True to replace it",
                                  str(target))
        empty_dir = target.is_dir() and not target.is_symlink() and not any(target.iterdir())
        if not empty_dir and not is_bundle(target):
            raise FileExistsError(errno.EEXIST, f"{target} exists and is not a workbench bundle; refusing to "
                                                "replace it", str(target))
    for parent in target.parents:
        if os.path.lexists(parent):
            if not parent.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, f"cannot save a bundle at {target}: {parent} is not a "
                                                        "directory", str(parent))
            break
    return target


def capture(pipeline: Any) -> Capture:
    """Capture ``pipeline`` (raises :class:`CaptureError` naming what cannot be saved).

    Where the code reads only some attributes of a global object, only those are stored; if the
    same object is also needed whole elsewhere, the capture is redone storing it whole everywhere
    (one object, as in the live pipeline).
    """
    from ..pipeline import Transform

    if not isinstance(pipeline, Transform):
        raise TypeError(f"save() needs a workbench pipeline or transform; got {type(pipeline).__name__}")
    whole: set[int] = set()
    while True:
        cap = Capture(whole)
        cap.capture(pipeline)
        both = cap.narrowed_whole()
        if not both - whole:
            return cap
        whole |= both


def capture_report(pipeline: Any) -> CaptureReport:
    """What a bundle of ``pipeline`` would store besides code: each global value, its size and readers.

    >>> print(capture_report(pl).text())  # doctest: +SKIP
    global             type   size    read by
    wine.{target_names}  Bunch  180 B   step 'lambda i: wine.target_names[i]' (function <lambda>)
    """
    return capture(pipeline).report()


def _check_sizes(report: CaptureReport, max_data_bytes: int | None, strict: bool) -> None:
    if max_data_bytes is None:
        return
    for entry in report.large(max_data_bytes):
        message = (f"{entry.describe()} adds {format_bytes(entry.data_bytes)} of data to the bundle, above "
                   f"max_data_bytes={max_data_bytes:,}; if the pipeline does not need all of it, make the code "
                   "read only what it needs (e.g. `names = data.target_names` as its own global)")
        if strict:
            raise CaptureError(message + " (strict=True refuses; raise max_data_bytes to allow it)")
        warnings.warn(message, LargeDataWarning, stacklevel=3)


def dependency_source(pipeline: Any) -> str:
    """The exact ``source.py`` a bundle of ``pipeline`` would contain (nothing is written).

    >>> print(dependency_source(pl))  # doctest: +SKIP
    """
    return capture(pipeline).source()


def save(pipeline: Any, path: str | os.PathLike[str], *, overwrite: bool = False,
         check: Iterable[Any] | None = None, max_data_bytes: int | None = MAX_DATA_BYTES,
         strict: bool = False, report: bool = False) -> Path:
    """Save ``pipeline`` as a bundle directory at ``path`` and return the path.

    ``overwrite=True`` replaces an existing bundle (atomically: the path holds the old bundle until
    the new one is complete, then the new one). ``check=[inputs...]`` loads the new bundle in a fresh
    interpreter and requires ``infer_apply`` to give exactly the live outputs on each input; on any
    difference the bundle is removed and :class:`CheckError` names the input and the difference.
    Leftovers of earlier saves to ``path`` that were killed are removed first (a ``BundleWarning``
    says what was removed). The sha256 of the new manifest, which pins every file, is
    ``workbench.bundle.digest(path)``; ``workbench info`` prints it too.

    Every global value the pipeline's code reads is listed in the manifest (``"globals"``: name,
    type, size, the step that reads it; see :func:`capture_report`), and ``report=True`` prints that
    table. A global adding more than ``max_data_bytes`` of data (default 10 MB; ``None``: no limit)
    gives a :class:`LargeDataWarning` naming it, the step that reads it and its size; with
    ``strict=True`` saving refuses instead (:class:`CaptureError`) and writes nothing.
    """
    if export_output(path):
        print(f"workbench: not saved: {path} is the output of the running `workbench export`, which saves it "
              "itself at the end (replacing an existing bundle only with its own --overwrite)", file=sys.stderr)
        return Path(path)
    placing.clean_leftovers(Path(path), is_bundle)  # first: it may put back a bundle a killed save displaced
    target = check_target(path, overwrite)
    inputs = list(check) if check is not None else None
    expected = None
    if inputs is not None:
        from ..apply import infer_apply

        expected = [infer_apply(pipeline, x) for x in inputs]
    cap = capture(pipeline)
    source = cap.source()
    stored = cap.report()
    _check_sizes(stored, max_data_bytes, strict)
    for text, where in cap.ledger.home_paths.items():
        warnings.warn(f"the bundle stores the text {text!r}, a path in your home directory, as data ({where}); "
                      "anyone you share the bundle with will see it", HomePathWarning, stacklevel=2)
    from ..display import describe

    structure = describe(pipeline)
    parent = target.parent if str(target.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        with placing.staging(target) as tmp:
            (tmp / _manifest.SOURCE).write_text(source, encoding="utf-8")
            write_all(cap.data, tmp)
            reqs = _manifest.requirements(cap.records.imported_modules | _data_modules(cap))
            python = ".".join(map(str, sys.version_info[:2]))
            (tmp / _manifest.REQUIREMENTS).write_text(
                f"# python {sys.version.split()[0]} (requires python=={python}.*)\n" + "\n".join(reqs) + "\n",
                encoding="utf-8")
            data = _manifest.build(tmp, structure=structure, definitions=[d.as_json() for d in cap.records.definitions],
                                   requirement_lines=reqs)
            data["python_requires"] = f"=={python}.*"
            data["globals"] = stored.as_json()
            if pipeline.annotations:
                from ..annotations import to_json

                data["annotations"] = to_json(pipeline.annotations)
            _manifest.write(tmp, data)
            placing.sync_tree(tmp)
            if inputs is not None:
                _check(tmp, inputs, expected)
            if overwrite and target.is_dir() and not target.is_symlink() and not any(target.iterdir()):
                target.rmdir()  # an empty directory stands in for nothing: replace it like a missing target
            placing.place(tmp, target, replace=overwrite, is_bundle=is_bundle)
    except OSError as exc:
        if exc.errno in _DISK_FULL:
            raise OSError(exc.errno, f"{exc.strerror} while writing bundle {target}; nothing was written "
                                     "(an existing bundle there is unchanged)", exc.filename) from exc
        raise
    if report:
        print(stored.text())
    return target


def digest(path: str | os.PathLike[str]) -> str:
    """The sha256 of the bundle's ``manifest.json``: pin it, and check with ``load(path, expect=...)``.

    >>> digest(save(pl, "model.wb"))  # doctest: +SKIP
    '3f0c9a...'
    """
    return _snapshot.read(path, verify=False).digest


def export_output(target: str | os.PathLike[str]) -> bool:
    """Whether ``target`` is the output of a ``workbench export`` running this notebook (see workbench.export)."""
    from ..export import EXPORT_OUT_ENV

    guarded = os.environ.get(EXPORT_OUT_ENV)
    return bool(guarded) and os.path.abspath(target) == os.path.abspath(guarded)


def _data_modules(cap: Capture) -> set[str]:
    out = set()
    if cap.data.arrays:
        out.add("numpy")
    if cap.data.frames:
        out.update({"pandas", "numpy"})
    return out


_CHECK_SCRIPT = r"""
import json, pickle, sys
import workbench
from workbench.bundle.compare import difference
inputs, expected = pickle.load(open(sys.argv[2], "rb"))
pl = workbench.load(sys.argv[1])
report = []
for i, (x, want) in enumerate(zip(inputs, expected)):
    try:
        got = pl.infer_apply(x)
    except Exception as exc:
        import traceback
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        report.append({"input": i, "problem": f"raised {type(exc).__name__}: {exc} "
                                              f"(at {frame.filename}:{frame.lineno})"})
        continue
    problem = difference(want, got)
    if problem:
        report.append({"input": i, "problem": problem})
json.dump(report, open(sys.argv[3], "w"))
"""


def _check(bundle: Path, inputs: list[Any], expected: list[Any]) -> None:
    """Load ``bundle`` in a fresh interpreter and compare ``infer_apply`` outputs exactly."""
    import cloudpickle

    with tempfile.TemporaryDirectory(prefix="workbench-check-") as work:
        payload = Path(work) / "payload.pkl"
        report_path = Path(work) / "report.json"
        try:
            payload.write_bytes(cloudpickle.dumps((inputs, expected)))
        except Exception as exc:
            raise BundleError(f"check: the inputs or live outputs cannot be sent to the checking process ({exc})") from exc
        proc = subprocess.run([sys.executable, "-c", _CHECK_SCRIPT, str(bundle.resolve()), str(payload), str(report_path)],
                              cwd=work, capture_output=True, text=True)
        if proc.returncode != 0 or not report_path.exists():
            tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
            raise CheckError(f"check: the bundle failed to load or run in a fresh interpreter:\n{tail}")
        import json

        report = json.loads(report_path.read_text())
    if report:
        lines = [f"input {r['input']} ({_short(inputs[r['input']])}): {r['problem']}" for r in report]
        raise CheckError("check: the reloaded bundle differs from the live pipeline:\n  " + "\n  ".join(lines))


def _short(x: Any) -> str:
    return shorten(repr(x), 60, "...")
