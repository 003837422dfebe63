"""Reading a bundle once: every file's bytes, confined to the bundle, checked against the manifest.

:func:`read` opens the bundle directory once and reads everything relative to that open directory:
``manifest.json``, then each listed file exactly once. The bytes that are hashed are the bytes that
are used (loading runs that very ``source.py`` text and builds tensors from that very weights
buffer), so a bundle replaced while it is read can never mix two versions. Files are opened one path
component at a time without following symbolic links, so nothing outside the bundle is read, sized or
printed: absolute or ``..`` paths in the manifest, symbolic links (to files or directories), files
that are not regular files, and unexpected files or directories are all refused by name.

If the bundle at the path is replaced while it is being read (an overwriting save elsewhere) and the
old copy disappears under the reader, reading starts again on the new one: a reader gets the old or
the new bundle, never an error.

>>> snap = read("model.wb")          # doctest: +SKIP
>>> snap.digest, sorted(snap.files)  # doctest: +SKIP
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from . import manifest as _manifest
from .errors import IntegrityError

__all__ = ["Snapshot", "read", "check_digest"]

_RETRY_SECONDS = 5.0


@dataclass
class Snapshot:
    """What one bundle held when it was read.

    ``files`` maps each listed path to its bytes (``bytes``, or for the large chunk-hashed files a
    64-byte-aligned ``torch.uint8`` tensor when read for loading); ``digest`` is the sha256 of the
    ``manifest.json`` bytes, which pins every file (the manifest holds their hashes).
    ``pending`` is the hashing of the large files when it was left to finish in the background;
    ``problem`` what verification found, when reading with ``tolerate=True``.
    """

    root: Path
    manifest: dict[str, Any]
    digest: str
    files: dict[str, Any] = field(default_factory=dict)
    pending: Future[None] | None = None
    problem: str | None = None
    raw: bytes = b""  # the manifest.json bytes themselves


def check_digest(expect: str | None, snap: Snapshot) -> None:
    """IntegrityError unless the manifest's sha256 is ``expect`` (nothing to check when it is None)."""
    if expect is None:
        return
    wanted = expect.strip().lower()
    if len(wanted) != 64 or set(wanted) - set("0123456789abcdef"):
        raise ValueError(f"expect must be a sha256 digest (64 hex digits), not {expect!r}")
    if wanted != snap.digest:
        raise IntegrityError(f"bundle {snap.root}: manifest sha256 is {snap.digest}, expected {wanted}: "
                             "this is not the bundle that was pinned")


def read(path: str | os.PathLike[str], *, load: bool = False, keep: frozenset[str] | None = frozenset(),
         verify: bool = True, tolerate: bool = False) -> Snapshot:
    """The snapshot of the bundle at ``path`` (see the module docstring).

    ``load=True`` keeps every file's bytes (large files as aligned tensors that are read and hashed
    in the background, chunks in parallel: wait on ``pending`` before using them); otherwise files
    are only hashed, except those in ``keep`` (``None``: all of them, as bytes). ``verify=False`` reads and checks just the manifest. ``tolerate=True`` returns a snapshot with
    ``problem`` set when the manifest is readable but a file is not as it says.
    """
    root = Path(path)
    deadline = time.monotonic() + _RETRY_SECONDS
    while True:
        seen: list[Any] = []
        try:
            return _read_once(root, seen, load=load, keep=keep, verify=verify)
        except (IntegrityError, OSError) as exc:
            if seen and _replaced(root, seen[0]) and time.monotonic() < deadline:
                time.sleep(0.005)
                continue
            if tolerate and len(seen) > 1 and isinstance(exc, IntegrityError):
                snap = seen[1]
                snap.problem = str(exc)
                snap.files.clear()
                return snap
            raise


def _displaced(root: Path) -> str:
    try:
        old = sorted(n for n in os.listdir(root.parent) if n.startswith(f".{root.name}.old-"))
    except OSError:
        return ""
    if not old:
        return ""
    return (f" (a save to it was interrupted: the previous bundle is at {root.parent / old[-1]}; the next save to "
            "this path puts it back)")


def _replaced(root: Path, ident: tuple[int, int]) -> bool:
    try:
        st = os.stat(root)
    except FileNotFoundError:
        return True  # between the two renames of a replacing save without renameat2
    return (st.st_dev, st.st_ino) != ident


def _check_rel(root: Path, rel: str) -> tuple[str, ...]:
    parts = tuple(rel.split("/"))
    if not rel or rel.startswith("/") or "\\" in rel or "\0" in rel or any(p in ("", ".", "..") for p in parts) \
            or PurePosixPath(rel).is_absolute() or rel == _manifest.MANIFEST:
        raise IntegrityError(f"bundle {root}: {_manifest.MANIFEST} lists the path {rel!r}, which is not a plain "
                             "path inside the bundle (absolute, '..', or empty parts); refusing it")
    return parts


