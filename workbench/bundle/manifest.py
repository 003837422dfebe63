"""``manifest.json``: what a bundle is, where its definitions came from, and the hash of every file.

A manifest holds the format version, creation time, the versions of Python, torch and workbench
that wrote it, the pipeline's structure (the :func:`workbench.display.describe` tree), the origin
of every definition in ``source.py``, the requirements and, for every other file, its size and
sha256. :func:`parse` checks a manifest's shape; :mod:`.snapshot` checks the files against it.

>>> FORMAT, FORMAT_VERSION
('workbench-bundle', 1)
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .errors import IntegrityError

__all__ = ["FORMAT", "FORMAT_VERSION", "MANIFEST", "SOURCE", "REQUIREMENTS", "CHUNK", "build", "write", "parse",
           "requirements", "sha256_file"]

FORMAT = "workbench-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SOURCE = "source.py"
REQUIREMENTS = "requirements.txt"
_CHUNK = 1 << 22
CHUNK = _CHUNK  # the only chunk size a manifest may give


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


_HEX = frozenset("0123456789abcdef")
_MAX_DEPTH = 200  # nesting of the stored structure tree; real pipelines have a few levels


def _is_digest(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 64 and set(value) <= _HEX


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse(raw: bytes, where: str) -> dict[str, Any]:
    """The manifest in ``raw`` after checking its shape; :class:`IntegrityError` naming what is wrong.

    Every field that tools read is checked for its type, the chunk size must be the one ``save``
    writes, and nesting is bounded: a crafted manifest is refused with a message, never a traceback.

    >>> parse(b'{"format": "workbench-bundle"}', "b")
    Traceback (most recent call last):
    ...
    workbench.errors.IntegrityError: bundle b: manifest.json has no valid format_version (expected 1, found None)
    """
    try:
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise IntegrityError(f"bundle {where}: {MANIFEST} is not valid JSON (edited or truncated?): {exc}") from None
    except RecursionError:
        raise IntegrityError(f"bundle {where}: {MANIFEST} is nested too deeply to be a workbench manifest") from None

    def bad(problem: str) -> IntegrityError:
        return IntegrityError(f"bundle {where}: {MANIFEST} {problem}")

    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise bad("is not a workbench bundle manifest")
    if data.get("format_version") != FORMAT_VERSION or not _is_int(data.get("format_version")):
        raise bad(f"has no valid format_version (expected {FORMAT_VERSION}, found {data.get('format_version')!r})"
                  if not _is_int(data.get("format_version")) else
                  f"has format version {data['format_version']!r}, which is not supported "
                  f"(this workbench reads version {FORMAT_VERSION})")
    files = data.get("files")
    if not isinstance(files, dict) or SOURCE not in files:
        raise bad("does not list the bundle's files")
    for rel, entry in files.items():
        if not isinstance(entry, dict) or not _is_digest(entry.get("sha256")) or not _is_int(entry.get("size")) \
                or entry["size"] < 0:
            raise bad(f"has an invalid entry for file {rel!r} (needs a sha256 digest and a size)")
        chunks = entry.get("chunks")
        if chunks is not None:
            if not isinstance(chunks, dict) or chunks.get("size") != _CHUNK or not _is_int(chunks.get("size")):
                raise bad(f"gives file {rel!r} a chunk size other than the {_CHUNK:,} bytes save writes")
            hashes = chunks.get("sha256")
            if not isinstance(hashes, list) or len(hashes) != -(-entry["size"] // _CHUNK) \
                    or not all(_is_digest(h) for h in hashes):
                raise bad(f"has an invalid chunk list for file {rel!r}")
    for key, kind in (("versions", dict), ("structure", dict), ("definitions", list), ("requirements", list),
                      ("created", str), ("python_requires", str), ("entry", str)):
        if key in data and not isinstance(data[key], kind):
            raise bad(f"field {key!r} must be {'an object' if kind is dict else 'a list' if kind is list else 'text'}")
    if any(not isinstance(v, str) for v in data.get("versions", {}).values()) or \
            any(not isinstance(r, str) for r in data.get("requirements", [])):
        raise bad("has versions or requirements that are not text")
    for d in data.get("definitions", []):
        if not isinstance(d, dict) or not all(isinstance(d.get(k, ""), str) for k in ("name", "kind", "qualname",
                                                                                       "module")) \
                or not isinstance(d.get("origin", {}), dict):
            raise bad("has a malformed definitions entry")
    if "structure" in data:
        _check_structure(data["structure"], bad)
    return data


def _check_structure(root: Any, bad: Any) -> None:
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > _MAX_DEPTH:
            raise bad(f"has a structure nested more than {_MAX_DEPTH} levels deep")
        if not isinstance(node, dict) or not isinstance(node.get("children", []), list):
            raise bad("has a malformed structure tree")
        if any(not isinstance(node.get(k, ""), str) for k in ("label", "kind", "stage")) \
                or not _is_int(node.get("params", 0)):
            raise bad("has a malformed structure tree")
        stack.extend((child, depth + 1) for child in node.get("children", []))
