"""Every layer class of ``torch.nn`` round-trips exactly through a bundle loaded in a fresh interpreter.

The classes are enumerated from ``torch.nn`` itself, so a class added by a new torch release fails
``test_every_torch_nn_layer_class_is_in_the_table`` until the table builds it. Each layer is
trained for a few optimizer steps, saved in a mixed ``train()``/``eval()`` state inside a pipeline,
and compared after loading on: every sub-layer's ``training`` flag, the ``state_dict``, the
``infer_apply`` output, and a train-mode output under a fixed seed (see ``_roundtrip.py``).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from ._roundtrip import compare, load_all, save_case
from ._torch_nn_table import LAYERS, TRAIN_UNAVAILABLE, UNAVAILABLE, torch_nn_layer_classes

CLASSES = torch_nn_layer_classes()


@pytest.fixture(scope="module")
def roundtrip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("torch_nn")
    failed: dict[str, str] = {}
    saved = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecated classes (Container, NLLLoss2d) warn when built
        for name in CLASSES:
            if name in UNAVAILABLE or name not in LAYERS:
                continue
            try:
                save_case(root, name, LAYERS[name], train=name not in TRAIN_UNAVAILABLE)
                saved.append(name)
            except Exception as exc:  # recorded per class; the test for that class reports it
                failed[name] = f"saving failed: {type(exc).__name__}: {exc}"
    load_all(root, saved)
    return root, failed


def test_every_torch_nn_layer_class_is_in_the_table():
    missing = [n for n in CLASSES if n not in LAYERS and n not in UNAVAILABLE]
    assert not missing, f"torch.nn classes without a table entry: {missing}"
    assert len(CLASSES) > 150


@pytest.mark.slow
@pytest.mark.parametrize("name", CLASSES)
def test_layer_round_trips_exactly(roundtrip, name):
    if name in UNAVAILABLE:
        pytest.skip(UNAVAILABLE[name])
    root, failed = roundtrip
    assert name not in failed, failed.get(name)
    assert compare(root, name) == []
