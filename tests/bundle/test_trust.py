"""What a bundle guarantees, item by item: only bundles are replaced, apply modes per call, exact round
trips (or refusals by name) of awkward objects, hostile bundles refused without reading outside them,
escaped output, pinned digests, version warnings and consistent exit codes."""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import workbench
from workbench import batch, transform, unbatch
from workbench.bundle import BundleWarning, CaptureError, IntegrityError
from workbench.cli import main

REPO = Path(__file__).resolve().parents[2]


def _rehash(bundle: Path, rel: str) -> None:
    manifest = json.loads((bundle / "manifest.json").read_text())
    data = (bundle / rel).read_bytes()
    manifest["files"][rel] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    (bundle / "manifest.json").write_text(json.dumps(manifest))


def _edit_manifest(bundle: Path, change) -> None:
    manifest = json.loads((bundle / "manifest.json").read_text())
    change(manifest)
    (bundle / "manifest.json").write_text(json.dumps(manifest))


@pytest.fixture
def bundle(tmp_path):
    torch.manual_seed(0)
    nn = transform(torch.nn)
    return workbench.save(transform(torch.as_tensor) >> batch >> nn.Linear(3, 2) >> unbatch, tmp_path / "b.wb")


# --- 1. only real bundles are replaced ------------------------------------------------------------------


def test_a_folder_with_a_manifest_json_that_is_not_a_bundle_is_never_replaced(tmp_path):
    app = tmp_path / "webapp"
    app.mkdir()
    (app / "manifest.json").write_text('{"name": "my app", "start_url": "/"}')
    (app / "main.js").write_text("console.log('precious')")
    with pytest.raises(FileExistsError, match="not a workbench bundle"):
        workbench.save(transform(len), app, overwrite=True)
    assert (app / "main.js").read_text() == "console.log('precious')"
    from workbench.export import export_notebook

    with pytest.raises(FileExistsError, match="not a bundle"):
        export_notebook(REPO / "notebooks" / "quickstart.ipynb", "classifier", app, overwrite=True)
    assert sorted(p.name for p in app.iterdir()) == ["main.js", "manifest.json"]


# --- 7. apply modes per call across threads ---------------------------------------------------------------


def test_eval_apply_is_not_affected_by_train_apply_running_in_another_thread():
    torch.manual_seed(0)
    nn = transform(torch.nn)
    model = nn.Sequential(torch.nn.Linear(16, 64), torch.nn.Dropout(0.5), torch.nn.Linear(64, 4))
    pl = transform(torch.as_tensor) >> batch >> model >> unbatch
    xs = [torch.randn(16) for _ in range(64)]
    expected = torch.stack(list(pl.eval_apply(xs, batch_size=8)))
    stop = threading.Event()
    trained = [0]

    def train():
        while not stop.is_set():
            for _ in pl.train_apply(xs, batch_size=8):
                trained[0] += 1

    thread = threading.Thread(target=train)
    thread.start()
    differing = 0
    try:
        for _ in range(60):
            got = torch.stack(list(pl.eval_apply(xs, batch_size=8)))
            differing += int((got != expected).any(dim=1).sum())
    finally:
        stop.set()
        thread.join()
    assert trained[0] > 0
    assert differing == 0


# --- 8. fidelity holes: exact round trip or a refusal by name -----------------------------------------------


def _two_lambdas():
    counter = [0]
    return (lambda x: counter.append(x) or len(counter)), (lambda x: len(counter) + x)


def test_two_lambdas_sharing_a_closure_cell_are_refused(tmp_path):
    bump, peek = _two_lambdas()
    with pytest.raises(CaptureError, match=r"closure variable 'counter' is shared with function '_two_lambdas.<locals>.<lambda>'"):
        workbench.save(transform(bump) >> transform(peek), tmp_path / "b")
    assert list(tmp_path.iterdir()) == []


SEEN: dict = {}


def _recorder():
    seen = SEEN

    def record(x):
        seen[x] = True
        return x

    return record


