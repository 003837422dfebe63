"""Ship the prebuilt JupyterLab extension in the wheel, as shared data under share/jupyter/labextensions.

Standard wheels only: an editable install links the extension instead (``make install`` runs
``jupyter labextension develop``), so rebuilding it needs no reinstall. When the extension has not
been built yet, it is built here with npm (Node.js 20+ needed), and jupyterlab is added to the
build requirements for that.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

NAME = "workbench-jupyterlab"
DEST = f"share/jupyter/labextensions/{NAME}"


class LabextensionHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def _built(self) -> Path:
        return Path(self.root) / "workbench" / "labextension"

    def _wanted(self) -> bool:
        return self.target_name == "wheel"

    def dependencies(self) -> list[str]:
        if self._wanted() and not (self._built() / "package.json").is_file():
            return ["jupyterlab>=4.0,<5"]
        return []

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if not self._wanted() or version == "editable":
            return
        built = self._built()
        if not (built / "package.json").is_file():
            self._build()
        shared = build_data.setdefault("shared_data", {})
        for path in sorted(built.rglob("*")):
            if path.is_file():
                shared[str(path)] = f"{DEST}/{path.relative_to(built).as_posix()}"
        shared[str(Path(self.root) / "extension" / "install.json")] = f"{DEST}/install.json"

    def _build(self) -> None:
        source = Path(self.root) / "extension"
        npm = shutil.which("npm")
        if npm is None or not (source / "package.json").is_file():
            raise RuntimeError(
                "workbench: the JupyterLab extension is not built (workbench/labextension is missing) and "
                "cannot be built here: it needs Node.js 20+ with npm and the extension/ sources"
            )
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=source, check=True)
        subprocess.run([npm, "run", "build:prod"], cwd=source, check=True)
        if not (self._built() / "package.json").is_file():
            raise RuntimeError("workbench: building the JupyterLab extension produced no workbench/labextension")