def _open_dir(dirfd: int, name: str, root: Path, rel: str) -> int:
    try:
        return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dirfd)
    except FileNotFoundError:
        raise IntegrityError(f"bundle {root}: missing file {rel}") from None
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise IntegrityError(f"bundle {root}: {rel} is not inside a plain directory of the bundle "
                                 "(a symbolic link or a file where a directory should be)") from None
        raise


def _open_file(rootfd: int, parts: tuple[str, ...], root: Path) -> int:
    rel = "/".join(parts)
    fds = []
    try:
        dirfd = rootfd
        for name in parts[:-1]:
            dirfd = _open_dir(dirfd, name, root, rel)
            fds.append(dirfd)
        try:
            fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dirfd)
        except FileNotFoundError:
            raise IntegrityError(f"bundle {root}: missing file {rel}") from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise IntegrityError(f"bundle {root}: {rel} is a symbolic link; bundles hold only regular files") \
                    from None
            raise
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise IntegrityError(f"bundle {root}: {rel} is not a regular file")
        return fd
    finally:
        for d in fds:
            os.close(d)


def _walk(rootfd: int, root: Path) -> tuple[set[str], set[str]]:
    """``(files, directories)`` under the bundle, as relative paths; refuses links and special files."""
    files: set[str] = set()
    dirs: set[str] = set()
    stack: list[tuple[int, str]] = [(os.dup(rootfd), "")]
    try:
        while stack:
            fd, prefix = stack.pop()
            try:
                with os.scandir(fd) as entries:
                    for entry in entries:
                        rel = prefix + entry.name
                        if entry.is_symlink():
                            raise IntegrityError(f"bundle {root}: {rel} is a symbolic link; bundles hold only "
                                                 "regular files and directories")
                        if entry.is_dir(follow_symlinks=False):
                            dirs.add(rel)
                            stack.append((_open_dir(fd, entry.name, root, rel), rel + "/"))
                        elif entry.is_file(follow_symlinks=False):
                            files.add(rel)
                        else:
                            raise IntegrityError(f"bundle {root}: {rel} is not a regular file")
            finally:
                os.close(fd)
    finally:
        for fd, _ in stack:
            os.close(fd)
    return files, dirs


def _memory(size: int) -> Any:
    """A writable ``torch.uint8`` buffer of ``size`` bytes in the process's own memory (64-byte aligned
    by torch's allocator): not a mapping of the file, which can change or vanish without affecting it."""
    import torch

    return torch.empty(size, dtype=torch.uint8)


def _read_all(fd: int, size: int, rel: str, root: Path, *, aligned: bool) -> Any:
    if aligned:
        buffer = _memory(size)
        view = memoryview(buffer.numpy()) if size else memoryview(b"")
        out: Any = buffer
    else:
        data = bytearray(size)
        view = memoryview(data)
        out = data
    done = 0
    while done < size:
        n = os.preadv(fd, [view[done:]], done)
        if n == 0:
            raise IntegrityError(f"bundle {root}: file {rel} is truncated ({done} bytes, expected {size})")
        done += n
    if os.pread(fd, 1, size):
        raise IntegrityError(f"bundle {root}: file {rel} changed size while it was read")
    return out if aligned else bytes(data)


def _hash_stream(fd: int, entry: dict[str, Any]) -> bool:
    """Whether the file matches ``entry``, hashed piece by piece without keeping it."""
    chunks = entry.get("chunks")
    whole = hashlib.sha256()
    got = []
    offset = 0
    step = _manifest.CHUNK
    while offset < entry["size"]:
        piece = os.pread(fd, step, offset)
        if not piece:
            return False
        if chunks is not None:
            got.append(hashlib.sha256(piece).hexdigest())
        else:
            whole.update(piece)
        offset += len(piece)
    return got == chunks["sha256"] if chunks is not None else whole.hexdigest() == entry["sha256"]


def _plain(data: Any) -> Any:
    """Something hashlib reads: bytes as they are, a tensor buffer through its numpy view."""
    return data.numpy() if hasattr(data, "numpy") else data


def _modified(root: Path, rel: str) -> IntegrityError:
    return IntegrityError(f"bundle {root}: file {rel} was modified (sha256 does not match the manifest)")


