"""``workbench info`` executes nothing from a bundle, even one whose source would act when run."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import sys

import pytest

from workbench.bundle import save

from ._cli import call_cli, run_cli

MODULE = '''
from workbench import transform

@transform
def plus_one(x):
    return x + 1

pipeline = plus_one >> transform(lambda x: x * 10)
'''


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    root = tmp_path_factory.mktemp("info")
    (root / "info_pipelines.py").write_text(MODULE)
    spec = importlib.util.spec_from_file_location("info_pipelines", root / "info_pipelines.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["info_pipelines"] = module
    spec.loader.exec_module(module)
    yield save(module.pipeline, root / "plain.wb")
    sys.modules.pop("info_pipelines", None)


def _booby_trap(bundle, target, marker, *, rehash: bool) -> None:
    """Copy ``bundle`` to ``target`` with source that creates ``marker`` when executed."""
    shutil.copytree(bundle, target)
    source = target / "source.py"
    source.write_text(f"open({str(marker)!r}, 'w').write('executed')\n" + source.read_text())
    if rehash:  # a consistent bundle: verification passes, only executing it would create the marker
        manifest = json.loads((target / "manifest.json").read_text())
        data = source.read_bytes()
        manifest["files"]["source.py"] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        (target / "manifest.json").write_text(json.dumps(manifest, indent=1))


@pytest.mark.slow
def test_info_shows_source_of_a_verified_bundle_without_running_it(bundle, tmp_path):
    marker = tmp_path / "marker"
    trapped = tmp_path / "trapped.wb"
    _booby_trap(bundle, trapped, marker, rehash=True)
    result = run_cli("info", trapped, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"open({str(marker)!r}, 'w')" in result.stdout  # the source is shown ...
    assert "plus_one" in result.stdout
    assert not marker.exists()                            # ... and not executed
    # the premise of this test: loading the same bundle does run that line
    ran = run_cli("predict", trapped, "1", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.splitlines() == ["20"] and marker.read_text() == "executed"


@pytest.mark.slow
def test_info_on_a_tampered_bundle_reports_the_file_exits_3_and_runs_nothing(bundle, tmp_path):
    marker = tmp_path / "marker"
    tampered = tmp_path / "tampered.wb"
    _booby_trap(bundle, tampered, marker, rehash=False)
    result = run_cli("info", tampered, cwd=tmp_path)
    assert result.returncode == 3
    assert "file source.py" in result.stderr
    assert not marker.exists()
    missing = call_cli("info", tmp_path / "nowhere.wb")
    assert missing.returncode == 3 and "no bundle at" in missing.stderr


def test_every_command_documents_the_same_exit_codes():
    texts = [call_cli(*args).stdout for args in (("--help",), ("info", "--help"), ("export", "--help"),
                                                  ("predict", "--help"))]
    codes = [text[text.index("exit codes:"):].split("\n\n")[0].strip() for text in texts]
    assert all(code == codes[0] for code in codes)
    assert "3  invalid bundle" in codes[0] and "2  usage error" in codes[0]
    export_help, predict_help = (" ".join(text.split()) for text in texts[2:])
    for phrase in ("--pipeline NAME", "--out PATH", "--check-inputs EXPR", "--timeout S", "--executed FILE"):
        assert phrase in export_help, phrase
    for phrase in ("--file F", "--batch-size N", "JSON line", '"NaN"', "--non-finite"):
        assert phrase in predict_help, phrase


@pytest.mark.slow
def test_the_console_script_is_main():
    script, here = run_cli("--help"), call_cli("--help")
    assert script.returncode == here.returncode == 0, script.stderr
    assert " ".join(script.stdout.split()) == " ".join(here.stdout.split())  # however wide the terminal
    wrong = run_cli("no-such-command")
    assert wrong.returncode == 2 and "invalid choice: 'no-such-command'" in wrong.stderr
