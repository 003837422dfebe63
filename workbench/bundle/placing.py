"""Putting a finished bundle in place: durable files, a final move that never loses a bundle, leftovers.

A save writes its bundle into a hidden directory ``.NAME.tmp-<random>`` beside the target and holds an
exclusive ``flock`` on that directory while it works. When the bundle is complete:

- every file and directory in it is fsynced (:func:`sync_tree`), so a power loss after ``save``
  returns cannot leave empty or short files;
- it is moved to the target in one step (:func:`place`). On Linux this is ``renameat2``: with
  ``RENAME_NOREPLACE`` when the target must not exist (a bundle that appeared meanwhile, say from a
  concurrent save, is never replaced: the save fails with ``FileExistsError``), and with
  ``RENAME_EXCHANGE`` when replacing, which swaps old and new atomically, so the target path always
  holds a complete bundle, the old or the new, whatever moment the process is killed at. Readers that
  opened the old bundle keep reading the old one. The parent directory is then fsynced.
- Elsewhere (or on a file system without ``renameat2``) the fallback is ``os.rename``: a new bundle
  never replaces a non-empty directory (POSIX ``rename`` refuses), and replacing takes two renames:
  the old bundle to ``.NAME.old-<random>`` (locked), then the new one in. A kill between the two
  leaves the old bundle as ``.NAME.old-*``; the next save to that path puts it back first.

:func:`clean_leftovers` runs at the start of every save: directories ``.NAME.tmp-*``/``.NAME.old-*``
whose lock is free belong to saves that were killed; they are removed (or restored, see above) and
reported in a :class:`~workbench.bundle.errors.BundleWarning` with their sizes.

>>> RENAME_NOREPLACE, RENAME_EXCHANGE
(1, 2)
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import shutil
import sys
import uuid
import warnings
from pathlib import Path
from typing import Callable, Iterator

from .errors import BundleWarning

__all__ = ["RENAME_NOREPLACE", "RENAME_EXCHANGE", "staging", "sync_tree", "place", "clean_leftovers",
           "has_renameat2"]

RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
_AT_FDCWD = -100


class _Unsupported(Exception):
    """``renameat2`` is not available here (another OS, an old C library, or the file system refuses it)."""


def _libc_renameat2() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


_RENAMEAT2 = _libc_renameat2()


def has_renameat2() -> bool:
    """Whether the atomic no-replace and exchange moves are available (Linux with glibc 2.28 or later)."""
    return _RENAMEAT2 is not None


def _renameat2(src: Path, dst: Path, flags: int) -> None:
    if _RENAMEAT2 is None:
        raise _Unsupported
    if _RENAMEAT2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), flags) == 0:
        return
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        raise _Unsupported
    raise OSError(err, os.strerror(err), str(src), None, str(dst))


def _lock(path: Path, *, wait: bool) -> int | None:
    """An fd holding an exclusive flock on directory ``path``; None when another process holds it."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextlib.contextmanager
def staging(target: Path) -> Iterator[Path]:
    """A new locked hidden directory beside ``target``; removed on error, unlocked on exit.

    Between ``mkdir`` and ``flock`` the new directory is unlocked, and a concurrent save's
    :func:`clean_leftovers` may take it for a killed save's and remove it; the lock is then on a
    removed directory, which this notices, and it starts again under a new name.
    """
    while True:
        tmp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:10]}"
        tmp.mkdir()
        try:
            fd = _lock(tmp, wait=True)
        except FileNotFoundError:
            continue
        if _is_at(fd, tmp):
            break
        os.close(fd)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        os.close(fd)


def _is_at(fd: int, path: Path) -> bool:
    """Whether the directory open as ``fd`` is still the one at ``path``."""
    try:
        at = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (at.st_dev, at.st_ino) == (held.st_dev, held.st_ino)


def _fsync(path: Path, directory: bool) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_tree(root: Path) -> None:
    """fsync every file under ``root``, then every directory (deepest first), then ``root`` itself."""
    for dirpath, _, filenames in os.walk(root, topdown=False):
        for name in filenames:
            _fsync(Path(dirpath) / name, False)
        _fsync(Path(dirpath), True)


