"""Run fidelity scenarios: save in one subprocess (each script as ``__main__``), load each in a fresh one.

Saving: one interpreter runs every scenario script in turn with ``runpy.run_path(..., "__main__")``
(a real file, its own ``__main__`` namespace, its directory on ``sys.path`` for local modules); the
appended footer saves the bundle and records the live ``infer_apply`` and ``eval_apply`` outputs.
Loading: every bundle is loaded in its own fresh interpreter, started in an empty directory so
that local modules next to the script cannot be imported, and compared exactly.
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
_h_torch.save((_h_infer, _h_eval), _h_out + "/live.pt")
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

LOAD_ONE = r"""
import json, sys, torch, workbench
from workbench.bundle.compare import difference
d = sys.argv[1]
live_infer, live_eval = torch.load(d + "/live.pt", weights_only=False)
inputs = json.load(open(d + "/inputs.json")) if False else None
pl = workbench.load(d + "/bundle")
import runpy
ns = {}
exec(open(d + "/inputs.py").read(), ns)
INPUTS = ns["INPUTS"]
problems = []
for i, (x, want) in enumerate(zip(INPUTS, live_infer)):
    p = difference(want, pl.infer_apply(x), f"infer_apply(INPUTS[{i}])")
    if p: problems.append(p)
got = list(pl.eval_apply(INPUTS, batch_size=int(sys.argv[2])))
p = difference(live_eval, got, "eval_apply(INPUTS)")
if p: problems.append(p)
print(json.dumps(problems))
"""


def write_scenario(root: Path, scenario: Scenario) -> Path:
    d = root / scenario.name
    d.mkdir(parents=True)
    (d / "script.py").write_text(scenario.script + f"\nBATCH_SIZE = {scenario.batch_size}\n" + FOOTER)
    for name, text in scenario.files.items():
        (d / name).write_text(text)
    # The inputs alone, re-evaluated by the loading process (they are plain literals).
    inputs_line = [line for line in scenario.script.splitlines() if line.startswith("INPUTS = ")]
    (d / "inputs.py").write_text("\n".join(inputs_line) + "\n")
    return d


def save_all(root: Path, scenarios: list[Scenario] = SCENARIOS) -> dict[str, str | None]:
    for s in scenarios:
        write_scenario(root, s)
    proc = subprocess.run([sys.executable, "-c", SAVE_ALL, str(root)] + [s.name for s in scenarios],
                          cwd=root, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"the saving interpreter failed:\n{proc.stderr}")
    return json.loads((root / "status.json").read_text())


def load_and_compare(scenario_dir: Path, batch_size: int, workdir: Path) -> list[str]:
    """Problems found when a fresh interpreter loads the bundle (empty list: exact match)."""
    workdir.mkdir(exist_ok=True)
    proc = subprocess.run([sys.executable, "-c", LOAD_ONE, str(scenario_dir), str(batch_size)],
                          cwd=workdir, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        return [f"loading failed:\n{proc.stderr[-3000:]}"]
    return json.loads(proc.stdout.strip().splitlines()[-1])
