"""``annotate``: names given once, kept by bundles, read by ``predict --names`` and ``info``."""

from __future__ import annotations

import json
import subprocess
import sys
import types

import pytest
import torch

import workbench
from workbench import annotate, batch, transform, unbatch
from workbench.annotations import class_index, class_names, token_strings

WORDS = {"<pad>": 0, "good": 1, "bad": 2, "film": 3}


def id_to_word(i):
    return ["<pad>", "good", "bad", "film"][i]


def _pipeline():
    model = transform(torch.nn.Linear(3, 2))
    return transform(lambda x: torch.tensor(x, dtype=torch.float32)) >> batch >> model >> unbatch, model


def test_annotations_empty_then_only_what_was_set():
    pl, model = _pipeline()
    assert pl.annotations == {} and transform(len).annotations == {}
    assert annotate(pl, class_names=["neg", "pos"]) is pl
    assert pl.annotations == {"class_names": ["neg", "pos"]}
    annotate(pl, feature_names=("a", "b", "c"))
    assert pl.annotations == {"class_names": ["neg", "pos"], "feature_names": ["a", "b", "c"]}
    pl.annotations["class_names"] = ["x"]  # a copy: the stored names are unchanged
    assert pl.annotations["class_names"] == ["neg", "pos"]


def test_a_step_annotations_reach_the_pipeline_and_the_pipeline_wins():
    pl, model = _pipeline()
    annotate(model, class_names=["a", "b"], vocab=["x", "y"])
    assert pl.annotations == {"class_names": ["a", "b"], "vocab": ["x", "y"]}
    annotate(pl, class_names=["neg", "pos"])
    assert pl.annotations["class_names"] == ["neg", "pos"] and pl.annotations["vocab"] == ["x", "y"]


def test_annotate_refuses_markers_and_bad_values():
    with pytest.raises(TypeError, match="stage marker"):
        annotate(batch, class_names=["a"])
    pl, _ = _pipeline()
    with pytest.raises(TypeError, match="sequence of names"):
        annotate(pl, class_names="neg pos")
    with pytest.raises(TypeError, match="got a string"):
        annotate(pl, vocab="abc")


def test_class_names_explicit_then_annotation_then_id2label():
    pl, model = _pipeline()
    model.config = types.SimpleNamespace(id2label={1: "POSITIVE", 0: "NEGATIVE"})
    assert class_names(pl) == ["NEGATIVE", "POSITIVE"]
    annotate(pl, class_names=["neg", "pos"])
    assert class_names(pl) == ["neg", "pos"]
    assert class_names(pl, ["n", "p"]) == ["n", "p"]


def test_vocabularies_of_every_kind_give_token_strings():
    pl, _ = _pipeline()
    ids = torch.tensor([1, 3, 0, 9])
    assert token_strings(pl, ids, vocab=WORDS) == ["good", "film", "<pad>", "<9>"]  # word -> id, read backwards
    assert token_strings(pl, ids, vocab={1: "good", 3: "film", 0: "<pad>"})[:3] == ["good", "film", "<pad>"]
    assert token_strings(pl, ids[:3], vocab=id_to_word) == ["good", "film", "<pad>"]
    assert token_strings(pl, ids, vocab=["<pad>", "good", "bad", "film"])[3] == "<9>"
    assert token_strings(pl, ids) is None


def test_class_index_by_name_or_index():
    assert class_index("pos", ["neg", "pos"]) == 1 and class_index(torch.tensor(0), ["neg", "pos"]) == 0
    with pytest.raises(ValueError, match="unknown class 'maybe'; the classes are 'neg', 'pos'"):
        class_index("maybe", ["neg", "pos"])
    with pytest.raises(ValueError, match="no class names"):
        class_index("pos", None)
    with pytest.raises(ValueError, match=r"0\.\.1"):
        class_index(2, None, classes=2)


@pytest.mark.slow
def test_bundle_keeps_annotations_with_a_callable_vocab_as_source(tmp_path):
    pl, model = _pipeline()
    annotate(model, feature_names=["a", "b", "c"])
    annotate(pl, class_names=["neg", "pos"], vocab=id_to_word)
    workbench.save(pl, tmp_path / "b.wb")
    manifest = json.loads((tmp_path / "b.wb" / "manifest.json").read_text())
    assert manifest["annotations"]["class_names"] == ["neg", "pos"]
    assert manifest["annotations"]["feature_names"] == ["a", "b", "c"]
    assert manifest["annotations"]["vocab"] == {"callable": f"{__name__}.id_to_word"}
    assert "def id_to_word(i):" in (tmp_path / "b.wb" / "source.py").read_text()
    script = ("import workbench, sys, json; a = workbench.load(sys.argv[1]).annotations;"
              "print(json.dumps({k: a[k] for k in ('class_names', 'feature_names')}), a['vocab'](2))")
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path / "b.wb")], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == '{"class_names": ["neg", "pos"], "feature_names": ["a", "b", "c"]} bad'


def test_bundle_keeps_a_dict_vocab_exactly(tmp_path):
    pl, _ = _pipeline()
    annotate(pl, vocab=WORDS)
    workbench.save(pl, tmp_path / "b.wb")
    assert workbench.load(tmp_path / "b.wb").annotations == {"vocab": WORDS}


def test_one_class_naming_serves_predict_serving_and_the_inspector():
    import numpy as np

    from workbench.annotations import class_label, class_name, output_class
    from workbench.inspector.summary import top_k
    from workbench.errors import NamesError
    from workbench.predict import with_names
    from workbench.serving.app import _label

    names = ["cat", "dog", "emu"]
    for value in (2, torch.tensor(2), torch.tensor(2, dtype=torch.uint8), np.int64(2), np.array(2)):
        assert output_class(value) == 2 and _label(value, names) == "emu" and with_names(value, names) == "emu"
    for value in (True, torch.tensor(2.0), torch.tensor([2]), np.array(2.0), "2", None):
        assert output_class(value) is None and _label(value, names) is None
    assert _label(5, names) is None and _label(1, None) is None
    with pytest.raises(NamesError, match="is class 5, but there are 3 class names"):
        with_names(torch.tensor(5), names)
    assert with_names(torch.tensor([0.1, 0.2, 0.7]), names) == pytest.approx({"cat": 0.1, "dog": 0.2, "emu": 0.7})
    assert class_name(1, {1: "dog"}) == "dog" and class_name(0, {1: "dog"}) is None and class_name(-1, names) is None
    assert [class_label(i, names) for i in (0, 7, None)] == ["cat", "7", "-"]
    assert top_k(torch.tensor([0.1, 0.7, 0.2, 0.0]), k=2, class_names={1: "dog"}).labels == ["dog", "2"]