def place(tmp: Path, target: Path, *, replace: bool, is_bundle: Callable[[Path], bool]) -> None:
    """Move the complete bundle ``tmp`` to ``target`` (see the module docstring); fsync the parent.

    ``replace=False``: ``FileExistsError`` when anything is at ``target`` by the time of the move.
    ``replace=True``: an existing bundle is swapped out and removed; anything that is not a bundle
    (``is_bundle`` says) is left in place and ``FileExistsError`` raised.
    """
    try:
        _place_renameat2(tmp, target, replace, is_bundle)
    except _Unsupported:
        _place_fallback(tmp, target, replace, is_bundle)
    _fsync(target.parent, True)


def _exists(path: Path) -> bool:
    return os.path.lexists(path)


def _appeared(target: Path) -> FileExistsError:
    return FileExistsError(errno.EEXIST, f"{target} appeared while the bundle was being written (another save?); "
                                         "it was not replaced and the new bundle was discarded", str(target))


def _not_a_bundle(target: Path) -> FileExistsError:
    return FileExistsError(errno.EEXIST, f"{target} exists and is not a workbench bundle; refusing to replace it",
                           str(target))


def _place_renameat2(tmp: Path, target: Path, replace: bool, is_bundle: Callable[[Path], bool]) -> None:
    if replace:
        try:
            _renameat2(tmp, target, RENAME_EXCHANGE)
        except FileNotFoundError:
            pass  # the target went away meanwhile: a plain no-replace move below
        else:
            if not is_bundle(tmp):  # something else was put there meanwhile: swap it back, keep it
                _renameat2(tmp, target, RENAME_EXCHANGE)
                raise _not_a_bundle(target)
            shutil.rmtree(tmp, ignore_errors=True)
            return
    try:
        _renameat2(tmp, target, RENAME_NOREPLACE)
    except FileExistsError:
        raise _appeared(target) from None


def _place_fallback(tmp: Path, target: Path, replace: bool, is_bundle: Callable[[Path], bool]) -> None:
    if replace and _exists(target):
        if not is_bundle(target):
            raise _not_a_bundle(target)
        old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:10]}"
        fd = _lock(target, wait=True)
        try:
            os.rename(target, old)
            try:
                _rename_no_replace(tmp, target)
            except BaseException:
                os.rename(old, target)
                raise
        finally:
            os.close(fd)  # type: ignore[arg-type]
        shutil.rmtree(old, ignore_errors=True)
        return
    _rename_no_replace(tmp, target)


def _rename_no_replace(tmp: Path, target: Path) -> None:
    if _exists(target) and not (target.is_dir() and not target.is_symlink() and not any(target.iterdir())):
        raise _appeared(target)
    try:
        os.rename(tmp, target)  # POSIX refuses to replace a non-empty directory; Windows any existing path
    except OSError as exc:
        if exc.errno in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR, errno.EISDIR):
            raise _appeared(target) from None
        raise


def _size(path: Path) -> int:
    total = 0
    for dirpath, _, filenames in os.walk(path):
        for name in filenames:
            with contextlib.suppress(OSError):
                total += os.lstat(Path(dirpath) / name).st_size
    return total


def clean_leftovers(target: Path, is_bundle: Callable[[Path], bool]) -> list[str]:
    """Remove what killed saves to ``target`` left behind (restoring a displaced bundle); describe each.

    Only directories named ``.NAME.tmp-*`` or ``.NAME.old-*`` whose flock is free are touched: a save
    in progress holds its lock. A :class:`BundleWarning` lists what was done.
    """
    parent = target.parent if str(target.parent) else Path(".")
    prefixes = (f".{target.name}.tmp-", f".{target.name}.old-")
    try:
        names = sorted(os.listdir(parent))
    except OSError:
        return []
    done: list[str] = []
    for name in names:
        if not name.startswith(prefixes):
            continue
        path = parent / name
        try:
            fd = _lock(path, wait=False)
        except OSError:
            continue  # gone meanwhile, or not a directory: not ours
        if fd is None:
            continue  # a save in progress
        try:
            size = _size(path)
            if name.startswith(prefixes[1]) and not _exists(target) and is_bundle(path):
                with contextlib.suppress(OSError):
                    _rename_no_replace(path, target)
                    done.append(f"restored the previous bundle from {name} ({size:,} bytes)")
                    continue
            shutil.rmtree(path, ignore_errors=True)
            done.append(f"removed {name} ({size:,} bytes)")
        finally:
            os.close(fd)
    if done:
        warnings.warn(f"saving {target}: cleaned up after interrupted saves: " + "; ".join(done),
                      BundleWarning, stacklevel=3)
    return done
