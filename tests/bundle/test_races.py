"""Bundles under crashes and races, with real processes: SIGKILL at random points of overwriting saves,
two saves racing for one path, readers loading while another process overwrites, files rewritten or
truncated under a loaded pipeline, a full disk, and saves killed mid-way cleaned up by the next one.

Each scenario runs in a driver process that builds its pipelines once and forks the savers and
readers (cheap), so the whole module stays bounded in time; everything lives under ``tmp_path``.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch

import workbench
from workbench.bundle import BundleWarning, placing

pytestmark = pytest.mark.slow

COMMON = r'''
import json, os, random, signal, sys, time, warnings
import torch, workbench
from workbench import transform

ELEMENTS = int(os.environ.get("WB_ELEMENTS", str(1 << 20)))  # a 4 MB tensor by default

def make(version):
    table = torch.full((ELEMENTS,), float(version))
    code = {1: 1.0, 2: 2.0}[version]

    def step(x):
        return float(table[:4].sum()) * 1000 + code + x  # table and code of one version: 4001 + x, 8002 + x

    return transform(step)

VALID = {4001.0, 8002.0}

def wait_for(path, timeout=60):
    end = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > end:
            raise TimeoutError(path)
        time.sleep(0.001)
'''


def _drive(tmp_path: Path, body: str, timeout: float = 120, env: dict | None = None) -> dict:
    script = tmp_path / "driver.py"
    script.write_text(COMMON + body)
    result = tmp_path / "result.json"
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run([sys.executable, str(script), str(tmp_path), str(result)], capture_output=True, text=True,
                          timeout=timeout, cwd=tmp_path, env=full_env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(result.read_text())


def test_two_saves_racing_for_one_path_never_lose_a_bundle(tmp_path):
    """Without overwrite, exactly one of two simultaneous saves wins; the other is told, not silently replaced."""
    data = _drive(tmp_path, r'''
work, out = sys.argv[1], sys.argv[2]
pipelines = {1: make(1), 2: make(2)}
rounds = []
for r in range(3):
    target = os.path.join(work, f"race{r}.wb")
    go = os.path.join(work, f"go{r}")
    kids = []
    for version in (1, 2):
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            wait_for(go)
            try:
                workbench.save(pipelines[version], target)
                message = "ok"
            except FileExistsError as exc:
                message = "exists: " + str(exc)
            os.write(write, message.encode())
            os._exit(0)
        os.close(write)
        kids.append((pid, read))
    open(go, "w").close()
    results = []
    for pid, read in kids:
        os.waitpid(pid, 0)
        results.append(os.read(read, 4096).decode())
    pl = workbench.load(target)
    rounds.append({"results": results, "output": pl.infer_apply(0.0)})
json.dump(rounds, open(out, "w"))
''')
    for round_ in data:
        assert sorted(r == "ok" for r in round_["results"]) == [False, True], round_
        loser = next(r for r in round_["results"] if r != "ok")
        assert "appeared while the bundle was being written" in loser or "already exists" in loser
        assert round_["output"] in (4001.0, 8002.0)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_sigkill_at_random_points_of_overwriting_saves_never_leaves_the_path_without_a_bundle(tmp_path):
    data = _drive(tmp_path, r'''
from workbench.bundle import snapshot
work, out = sys.argv[1], sys.argv[2]
target = os.path.join(work, "model.wb")
pipelines = {1: make(1), 2: make(2)}
workbench.save(pipelines[1], target)
random.seed(12)
rounds = []
start = time.monotonic()
workbench.save(pipelines[2], target, overwrite=True)
one_save = time.monotonic() - start
for r in range(12):
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        k = 0
        while True:
            workbench.save(pipelines[1 + k % 2], target, overwrite=True)
            if k == 0:
                os.write(write, b"x")
            k += 1
    os.close(write)
    os.read(read, 1)
    time.sleep(random.uniform(0, 1.5 * one_save))
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    snap = snapshot.read(target)  # verifies every file; raises when there is no complete bundle
    leftovers = sorted(n for n in os.listdir(work) if n.startswith(".model.wb."))
    rounds.append({"ok": True, "leftovers": leftovers})
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    workbench.save(pipelines[1], target, overwrite=True)
json.dump({"rounds": rounds, "one_save": one_save, "warnings": [str(w.message) for w in caught],
           "after": sorted(n for n in os.listdir(work) if n.startswith(".model.wb.")),
           "output": workbench.load(target).infer_apply(0.0)}, open(out, "w"))
''')
    assert all(r["ok"] for r in data["rounds"])
    assert data["after"] == [] and data["output"] == 4001.0
    last = data["rounds"][-1]["leftovers"]
    if last:  # the kill left a staging directory: the next save removed it and said so, with its size
        text = " ".join(data["warnings"])
        assert all(name in text for name in last) and "bytes" in text, (last, text)


def test_readers_during_overwrites_get_the_old_or_the_new_bundle_never_an_error(tmp_path):
    data = _drive(tmp_path, r'''
work, out = sys.argv[1], sys.argv[2]
target = os.path.join(work, "model.wb")
pipelines = {1: make(1), 2: make(2)}
workbench.save(pipelines[1], target)
stop = os.path.join(work, "stop")
writer = os.fork()
if writer == 0:
    k = 1
    while not os.path.exists(stop):
        workbench.save(pipelines[1 + k % 2], target, overwrite=True)
        k += 1
    os._exit(0)
readers = []
for i in range(2):
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        stats = {"loads": 0, "wrong": 0, "errors": []}
        end = time.monotonic() + 6
        while time.monotonic() < end:
            try:
                value = workbench.load(target).infer_apply(0.0)
            except Exception as exc:
                stats["errors"].append(f"{type(exc).__name__}: {exc}")
                continue
            stats["loads"] += 1
            stats["wrong"] += value not in VALID
        os.write(write, json.dumps(stats).encode())
        os._exit(0)
    os.close(write)
    readers.append((pid, read))
results = []
for pid, read in readers:
    chunks = []
    while True:
        chunk = os.read(read, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.waitpid(pid, 0)
    results.append(json.loads(b"".join(chunks)))
open(stop, "w").close()
os.waitpid(writer, 0)
json.dump(results, open(out, "w"))
''')
    loads = sum(r["loads"] for r in data)
    assert loads >= 10, data
    assert [r["errors"][:3] for r in data] == [[], []]
    assert sum(r["wrong"] for r in data) == 0


def test_a_loaded_pipeline_does_not_change_when_its_files_are_rewritten_or_truncated(tmp_path):
    data = _drive(tmp_path, r'''
work, out = sys.argv[1], sys.argv[2]
nn = transform(torch.nn)
torch.manual_seed(0)
pl = transform(torch.as_tensor) >> nn.Linear(4, 3)
target = os.path.join(work, "model.wb")
workbench.save(pl, target)
loaded = workbench.load(target)
x = [1.0, 2.0, 3.0, 4.0]
before = loaded.infer_apply(x).tolist()
weights = os.path.join(target, "weights.safetensors")
with open(weights, "r+b") as f:  # in place: the same file, other bytes
    size = f.seek(0, 2)
    f.seek(size - 48)
    f.write(b"\x7f" * 48)
rewritten = loaded.infer_apply(x).tolist()
os.truncate(weights, 0)
truncated = loaded.infer_apply(x).tolist()
json.dump({"before": before, "rewritten": rewritten, "truncated": truncated,
           "live": pl.infer_apply(x).tolist()}, open(out, "w"))
''')
    assert data["before"] == data["live"]
    assert data["rewritten"] == data["before"] and data["truncated"] == data["before"]


def test_a_full_disk_names_the_bundle_and_leaves_nothing(tmp_path):
    data = _drive(tmp_path, r'''
import resource
work, out = sys.argv[1], sys.argv[2]
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))  # files may not exceed 1 MB: writing fails
target = os.path.join(work, "big.wb")
try:
    workbench.save(make(1), target)
    message, kind = "saved", None
except OSError as exc:
    message, kind = str(exc), type(exc).__name__
json.dump({"message": message, "kind": kind, "left": sorted(n for n in os.listdir(work) if "big.wb" in n)},
          open(out, "w"))
''')
    assert data["kind"] == "OSError" and "while writing bundle" in data["message"]
    assert str(tmp_path / "big.wb") in data["message"]
    assert data["left"] == []


def test_leftovers_of_a_killed_save_are_removed_by_the_next_save_but_a_live_save_is_left_alone(tmp_path):
    target = tmp_path / "m.wb"
    holder = subprocess.Popen([sys.executable, "-c", r'''
import sys, time
from pathlib import Path
from workbench.bundle import placing
with placing.staging(Path(sys.argv[1])) as tmp:
    (tmp / "weights.safetensors").write_bytes(b"\0" * 123456)
    print("ready", flush=True)
    time.sleep(120)
''', str(target)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        staged = [p.name for p in tmp_path.iterdir() if p.name.startswith(".m.wb.tmp-")]
        assert len(staged) == 1
        with warnings.catch_warnings():
            warnings.simplefilter("error", BundleWarning)  # a save in progress is not a leftover
            workbench.save(workbench.transform(len), target)
        assert (tmp_path / staged[0]).is_dir()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with pytest.warns(BundleWarning, match=rf"removed {staged[0]} \(123,456 bytes\)"):
        workbench.save(workbench.transform(len), target, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.wb"]


def test_an_empty_leftover_is_removed_however_young(tmp_path):
    """A kill inside the removal of a swapped-out bundle leaves an empty, unlocked, just-modified directory."""
    target = workbench.save(workbench.transform(len), tmp_path / "m.wb")
    (tmp_path / ".m.wb.tmp-0123456789").mkdir()
    with pytest.warns(BundleWarning, match=r"removed \.m\.wb\.tmp-0123456789 \(0 bytes\)"):
        workbench.save(workbench.transform(str), target, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.wb"]


def test_a_staging_directory_removed_before_it_was_locked_is_made_again(tmp_path, monkeypatch):
    """A concurrent save's clean-up may remove a staging directory between its mkdir and its lock."""
    removed = []
    lock = placing._lock

    def remove_first_then_lock(path, *, wait):
        if not removed:
            removed.append(path.name)
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)  # opened before the removal, like a racing save
            path.rmdir()
            fcntl.flock(fd, fcntl.LOCK_EX)
            return fd
        return lock(path, wait=wait)

    monkeypatch.setattr(placing, "_lock", remove_first_then_lock)
    with placing.staging(tmp_path / "m.wb") as tmp:
        assert tmp.is_dir() and tmp.name != removed[0]
        (tmp / "x").write_text("kept")
    assert (tmp / "x").read_text() == "kept"


