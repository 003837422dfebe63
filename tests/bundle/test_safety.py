"""Bundle safety: atomic saves, no silent overwrite, hash checks on load, refusals that name the object."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

import workbench
from workbench import batch, transform, unbatch
from workbench.bundle import CaptureError, CheckError, IntegrityError, dependency_source

OFFSET = 0.5


def shift(x):
    return x + OFFSET


def _pipeline():
    torch.manual_seed(0)
    nn = transform(torch.nn)
    return transform(torch.tensor) >> batch >> nn.Linear(3, 2) >> unbatch >> transform(shift)


def _rehash(bundle: Path, rel: str) -> None:
    """Make the manifest agree with an edited file (to get past integrity checks on purpose)."""
    manifest = json.loads((bundle / "manifest.json").read_text())
    data = (bundle / rel).read_bytes()
    manifest["files"][rel] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    (bundle / "manifest.json").write_text(json.dumps(manifest))


def _siblings(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir())


def test_roundtrip_in_process_and_layout(tmp_path):
    pl = _pipeline()
    out = workbench.save(pl, tmp_path / "b")
    assert out == tmp_path / "b"
    assert (out / "source.py").read_text() == dependency_source(pl)
    names = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert names == ["manifest.json", "requirements.txt", "source.py", "weights.safetensors"]
    loaded = workbench.load(out)
    x = [1.0, 2.0, 3.0]
    assert torch.equal(loaded.infer_apply(x), pl.infer_apply(x))
    # nothing in a bundle is a pickle
    for p in out.rglob("*"):
        if p.is_file():
            assert not p.read_bytes().startswith(b"\x80"), p


def test_manifest_records_versions_hashes_and_origins(tmp_path):
    out = workbench.save(_pipeline(), tmp_path / "b")
    m = json.loads((out / "manifest.json").read_text())
    assert m["format"] == "workbench-bundle" and m["format_version"] == 1
    assert set(m["versions"]) == {"workbench", "python", "torch"}
    for rel, entry in m["files"].items():
        assert hashlib.sha256((out / rel).read_bytes()).hexdigest() == entry["sha256"]
    shift_def = next(d for d in m["definitions"] if d["name"] == "shift")
    assert shift_def["origin"]["path"] == os.path.relpath(__file__)  # relative to the project, not absolute
    assert shift_def["origin"]["line"] == shift.__code__.co_firstlineno
    assert m["structure"]["kind"] == "compose" and len(m["structure"]["children"]) == 5
    reqs = (out / "requirements.txt").read_text()
    assert f"torch=={torch.__version__}" in reqs and "# python 3." in reqs


def test_existing_bundle_is_not_overwritten_silently(tmp_path):
    target = workbench.save(_pipeline(), tmp_path / "b")
    before = (target / "source.py").read_text()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        workbench.save(transform(len), target)
    assert (target / "source.py").read_text() == before
    workbench.save(transform(len), target, overwrite=True)
    assert workbench.load(target).infer_apply("abcd") == 4
    assert _siblings(target) == ["b"]  # no temporary or backup directories left


def test_non_bundle_directory_is_never_replaced(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "keep.txt").write_text("precious")
    with pytest.raises(FileExistsError, match="not a workbench bundle"):
        workbench.save(transform(len), tmp_path / "docs", overwrite=True)
    assert (tmp_path / "docs" / "keep.txt").read_text() == "precious"


LOCK = threading.Lock()


def locked_step(x):
    with LOCK:
        return x


def test_refusal_names_object_and_line_and_writes_nothing(tmp_path):
    with pytest.raises(CaptureError) as info:
        workbench.save(transform(locked_step), tmp_path / "b")
    message = str(info.value)
    assert "locked_step" in message and "LOCK" in message and "lock" in message
    assert f"{__file__}:{locked_step.__code__.co_firstlineno}" in message
    assert list(tmp_path.iterdir()) == []


def test_source_unavailable_is_refused_by_name(tmp_path):
    ns: dict = {}
    exec(compile("def ghost(x):\n    return x\n", "<generated>", "exec"), ns)
    with pytest.raises(CaptureError, match=r"function 'ghost'.*source is not available.*<generated>:1"):
        workbench.save(transform(ns["ghost"]), tmp_path / "b")
    assert list(tmp_path.iterdir()) == []


def test_edited_file_is_detected(tmp_path, monkeypatch):
    module = tmp_path / "edited_helpers.py"
    module.write_text("def step(x):\n    return x + 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    mod = importlib.import_module("edited_helpers")
    module.write_text("def step(x):\n    return x + 2\n")  # edited after it was imported
    with pytest.raises(CaptureError, match=r"'step'.*no longer matches"):
        workbench.save(transform(mod.step), tmp_path / "b")
    assert not (tmp_path / "b").exists()


def test_generator_global_is_refused(tmp_path):
    global STREAM
    STREAM = (i for i in range(3))

    def take(x):
        return x + next(STREAM)

    with pytest.raises(CaptureError, match=r"generator.*\n.*STREAM"):
        workbench.save(transform(take), tmp_path / "b")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("damage, message", [
    ("edit-source", r"source.py was modified"),
    ("truncate-weights", r"weights.safetensors is truncated"),
    ("remove-weights", r"missing file weights.safetensors"),
    ("remove-manifest", r"missing file manifest.json"),
    ("extra-file", r"unexpected file extra.py"),
    ("corrupt-manifest", r"manifest.json is not valid JSON"),
    ("edit-weights", r"weights.safetensors was modified"),
])
def test_load_names_damaged_files(tmp_path, damage, message):
    out = workbench.save(_pipeline(), tmp_path / "b")
    if damage == "edit-source":
        (out / "source.py").write_text((out / "source.py").read_text().replace("0.5", "0.6"))
    elif damage == "truncate-weights":
        data = (out / "weights.safetensors").read_bytes()
        (out / "weights.safetensors").write_bytes(data[:-7])
    elif damage == "remove-weights":
        (out / "weights.safetensors").unlink()
    elif damage == "remove-manifest":
        (out / "manifest.json").unlink()
    elif damage == "extra-file":
        (out / "extra.py").write_text("print('hi')\n")
    elif damage == "corrupt-manifest":
        (out / "manifest.json").write_text((out / "manifest.json").read_text()[:-20])
    elif damage == "edit-weights":
        data = bytearray((out / "weights.safetensors").read_bytes())
        data[-1] ^= 0x01
        (out / "weights.safetensors").write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match=message):
        workbench.load(out)


@pytest.mark.slow
def test_check_passes_and_keeps_the_bundle(tmp_path):
    out = workbench.save(_pipeline(), tmp_path / "b", check=[[1.0, 2.0, 3.0], [0.0, 0.0, -1.0]])
    assert (out / "manifest.json").is_file()


def jitter(x):
    return x + torch.rand(1)  # a different value on every call: cannot be reproduced


@pytest.mark.slow
def test_check_failure_names_input_and_removes_bundle(tmp_path):
    with pytest.raises(CheckError, match=r"input 0 \(tensor\(\[1\.\]\)\): output: tensors differ"):
        workbench.save(transform(jitter), tmp_path / "b", check=[torch.tensor([1.0])])
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_check_failure_keeps_the_existing_bundle(tmp_path):
    target = workbench.save(transform(len), tmp_path / "b")
    with pytest.raises(CheckError):
        workbench.save(transform(jitter), target, overwrite=True, check=[torch.tensor([1.0])])
    assert workbench.load(target).infer_apply("abc") == 3
    assert _siblings(target) == ["b"]


def _workbench_cli() -> str:
    return str(Path(sys.executable).with_name("workbench"))


@pytest.mark.slow
def test_info_shows_everything_and_executes_nothing(tmp_path):
    out = workbench.save(_pipeline(), tmp_path / "b")
    marker = tmp_path / "EXECUTED"
    source = (out / "source.py").read_text()
    (out / "source.py").write_text(f"open({str(marker)!r}, 'w').close()\n" + source)
    _rehash(out, "source.py")
    proc = subprocess.run([_workbench_cli(), "info", str(out)], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert not marker.exists()
    text = proc.stdout
    assert "all 3 verified" in text and "Linear(in_features=3, out_features=2, bias=True)" in text
    assert "def shift(x):" in text and "shift" in text and f"{os.path.relpath(__file__)}:{shift.__code__.co_firstlineno}" in text
    assert f"torch=={torch.__version__}" in text
    workbench.load(out)  # loading does run the source: that is what the marker shows
    assert marker.exists()


@pytest.mark.slow
def test_info_exit_codes(tmp_path):
    out = workbench.save(_pipeline(), tmp_path / "b")
    (out / "source.py").write_text("# edited\n")
    proc = subprocess.run([_workbench_cli(), "info", str(out)], capture_output=True, text=True)
    assert proc.returncode == 3 and "file source.py is truncated" in proc.stderr
    proc = subprocess.run([_workbench_cli(), "info", str(tmp_path / "nope")], capture_output=True, text=True)
    assert proc.returncode == 3 and "does not exist" in proc.stderr
    proc = subprocess.run([_workbench_cli(), "info"], capture_output=True, text=True)
    assert proc.returncode == 2


def test_info_json_prints_the_manifest(tmp_path, capsys):
    from workbench.cli import main

    out = workbench.save(_pipeline(), tmp_path / "b")
    assert main(["info", "--json", str(out)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["files"].keys() == {"source.py", "requirements.txt", "weights.safetensors"}


def test_weights_are_standard_safetensors_with_aligned_tensors(tmp_path):
    from safetensors.torch import load_file

    torch.manual_seed(0)
    nn = transform(torch.nn)
    model = nn.Sequential(nn.Linear(3, 5), nn.BatchNorm1d(5), nn.Embedding(7, 3))
    out = workbench.save(transform(torch.as_tensor) >> batch >> model[0] >> model[1] >> unbatch, tmp_path / "b")
    raw = (out / "weights.safetensors").read_bytes()
    header_len = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + header_len])
    real = {k: v for k, v in header.items() if not k.startswith("__")}
    assert len(real) == 2 + 5  # Linear weight/bias; BatchNorm weight/bias/running stats/count
    for name, info in real.items():
        assert (8 + header_len + info["data_offsets"][0]) % 64 == 0, name
    plain = load_file(str(out / "weights.safetensors"))  # any safetensors reader can read it
    assert torch.equal(plain["linear.weight"], model[0].weight.detach())


def _make_pair():
    state = {"n": 0}
    total = [0]

    def add(x):
        total[0] += x
        return total[0] + len(state)

    def peek(x):
        return total[0] + x

    return add, peek


def test_shared_closure_cell_is_refused(tmp_path):
    add, peek = _make_pair()
    with pytest.raises(CaptureError, match=r"closure variable 'total' is shared"):
        workbench.save(transform(add) >> transform(peek), tmp_path / "b")
    assert list(tmp_path.iterdir()) == []


def test_object_array_is_refused(tmp_path):
    import numpy as np

    global TABLE
    TABLE = np.array([{"a": 1}, None], dtype=object)

    def look(i):
        return TABLE[i]

    with pytest.raises(CaptureError, match=r"ndarray object: it is a numpy array of Python objects.*\n.*TABLE"):
        workbench.save(transform(look), tmp_path / "b")


def test_class_closing_over_function_variables_is_refused(tmp_path):
    def make(k):
        class Scaler:
            def __call__(self, x):
                return x * k
        return Scaler()

    with pytest.raises(CaptureError, match=r"class .*Scaler.*closes over k"):
        workbench.save(transform(make(3)), tmp_path / "b")
