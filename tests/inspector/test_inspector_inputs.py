"""The inspector on text and tables: raw inputs, tokens for ids, named feature rows, fitting attribution."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from text_model import CLASSES, build, load_corpus
from workbench import annotate, batch, inspect, transform, unbatch


@pytest.fixture(scope="module")
def text():
    texts, labels = load_corpus()
    pipeline, vocab = build(texts[:150], labels[:150], epochs=10)
    return pipeline, vocab, texts[150:]


@pytest.fixture(autouse=True)
def _with_attribution_view():
    from workbench.attribution import _attribution_view
    from workbench.inspector import register_view

    register_view("Attribution", _attribution_view)


def test_text_example_shows_the_sentence_and_ids_as_tokens(text):
    pl, vocab, sentences = text
    w = inspect(pl, sentences)
    assert sentences[0] in w.raw_html.value  # the raw sentence, above the views
    w.state.select_step("[0]")
    assert w.state.kind == "tokens"
    summary = w.state.summary()
    assert summary.mean is None and summary.std is None  # no mean of ids
    words = sentences[0].split()
    assert [t for t, _ in w.state.tokens()] == words
    tokens = next(b for b in w.canvas.spec["columns"][0]["blocks"] if b["kind"] == "tokens")
    assert [t["text"] for t in tokens["tokens"]] == words and tokens["caption"] == f"{len(words)} tokens"


def test_padding_is_greyed_in_the_tokens(text):
    pl, vocab, sentences = text
    model = pl.stages.forward
    padded = transform(lambda s: torch.nn.functional.pad(torch.tensor([vocab.get(x, 1) for x in s.split()]), (0, 3)))
    fixed = annotate(padded >> batch >> model >> unbatch, vocab=vocab)
    w = inspect(fixed, ["voters rejected the budget"])
    w.state.select_step("[0]")
    assert w.state.tokens()[-3:] == [("<pad>", True)] * 3 and w.state.tokens()[0] == ("voters", False)
    tokens = next(b for b in w.canvas.spec["columns"][0]["blocks"] if b["kind"] == "tokens")
    assert [t["pad"] for t in tokens["tokens"]] == [False] * 4 + [True] * 3 and "+ 3 padding" in tokens["caption"]


def test_attribution_tab_offers_only_methods_that_run_and_shows_the_layer(text):
    pl, _, sentences = text
    w = inspect(pl, sentences)
    view = w.view("Attribution")
    assert view.method.value == "layer_integrated_gradients"
    assert set(view.method.options) == {"layer_integrated_gradients", "occlusion", "feature_ablation"}
    assert view.explanation is not None and view.layer.value == "embedding" and not view.layer.disabled
    assert view.explanation.tokens == sentences[0].split()
    assert any(f"{i} ({name})" in view.status.value for i, name in enumerate(CLASSES))
    view.method.value = "occlusion"
    assert view.layer.value == "" and view.layer.disabled and view.explanation.method == "occlusion"
    tokens = view.canvas.spec["columns"][0]["blocks"][0]
    assert [t["text"] for t in tokens["tokens"]] == sentences[0].split() and tokens["scale"] > 0
    assert tokens["scale"] == max(abs(t["score"]) for t in tokens["tokens"])  # symmetric around zero
    assert view.figure is not None  # the same explanation drawn by matplotlib


def test_table_row_is_a_named_table_and_named_bars_not_scores():
    from sklearn.datasets import load_wine

    data = load_wine()
    x = data.data[:5].astype(np.float32)
    pl = transform(torch.as_tensor) >> batch >> transform(torch.nn.Linear(13, 3)) >> unbatch
    annotate(pl, class_names=list(data.target_names), feature_names=list(data.feature_names))
    w = inspect(pl, x)
    assert "workbench-raw-row" in w.raw_html.value and "proline" in w.raw_html.value
    assert f"{x[0, 12]:.6g}" in w.raw_html.value
    w.state.select_step("[0]")
    assert w.state.kind == "features" and w.state.top_k() is None
    fig = w.state.figure()
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == list(data.feature_names)
    w.state.select_step("[2]")
    assert w.state.kind == "scores" and set(w.state.top_k().labels) == set(data.target_names)


def test_images_show_as_images():
    pl = transform(lambda x: x) >> batch >> transform(torch.nn.Flatten())
    w = inspect(pl, torch.rand(2, 1, 8, 8))
    assert "data:image/png;base64," in w.raw_html.value