def test_a_bundle_displaced_by_a_killed_fallback_save_is_put_back(tmp_path):
    """Without renameat2, a replacing save takes two renames; a kill between them leaves `.NAME.old-*`."""
    target = workbench.save(workbench.transform(len), tmp_path / "m.wb")
    os.rename(target, tmp_path / ".m.wb.old-0123456789")  # what a kill between the two renames leaves
    with pytest.raises(workbench.bundle.IntegrityError, match="does not exist"):
        workbench.load(target)
    with pytest.warns(BundleWarning, match=r"restored the previous bundle from \.m\.wb\.old-0123456789"):
        with pytest.raises(FileExistsError, match="already exists"):
            workbench.save(workbench.transform(str), target)  # the restored bundle is not overwritten
    assert workbench.load(target).infer_apply("abc") == 3


def test_files_and_directories_are_fsynced_before_the_move_and_the_parent_after(tmp_path, monkeypatch):
    events: list[tuple[str, str]] = []
    real_fsync, real_place = os.fsync, placing._place_renameat2

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        return real_fsync(fd)

    def place(tmp, target, *args):
        events.append(("move", str(tmp)))
        return real_place(tmp, target, *args)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(placing, "_place_renameat2", place)
    torch.manual_seed(0)
    pl = workbench.transform(torch.as_tensor) >> workbench.transform(torch.nn.Linear(3, 2))
    out = workbench.save(pl, tmp_path / "b")
    move = next(i for i, e in enumerate(events) if e[0] == "move")
    staged = events[move][1]
    synced_before = {e[1] for e in events[:move] if e[0] == "fsync"}
    for path in out.rglob("*"):
        assert str(path).replace(str(out), staged) in synced_before, path
    assert staged in synced_before
    assert ("fsync", str(tmp_path)) in events[move:]


def test_the_final_move_uses_renameat2_here():
    assert placing.has_renameat2() == sys.platform.startswith("linux")
