"""Fidelity: a bundle loaded in a fresh interpreter computes exactly what the live pipeline did.

Every scenario is a real script (see ``_scenarios.py``) run as ``__main__``; its bundle is loaded
away from the script, in a process that never ran any scenario code, and compared on ``infer_apply``
and ``eval_apply`` with ``torch.equal``/``==`` (see ``_harness.py``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ._harness import load_all, save_all
from ._scenarios import SCENARIOS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str | None]]:
    root = tmp_path_factory.mktemp("fidelity")
    status = save_all(root)
    saved_ok = [s for s in SCENARIOS if status[s.name] is None]
    return root, status, load_all(root, saved_ok, root / "elsewhere")


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_bundle_reproduces_live_outputs(saved, scenario, tmp_path):
    root, status, loaded = saved
    assert status[scenario.name] is None, f"saving failed:\n{status[scenario.name]}"
    assert (root / scenario.name / "bundle" / "manifest.json").is_file()
    assert loaded[scenario.name] == []


def test_there_are_enough_scenarios():
    assert len(SCENARIOS) >= 25
