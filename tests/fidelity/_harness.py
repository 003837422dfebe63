"""Run fidelity scenarios: save in one subprocess (each script as ``__main__``), load each in a fresh one.

Saving: one interpreter runs every scenario script in turn with ``runpy.run_path(..., "__main__")``
(a real file, its own ``__main__`` namespace, its directory on ``sys.path`` for local modules); the
appended footer saves the bundle and records the live ``infer_apply`` and ``eval_apply`` outputs.
Loading: a fresh interpreter started in an empty directory (so local modules next to the scripts
cannot be imported) forks one child per bundle, which loads it and compares exactly.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ._scenarios import SCENARIOS, Scenario

FOOTER = """

# --- appended by the fidelity harness ---
import sys as _h_sys, torch as _h_torch, workbench as _h_wb
_h_out = _h_sys.argv[1]
_h_wb.save(pl, _h_out + "/bundle")
_h_infer = [pl.infer_apply(x) for x in INPUTS]
_h_eval = list(pl.eval_apply(INPUTS, batch_size=BATCH_SIZE))
_h_torch.save((INPUTS, _h_infer, _h_eval), _h_out + "/live.pt")
"""

SAVE_ALL = r"""
import json, runpy, sys, traceback
from pathlib import Path
root = Path(sys.argv[1])
status = {}
for name in sys.argv[2:]:
    d = root / name
    sys.argv = [str(d / "script.py"), str(d)]
    sys.path.insert(0, str(d))
    try:
        runpy.run_path(str(d / "script.py"), run_name="__main__")
        status[name] = None
    except BaseException as exc:
        status[name] = "".join(traceback.format_exception(exc))
    finally:
        sys.path.remove(str(d))
(root / "status.json").write_text(json.dumps(status))
"""

LOAD_ALL = r"""
import json, os, sys
import torch, workbench
from workbench.bundle.compare import difference

def check(d, batch_size):
    inputs, live_infer, live_eval = torch.load(d + "/live.pt", weights_only=False)
    pl = workbench.load(d + "/bundle")
    problems = []
    for i, (x, want) in enumerate(zip(inputs, live_infer)):
        p = difference(want, pl.infer_apply(x), f"infer_apply(INPUTS[{i}])")
        if p:
            problems.append(p)
    p = difference(live_eval, list(pl.eval_apply(inputs, batch_size=batch_size)), "eval_apply(INPUTS)")
    if p:
        problems.append(p)
    return problems

results = {}
for arg in sys.argv[1:]:
    d, batch_size = arg.rsplit("::", 1)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # a child per bundle: nothing of one scenario is visible to the next
        os.close(r)
        try:
            out = check(d, int(batch_size))
        except BaseException as exc:
            import traceback
            out = ["loading failed:\n" + "".join(traceback.format_exception(exc))[-3000:]]
        os.write(w, json.dumps(out).encode())
        os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    results[d] = json.loads(data or b'["the loading process died"]')
print(json.dumps(results))
"""


def write_scenario(root: Path, scenario: Scenario) -> Path:
    d = root / scenario.name
    d.mkdir(parents=True)
    (d / "script.py").write_text(scenario.script + f"\nBATCH_SIZE = {scenario.batch_size}\n" + FOOTER)
    for name, text in scenario.files.items():
        (d / name).parent.mkdir(parents=True, exist_ok=True)
        (d / name).write_text(text)
    return d


def save_all(root: Path, scenarios: list[Scenario] = SCENARIOS) -> dict[str, str | None]:
    for s in scenarios:
        write_scenario(root, s)
    proc = subprocess.run([sys.executable, "-c", SAVE_ALL, str(root)] + [s.name for s in scenarios],
                          cwd=root, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"the saving interpreter failed:\n{proc.stderr}")
    return json.loads((root / "status.json").read_text())


def load_all(root: Path, scenarios: list[Scenario], workdir: Path) -> dict[str, list[str]]:
    """Problems per scenario when its bundle is loaded away from the script (empty list: exact match).

    One interpreter is started in an empty directory and imports only torch and workbench; each
    bundle is then loaded in a child forked from it, so no scenario's code exists in another's
    loader and none of the saving process's state exists in any of them.
    """
    workdir.mkdir(exist_ok=True)
    args = [f"{root / s.name}::{s.batch_size}" for s in scenarios]
    proc = subprocess.run([sys.executable, "-c", LOAD_ALL] + args, cwd=workdir, capture_output=True, text=True,
                          timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"the loading interpreter failed:\n{proc.stderr[-3000:]}")
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    return {s.name: results[str(root / s.name)] for s in scenarios}