def count_seen(x):
    return len(SEEN)


def test_a_closure_over_a_global_dict_shares_it_with_code_reading_the_global(tmp_path):
    pl = transform(_recorder()) >> transform(count_seen)
    loaded = workbench.load(workbench.save(pl, tmp_path / "b"))
    assert loaded.infer_apply("a") == 1 and loaded.infer_apply("b") == 2  # one dict, as live
    assert SEEN == {}


class ViewBuffer(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(2, 3)
        self.register_buffer("flat", self.lin.weight.detach().view(-1))

    def forward(self, x):
        return self.lin(x) + self.flat.sum()


def test_a_buffer_viewing_a_parameter_still_shares_its_memory_after_loading(tmp_path):
    torch.manual_seed(0)
    layer = ViewBuffer()
    pl = transform(torch.as_tensor) >> transform(layer)
    loaded = workbench.load(workbench.save(pl, tmp_path / "b"))
    x = [1.0, -1.0]
    assert torch.equal(loaded.infer_apply(x), pl.infer_apply(x))
    copy = loaded[1]
    with torch.no_grad():
        copy.lin.weight.add_(1.0)
    assert torch.equal(copy.flat, copy.lin.weight.detach().view(-1))


def test_tensors_overlapping_in_other_ways_are_refused_by_name(tmp_path):
    layer = torch.nn.Linear(4, 4)
    layer.register_buffer("rows", layer.weight.detach()[:, 1:])  # not inside a contiguous stored tensor
    layer.register_buffer("wide", torch.zeros(8, 4))
    layer.weight = torch.nn.Parameter(layer.wide[2:6])
    with pytest.raises(CaptureError, match=r"shares memory with the tensor stored as"):
        workbench.save(transform(layer), tmp_path / "b")


NEGATIVE_NAN = -float("nan")
WHEN = np.datetime64("2024-02-29T12:34:56.789")
THIRD = np.longdouble(1) / np.longdouble(3)


def awkward(x):
    return math.copysign(1.0, NEGATIVE_NAN), WHEN, THIRD, x


def test_negative_nan_datetime64_and_longdouble_globals_round_trip_exactly(tmp_path):
    loaded = workbench.load(workbench.save(transform(awkward), tmp_path / "b"))
    sign, when, third, _ = loaded.infer_apply(0)
    assert sign == -1.0
    assert type(when) is np.datetime64 and when == WHEN and when.dtype == WHEN.dtype
    assert type(third) is np.longdouble and third == THIRD


def test_a_state_dict_pre_hook_is_kept_and_a_kind_of_hook_bundles_do_not_know_is_refused_by_name(tmp_path):
    layer = torch.nn.Linear(2, 2)
    layer.register_state_dict_pre_hook(_note_prefix)
    loaded = workbench.load(workbench.save(transform(torch.tensor) >> transform(layer), tmp_path / "kept"))
    assert len(loaded[1]._state_dict_pre_hooks) == 1  # not dropped silently
    other = torch.nn.Linear(2, 2)
    other._future_hooks = {0: _note_prefix}  # a kind of hook a later torch might add
    with pytest.raises(CaptureError, match=r"Linear object: it has future hooks registered"):
        workbench.save(transform(torch.tensor) >> transform(other), tmp_path / "refused")
    assert not (tmp_path / "refused").exists()


def _note_prefix(module, prefix, keep_vars):
    return None


# --- 9. confinement --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rel", ["/etc/hostname", "../outside.txt", "artifacts/../../outside.txt", "a//b"])
def test_manifest_paths_outside_the_bundle_are_refused(bundle, tmp_path, capsys, rel):
    (tmp_path / "outside.txt").write_text("secret outside the bundle")
    _edit_manifest(bundle, lambda m: m["files"].__setitem__(rel, {"sha256": "0" * 64, "size": 25}))
    with pytest.raises(IntegrityError, match="not a plain path inside the bundle"):
        workbench.load(bundle)
    assert main(["info", str(bundle)]) == 3
    captured = capsys.readouterr()
    assert "secret" not in captured.out + captured.err
    assert "def " not in captured.out  # no source of a damaged bundle


def test_symbolic_links_to_files_and_directories_are_refused(bundle, tmp_path, capsys):
    outside = tmp_path / "requirements-elsewhere.txt"
    shutil.copy(bundle / "requirements.txt", outside)
    (bundle / "requirements.txt").unlink()
    (bundle / "requirements.txt").symlink_to(outside)  # same bytes, same hash: only the link is wrong
    with pytest.raises(IntegrityError, match="requirements.txt is a symbolic link"):
        workbench.load(bundle)
    (bundle / "requirements.txt").unlink()
    shutil.copy(outside, bundle / "requirements.txt")
    workbench.load(bundle)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "x.npy").write_bytes(b"data")
    (bundle / "artifacts").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    _edit_manifest(bundle, lambda m: m["files"].__setitem__("artifacts/x.npy", {
        "sha256": hashlib.sha256(b"data").hexdigest(), "size": 4}))
    with pytest.raises(IntegrityError, match="artifacts is a symbolic link"):
        workbench.load(bundle)
    assert main(["info", str(bundle)]) == 3
    assert "symbolic link" in capsys.readouterr().err


