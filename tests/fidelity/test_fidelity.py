"""Fidelity: a bundle loaded in a fresh interpreter computes exactly what the live pipeline did.

Every scenario is a real script (see ``_scenarios.py``) run as ``__main__``; its bundle is loaded in a
fresh interpreter started in an empty directory and compared on ``infer_apply`` and ``eval_apply``
with ``torch.equal``/``==``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ._harness import load_and_compare, save_all
from ._scenarios import SCENARIOS


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str | None]]:
    root = tmp_path_factory.mktemp("fidelity")
    return root, save_all(root)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_bundle_reproduces_live_outputs(saved, scenario, tmp_path):
    root, status = saved
    assert status[scenario.name] is None, f"saving failed:\n{status[scenario.name]}"
    d = root / scenario.name
    assert (d / "bundle" / "manifest.json").is_file()
    problems = load_and_compare(d, scenario.batch_size, tmp_path / "elsewhere")
    assert problems == []


def test_there_are_enough_scenarios():
    assert len(SCENARIOS) >= 25