def _read_once(root: Path, seen: list[Any], *, load: bool, keep: frozenset[str] | None, verify: bool) -> Snapshot:
    try:
        rootfd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    except FileNotFoundError:
        raise IntegrityError(f"no bundle at {root}: the path does not exist{_displaced(root)}") from None
    except NotADirectoryError:
        raise IntegrityError(f"{root} is not a bundle: bundles are directories") from None
    try:
        st = os.fstat(rootfd)
        seen.append((st.st_dev, st.st_ino))
        try:
            fd = _open_file(rootfd, (_manifest.MANIFEST,), root)
        except IntegrityError as exc:
            if "missing file" in str(exc):
                raise IntegrityError(f"bundle {root} has no {_manifest.MANIFEST}: missing file "
                                     f"{_manifest.MANIFEST}") from None
            raise
        try:
            raw = _read_all(fd, os.fstat(fd).st_size, _manifest.MANIFEST, root, aligned=False)
        finally:
            os.close(fd)
        manifest = _manifest.parse(raw, str(root))
        snap = Snapshot(root, manifest, hashlib.sha256(raw).hexdigest(), raw=bytes(_plain(raw)))
        seen.append(snap)
        if not verify:
            return snap
        listed = {rel: _check_rel(root, rel) for rel in manifest["files"]}
        present, dirs = _walk(rootfd, root)
        extra = sorted(present - set(listed) - {_manifest.MANIFEST})
        if extra:
            raise IntegrityError(f"bundle {root}: unexpected file {extra[0]} (not in the manifest)")
        needed = {"/".join(parts[:i]) for parts in listed.values() for i in range(1, len(parts))}
        extra = sorted(dirs - needed)
        if extra:
            raise IntegrityError(f"bundle {root}: unexpected directory {extra[0]} (not in the manifest)")
        big: list[tuple[str, int, Any]] = []  # (path, open fd, buffer) of large files read in the background
        try:
            for rel in sorted(listed):
                entry = manifest["files"][rel]
                fd = _open_file(rootfd, listed[rel], root)
                try:
                    size = os.fstat(fd).st_size
                    if size != entry["size"]:
                        what = "truncated" if size < entry["size"] else "changed size"
                        raise IntegrityError(f"bundle {root}: file {rel} is {what} ({size} bytes, expected "
                                             f"{entry['size']})")
                    if not load and keep is not None and rel not in keep:
                        if not _hash_stream(fd, entry):
                            raise _modified(root, rel)
                        continue
                    if entry.get("chunks") is not None and load:
                        buffer = _memory(size)
                        big.append((rel, os.dup(fd), buffer))
                        snap.files[rel] = buffer
                        continue
                    data = _read_all(fd, size, rel, root, aligned=rel.endswith(".safetensors"))
                finally:
                    os.close(fd)
                snap.files[rel] = data
                if hashlib.sha256(_plain(data)).hexdigest() != entry["sha256"]:
                    raise _modified(root, rel)
        except BaseException:
            for _, fd, _ in big:
                os.close(fd)
            raise
        if big:
            snap.pending = _read_later(root, manifest, big)
        return snap
    finally:
        os.close(rootfd)


def _read_later(root: Path, manifest: dict[str, Any], big: list[tuple[str, int, Any]]) -> Future[None]:
    """Read the large files into their buffers and check their chunk hashes, chunks in parallel.

    Each chunk is hashed by the thread that just read it (while it is in the CPU cache); hashing and
    reading release the GIL, so this overlaps with running the source, which waits on the result
    before it first uses one of these buffers.
    """
    step = _manifest.CHUNK

    def one(rel: str, fd: int, view: memoryview, at: int, expected: str) -> None:
        piece = view[at:at + step]
        done = 0
        while done < len(piece):
            n = os.preadv(fd, [piece[done:]], at + done)
            if n == 0:
                raise IntegrityError(f"bundle {root}: file {rel} is truncated (it shrank while it was read)")
            done += n
        if hashlib.sha256(piece).hexdigest() != expected:
            raise _modified(root, rel)

    def run() -> None:
        try:
            with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
                jobs = []
                for rel, fd, buffer in big:
                    view = memoryview(buffer.numpy()) if buffer.numel() else memoryview(b"")
                    hashes = manifest["files"][rel]["chunks"]["sha256"]
                    jobs += [pool.submit(one, rel, fd, view, i * step, h) for i, h in enumerate(hashes)]
                for job in jobs:
                    job.result()
                for rel, fd, buffer in big:
                    if os.pread(fd, 1, buffer.numel()):
                        raise IntegrityError(f"bundle {root}: file {rel} changed size while it was read")
        finally:
            for _, fd, _ in big:
                os.close(fd)

    pool = ThreadPoolExecutor(max_workers=1)
    future = pool.submit(run)
    pool.shutdown(wait=False)
    return future
