"""``workbench info`` and ``workbench predict --names`` on an annotated bundle."""

from __future__ import annotations

import json

import pytest
import torch

import workbench
from workbench import annotate, batch, transform, unbatch

from ._cli import run_cli

pytestmark = pytest.mark.slow


def _pipeline():
    model = transform(torch.nn.Linear(3, 2))
    return transform(lambda x: torch.tensor(x, dtype=torch.float32)) >> batch >> model >> unbatch, model


def test_info_and_predict_names(tmp_path):
    pl, model = _pipeline()
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]))
        model.bias.zero_()
    scores = annotate(pl, class_names=["neg", "pos"])
    label = annotate(pl >> transform(torch.argmax), class_names=["neg", "pos"])
    workbench.save(scores, tmp_path / "scores.wb")
    workbench.save(label, tmp_path / "label.wb")
    info = run_cli("info", tmp_path / "scores.wb").stdout
    assert "annotations:" in info and "class_names    2: neg, pos" in info
    out = run_cli("predict", tmp_path / "label.wb", "--names", "[1, 0, 0]", "[0, 1, 0]")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ['"neg"', '"pos"']
    out = run_cli("predict", tmp_path / "scores.wb", "--names", "[1, 2, 0]")
    assert json.loads(out.stdout) == {"neg": 1.0, "pos": 2.0}
    workbench.save(_pipeline()[0], tmp_path / "plain.wb")
    out = run_cli("predict", tmp_path / "plain.wb", "--names", "[1, 2, 0]")
    assert out.returncode != 0 and "has no class names" in out.stderr
