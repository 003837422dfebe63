"""``manifest.json``: what a bundle is, where its definitions came from, and the hash of every file.

A manifest holds the format version, creation time, the versions of Python, torch and workbench
that wrote it, the pipeline's structure (the :func:`workbench.display.describe` tree), the origin
of every definition in ``source.py``, the requirements and, for every other file, its size and
sha256. :func:`verify` checks all of it and names the first missing, truncated, edited or
unexpected file.

>>> FORMAT, FORMAT_VERSION
('workbench-bundle', 1)
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .errors import IntegrityError

__all__ = ["FORMAT", "FORMAT_VERSION", "MANIFEST", "SOURCE", "REQUIREMENTS", "build", "write", "read",
           "verify", "requirements", "sha256_file"]

FORMAT = "workbench-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SOURCE = "source.py"
REQUIREMENTS = "requirements.txt"
_CHUNK = 1 << 22


_CHUNKED_ABOVE = 1 << 24


def _chunk_hashes(path: Path, chunk: int = _CHUNK) -> list[str]:
    """sha256 of each ``chunk``-byte piece of the file, computed on all cores (hashlib releases the GIL).

    Large files (weights) also record these in the manifest, so that loading can verify them in
    parallel instead of hashing one long stream; together they cover every byte.
    """
    size = path.stat().st_size
    fd = os.open(path, os.O_RDONLY)
    try:
        def one(offset: int) -> str:
            return hashlib.sha256(os.pread(fd, chunk, offset)).hexdigest()

        with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
            return list(pool.map(one, range(0, size, chunk)))
    finally:
        os.close(fd)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        while True:
            chunk = f.read(_CHUNK)
            if not chunk:
                break
            digest.update(chunk)
    return digest.hexdigest()


def requirements(top_level_modules: set[str]) -> list[str]:
    """``dist==version`` lines for the distributions providing these modules (stdlib left out)."""
    import importlib.metadata as md
    import sys

    from .installed import distributions as _distributions

    dists: set[str] = {"workbench", "torch", "safetensors"}
    for top in top_level_modules:
        if top in sys.stdlib_module_names or top in sys.builtin_module_names:
            continue
        dists.update(_distributions().get(top, []))
    lines = []
    for dist in sorted(dists, key=str.lower):
        try:
            lines.append(f"{dist}=={md.version(dist)}")
        except md.PackageNotFoundError:
            continue
    return lines


def build(root: Path, *, structure: dict[str, Any], definitions: list[dict[str, Any]],
          requirement_lines: list[str]) -> dict[str, Any]:
    """The manifest for the files now under ``root`` (everything except the manifest itself)."""
    import torch

    from .. import __version__

    files = {}
    for path in sorted(_walk(root)):
        rel = path.relative_to(root).as_posix()
        if rel == MANIFEST:
            continue
        size = path.stat().st_size
        if size > _CHUNKED_ABOVE:  # the whole-file hash on its own thread, the chunk hashes beside it
            with ThreadPoolExecutor(max_workers=1) as pool:
                whole = pool.submit(sha256_file, path)
                chunks = _chunk_hashes(path)
                files[rel] = {"sha256": whole.result(), "size": size, "chunks": {"size": _CHUNK, "sha256": chunks}}
        else:
            files[rel] = {"sha256": sha256_file(path), "size": size}
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "versions": {"workbench": __version__, "python": platform.python_version(), "torch": torch.__version__},
        "entry": SOURCE,
        "structure": structure,
        "definitions": definitions,
        "requirements": requirement_lines,
        "files": files,
    }


def write(root: Path, manifest: dict[str, Any]) -> None:
    with open(root / MANIFEST, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")


def _walk(root: Path) -> list[Path]:
    out = []
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            out.append(Path(dirpath) / name)
    return out


def read(root: Path) -> dict[str, Any]:
    """The parsed manifest of the bundle at ``root``; IntegrityError when it is missing or malformed."""
    root = Path(root)
    if not root.exists():
        raise IntegrityError(f"no bundle at {root}: the path does not exist")
    if not root.is_dir():
        raise IntegrityError(f"{root} is not a bundle: bundles are directories")
    path = root / MANIFEST
    if not path.is_file():
        raise IntegrityError(f"bundle {root} has no {MANIFEST}: missing file {MANIFEST}")
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except (ValueError, UnicodeDecodeError) as exc:
        raise IntegrityError(f"bundle {root}: {MANIFEST} is not valid JSON (edited or truncated?): {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise IntegrityError(f"bundle {root}: {MANIFEST} is not a workbench bundle manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IntegrityError(f"bundle {root}: format version {manifest.get('format_version')!r} is not supported "
                             f"(this workbench reads version {FORMAT_VERSION})")
    if not isinstance(manifest.get("files"), dict) or SOURCE not in manifest["files"]:
        raise IntegrityError(f"bundle {root}: {MANIFEST} does not list the bundle's files")
    return manifest


def _check_one(root: Path, rel: str, entry: dict[str, Any]) -> None:
    path = root / rel
    if not path.is_file():
        raise IntegrityError(f"bundle {root}: missing file {rel}")
    size = path.stat().st_size
    if size != entry["size"]:
        what = "truncated" if size < entry["size"] else "changed size"
        raise IntegrityError(f"bundle {root}: file {rel} is {what} ({size} bytes, expected {entry['size']})")
    chunks = entry.get("chunks")
    if chunks is not None:
        if _chunk_hashes(path, chunks["size"]) != chunks["sha256"]:
            raise IntegrityError(f"bundle {root}: file {rel} was modified (sha256 does not match the manifest)")
        return
    if sha256_file(path) != entry["sha256"]:
        raise IntegrityError(f"bundle {root}: file {rel} was modified (sha256 does not match the manifest)")


def verify(root: Path, manifest: dict[str, Any], *, only: set[str] | None = None,
           skip: set[str] = frozenset()) -> None:  # type: ignore[assignment]
    """Check sizes and hashes of the listed files, and that no unlisted file was added."""
    root = Path(root)
    files = manifest["files"]
    if only is None:
        listed = set(files) | {MANIFEST}
        for path in _walk(root):
            rel = path.relative_to(root).as_posix()
            if rel not in listed:
                raise IntegrityError(f"bundle {root}: unexpected file {rel} (not in the manifest)")
    for rel in sorted(files):
        if (only is not None and rel not in only) or rel in skip:
            continue
        _check_one(root, rel, files[rel])


def verify_in_background(root: Path, manifest: dict[str, Any], names: set[str]) -> "Future[None]":
    """Verify ``names`` on a worker thread (hashing releases the GIL), to overlap with loading."""
    pool = ThreadPoolExecutor(max_workers=1)
    future = pool.submit(verify, root, manifest, only=names)
    pool.shutdown(wait=False)
    return future
