"""Ship the prebuilt JupyterLab extension in the wheel, as shared data under share/jupyter/labextensions.

Standard wheels only: for an editable install ``make install`` links the extension into the
environment instead (the link ``jupyter labextension develop --overwrite .`` makes), so a rebuild
needs no reinstall. When the extension has not
been built yet, it is built here with npm (Node.js 20+ needed) and the ``jupyter`` command of
JupyterLab 4 found on PATH; a source distribution already carries the built extension.
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
        if npm is None or shutil.which("jupyter") is None or not (source / "package.json").is_file():
            raise RuntimeError(
                "workbench: the JupyterLab extension is not built (workbench/labextension is missing) and "
                "cannot be built here: it needs Node.js 20+ with npm, JupyterLab 4's `jupyter` command on PATH "
                "and the extension/ sources; run `make install` in a checkout first"
            )
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=source, check=True)
        subprocess.run([npm, "run", "build:prod"], cwd=source, check=True)
        if not (self._built() / "package.json").is_file():
            raise RuntimeError("workbench: building the JupyterLab extension produced no workbench/labextension")
