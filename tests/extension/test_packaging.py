"""The extension ships inside the Python package: a wheel carries it as shared data, and the
development install links it, so `jupyter labextension list` shows it enabled either way."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NAME = "workbench-jupyterlab"
BIN = Path(sys.executable).parent


def labextension_list(env: dict[str, str] | None = None) -> str:
    result = subprocess.run([str(BIN / "jupyter"), "labextension", "list"], capture_output=True, text=True,
                            env=env, check=True)
    return result.stdout + result.stderr


@pytest.mark.slow
def test_dev_install_shows_the_extension_enabled():
    listing = labextension_list()
    line = next((l for l in listing.splitlines() if NAME in l), None)
    assert line is not None, listing
    assert "enabled" in line and "OK" in line, line
    built = json.loads((ROOT / "workbench" / "labextension" / "package.json").read_text())
    assert built["name"] == NAME and built["jupyterlab"]["_build"]["load"].startswith("static/remoteEntry.")


def test_the_built_extension_maps_back_to_its_typescript():
    static = ROOT / "workbench" / "labextension" / "static"
    bundles = sorted(static.glob("*.*.js"))  # style.js, one import line, has no map
    assert bundles, f"no built extension in {static}: build it (make install)"
    sources: dict[str, str] = {}
    for path in bundles:
        assert path.read_text().rstrip().splitlines()[-1].startswith("//# sourceMappingURL="), path.name
        source_map = json.loads(path.with_name(path.name + ".map").read_text())
        sources.update(zip(source_map["sources"], source_map.get("sourcesContent") or []))
    ours = {name.split("/./", 1)[1]: text for name, text in sources.items() if "/./src/" in name}
    assert {"src/index.ts", "src/diagram.ts", "src/mime.ts"} <= set(ours), sorted(sources)
    assert ours["src/diagram.ts"] == (ROOT / "extension" / "src" / "diagram.ts").read_text(), \
        "the built extension is older than extension/src: rebuild it (make install)"


@pytest.mark.slow
def test_wheel_installs_the_prebuilt_extension(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path), str(ROOT)],
                   check=True)
    (wheel,) = tmp_path.glob("workbench-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    data = [n for n in names if f"/share/jupyter/labextensions/{NAME}/" in n]
    assert any(n.endswith(f"{NAME}/package.json") for n in data), names
    assert any(n.endswith(f"{NAME}/install.json") for n in data)
    assert any("/static/remoteEntry." in n for n in data)
    assert not [n for n in names if n.startswith("workbench/labextension/")], "the built extension belongs in shared data only"

    # --ignore-installed: without it pip would first uninstall the development install of this very venv.
    prefix = tmp_path / "prefix"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--ignore-installed", "--prefix", str(prefix),
                    str(wheel)], check=True)
    installed = prefix / "share" / "jupyter" / "labextensions" / NAME
    assert (installed / "install.json").is_file()
    env = dict(os.environ, JUPYTER_PATH=str(prefix / "share" / "jupyter"))
    listing = labextension_list(env)
    line = next(l for l in listing.splitlines() if NAME in l and "python, workbench" in l)
    assert "enabled" in line and "OK" in line, listing
