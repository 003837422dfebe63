"""Attribution and debugging on a text classifier (token ids of varying length) and a wine table."""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch

from workbench import annotate, batch, confusion_matrix, explain, hard_examples, transform, unbatch
from workbench.attribution import example_labels, plot_hard_examples

from text_model import CLASSES, build, load_corpus


@pytest.fixture(scope="module")
def text():
    texts, labels = load_corpus()
    pipeline, vocab = build(texts[:150], labels[:150])
    return pipeline, vocab, texts[150:], labels[150:]


@pytest.fixture(scope="module")
def wine():
    from sklearn.datasets import load_wine

    data = load_wine()
    x = ((data.data - data.data.mean(0)) / data.data.std(0)).astype(np.float32)
    torch.manual_seed(0)
    model = transform(torch.nn.Linear(13, 3))
    pl = transform(torch.as_tensor) >> batch >> model >> unbatch
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(60):
        loss = torch.nn.functional.cross_entropy(model(torch.as_tensor(x)), torch.as_tensor(data.target))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    annotate(pl, class_names=list(data.target_names), feature_names=list(data.feature_names))
    return pl, x, data


def test_token_ids_default_to_layer_integrated_gradients_on_the_embedding(text):
    pl, _, _, _ = text
    sentence = "the striker scored a late goal after extra time"
    e = explain(pl, sentence)
    assert e.method == "layer_integrated_gradients" and e.layer == "embedding"
    assert e.tokens == sentence.split() and e.scores.shape == (9,)
    assert e.class_name(e.prediction) == "sport"
    top = max(e.named_scores(), key=lambda pair: pair[1])[0]
    assert top in {"striker", "scored", "goal", "late", "extra", "time"}  # a sport word carries the prediction


def test_padding_is_left_out_and_words_come_from_the_vocabulary(text):
    pl, vocab, _, _ = text
    padded = transform(lambda s: torch.nn.functional.pad(torch.tensor([vocab.get(w, 1) for w in s.split()]), (0, 6)))
    model = pl.stages.forward
    fixed = annotate(padded >> batch >> model >> unbatch, vocab=vocab, class_names=CLASSES)
    e = explain(fixed, "voters rejected the budget")
    assert e.input.shape == (10,) and e.mask.tolist() == [True] * 4 + [False] * 6
    assert e.tokens == ["voters", "rejected", "the", "budget"] and e.scores.shape == (4,)
    assert e.token_ids == [vocab[w] for w in e.tokens]


def test_target_by_name_and_unknown_name(text):
    pl, _, _, _ = text
    e = explain(pl, "astronomers observed a distant galaxy", target="politics")
    assert e.target == CLASSES.index("politics")
    assert "target politics" in repr(e) or "(politics)" in repr(e)
    with pytest.raises(ValueError, match="unknown class 'weather'"):
        explain(pl, "astronomers observed a distant galaxy", target="weather")


def test_methods_that_need_float_inputs_say_so_for_token_ids(text):
    pl, _, _, _ = text
    with pytest.raises(TypeError, match="integer tensor"):
        explain(pl, "the minister approved the budget", method="saliency")


def test_id2label_names_classes_without_annotation():
    model = torch.nn.Linear(2, 2)
    model.config = types.SimpleNamespace(id2label={0: "NEG", 1: "POS"})
    pl = transform(torch.tensor) >> batch >> transform(model)
    e = explain(pl, [1.0, -1.0], target="POS")
    assert e.target == 1 and e.class_names == ["NEG", "POS"]


def test_text_plot_shows_each_real_token_with_its_value(text):
    pl, _, _, _ = text
    e = explain(pl, "the senate passed the health bill")
    fig = e.plot()
    tokens = [t.get_text() for t in fig.axes[0].texts if t.get_bbox_patch() is not None]
    values = [t.get_text() for t in fig.axes[0].texts if t.get_bbox_patch() is None]
    assert tokens == "the senate passed the health bill".split()
    assert values == [f"{s:+.2f}" for _, s in e.named_scores()]
    assert "predicted politics" in fig.axes[0].get_title(loc="left")
    width, _ = fig.get_size_inches()
    assert width < 8  # sized to its six words, not to a page


def test_feature_rows_use_feature_names(wine):
    pl, x, data = wine
    e = explain(pl, x[0])
    assert e.method == "integrated_gradients"
    assert [n for n, _ in e.named_scores()] == list(data.feature_names)
    fig = e.plot()
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == list(data.feature_names)
    assert "class_0" in fig.axes[0].get_title()


def test_hard_examples_with_string_labels_and_names_everywhere(text):
    pl, _, texts, labels = text
    table = hard_examples(pl, texts, labels)
    assert set(table["target_name"]) <= set(CLASSES) and table.attrs["class_names"] == CLASSES
    assert [CLASSES[i] for i in table["target"]] == list(table["target_name"])
    matrix = confusion_matrix(table)
    assert list(matrix.index) == CLASSES and int(matrix.to_numpy().sum()) == len(texts)
    assert any(name in example_labels(table)[0] for name in CLASSES)
    with pytest.raises(ValueError, match="target 'weather' of example 1 is not a class name"):
        hard_examples(pl, texts[:3], [labels[0], "weather", labels[2]])
    head = hard_examples(pl, texts, labels, k=3)
    assert head.attrs["class_names"] == CLASSES
    fig = plot_hard_examples(pl, texts, head, k=2)
    assert any(name in ax.get_title() for ax in fig.axes for name in CLASSES)


def test_hard_examples_needs_names_for_string_labels():
    pl = transform(torch.tensor) >> batch >> transform(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="no class names"):
        hard_examples(pl, [[0.0, 1.0]], ["cat"])