def test_unexpected_directories_are_reported(bundle):
    (bundle / "hidden").mkdir()
    with pytest.raises(IntegrityError, match="unexpected directory hidden"):
        workbench.load(bundle)


# --- 10. control characters --------------------------------------------------------------------------------


def test_info_escapes_control_characters_in_source_and_manifest(bundle, capsys):
    source = bundle / "source.py"
    source.write_text(source.read_text() + "harmless = 1  # \x1b[1A\x1b[2K\u202e hidden\n")
    _rehash(bundle, "source.py")
    _edit_manifest(bundle, lambda m: m["definitions"].append({"name": "evil\x1b]0;title\x07", "kind": "function"}))
    assert main(["info", str(bundle)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\u202e" not in out and "\x07" not in out
    assert "\\x1b[1A\\x1b[2K\\u202e hidden" in out and "evil\\x1b]0;title\\x07" in out


# --- 11. malformed manifests and inputs -------------------------------------------------------------------


@pytest.mark.parametrize("change, message", [
    (lambda m: m["files"]["weights.safetensors"].__setitem__("chunks", {"size": 1, "sha256": []}), "chunk size"),
    (lambda m: m.pop("files"), "does not list the bundle's files"),
    (lambda m: m["files"]["source.py"].__setitem__("size", "12"), "invalid entry for file 'source.py'"),
    (lambda m: m.__setitem__("definitions", {"a": 1}), "field 'definitions' must be a list"),
    (lambda m: m.__setitem__("format_version", "1"), "format_version"),
    (lambda m: m.__setitem__("structure", json.loads('{"children": [' * 300 + ']}' * 300)), "nested more than"),
])
def test_malformed_manifests_exit_3_with_a_message(bundle, capsys, change, message):
    _edit_manifest(bundle, change)
    with pytest.raises(IntegrityError, match=message):
        workbench.load(bundle)
    assert main(["info", str(bundle)]) == 3
    assert message.split("'")[0] in capsys.readouterr().err


def test_a_manifest_nested_beyond_the_parser_exits_3(bundle, capsys):
    (bundle / "manifest.json").write_text('{"format": "workbench-bundle", "x": ' + "[" * 100_000 + "]" * 100_000 + "}")
    assert main(["info", str(bundle)]) == 3
    assert "nested too deeply" in capsys.readouterr().err


def test_predict_inputs_nested_too_deeply_or_with_huge_integers_exit_2(bundle, capsys):
    assert main(["predict", str(bundle), "[" * 100_000 + "]" * 100_000]) == 2
    assert "nested too deeply" in capsys.readouterr().err
    assert main(["predict", str(bundle), "9" * 5000]) == 2
    assert "cannot be decoded" in capsys.readouterr().err


# --- 12. digests ------------------------------------------------------------------------------------------------


def test_info_and_save_give_the_manifest_digest_and_expect_checks_it(bundle, tmp_path, capsys):
    digest = hashlib.sha256((bundle / "manifest.json").read_bytes()).hexdigest()
    assert workbench.bundle.digest(bundle) == digest
    assert main(["info", "--no-source", str(bundle)]) == 0
    assert f"sha256   {digest}" in capsys.readouterr().out
    assert main(["info", "--expect", digest, str(bundle)]) == 0
    capsys.readouterr()
    assert main(["info", "--expect", "0" * 64, str(bundle)]) == 3
    assert "not the bundle that was pinned" in capsys.readouterr().err
    assert main(["info", "--expect", "abc", str(bundle)]) == 2
    workbench.load(bundle, expect=digest.upper())
    with pytest.raises(IntegrityError, match="not the bundle that was pinned"):
        workbench.load(bundle, expect="f" * 64)


def test_load_and_the_readme_say_that_loading_runs_code():
    assert "load only bundles you trust" in workbench.load.__doc__.lower()
    readme = " ".join((REPO / "README.md").read_text().lower().split())
    assert "runs its code" in readme and "only bundles you trust" in readme
    guide = " ".join((REPO / "docs" / "bundles.md").read_text().split())
    assert "detects damage, not deliberate edits" in guide


# --- 13. versions, exit codes ----------------------------------------------------------------------------------


def test_a_bundle_from_another_python_warns_and_a_syntax_error_names_the_version(bundle):
    _edit_manifest(bundle, lambda m: m["versions"].__setitem__("python", "3.99.1"))
    with pytest.warns(BundleWarning, match=r"written by Python 3\.99"):
        workbench.load(bundle)
    source = bundle / "source.py"
    source.write_text(source.read_text() + "match = lambda x: x match\n")
    _rehash(bundle, "source.py")
    _edit_manifest(bundle, lambda m: m["versions"].__setitem__("python", "3.99.1"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BundleWarning)
        with pytest.raises(SyntaxError) as info:
            workbench.load(bundle)
    assert any("written by Python 3.99" in note for note in info.value.__notes__)


def test_the_exit_code_for_a_missing_bundle_is_the_same_in_code_and_docs(tmp_path, capsys):
    assert main(["info", str(tmp_path / "nope.wb")]) == 3
    assert main(["predict", str(tmp_path / "nope.wb"), "1"]) == 3
    cli_doc = (REPO / "docs" / "cli.md").read_text()
    row = next(line for line in cli_doc.splitlines() if line.startswith("| 3 |"))
    assert "no bundle at the path" in row
    assert "bundle path" not in next(line for line in cli_doc.splitlines() if line.startswith("| 2 |"))
    assert "3 no bundle at the path" in " ".join((REPO / "docs" / "bundles.md").read_text().split())


def test_save_to_a_path_under_a_file_names_it(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match=r"is not a directory"):
        workbench.save(transform(len), tmp_path / "file" / "b.wb")


@pytest.mark.kernel
@pytest.mark.slow
def test_pipeline_magic_with_a_bad_save_path_fails_before_binding(tmp_path):
    from tests.tracking._harness import Kernel

    (tmp_path / "file").write_text("x")
    kernel = Kernel()
    try:
        kernel.ok("import workbench\nfrom workbench import transform")
        bad = tmp_path / "file" / "p.wb"
        result = kernel.run(f"%%pipeline p --save {bad}\ntransform(len)")
        assert not result.ok and "is not a directory" in (result.evalue or "") + result.stderr
        assert kernel.json("['p' in globals(), 'p' in workbench.registry.names()]") == [False, False]
        good = tmp_path / "p.wb"
        result = kernel.ok(f"%%pipeline p --save {good}\ntransform(len)")
        assert f"manifest sha256 {workbench.bundle.digest(good)}" in result.stdout
    finally:
        kernel.shutdown()
