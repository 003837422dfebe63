"""hard_examples on planted problems: flipped labels must rank first, planted outliers must score as OOD."""

from __future__ import annotations

import numpy as np
import pandas
import pytest
import torch

from workbench import batch, confusion_matrix, hard_examples, transform
from workbench.attribution import plot_confusion_matrix, plot_hard_examples



def auroc(negatives: np.ndarray, positives: np.ndarray) -> float:
    """P(score of a positive > score of a negative), ties counted half: the exact Mann-Whitney AUROC."""
    greater = (positives[:, None] > negatives[None, :]).mean()
    ties = (positives[:, None] == negatives[None, :]).mean()
    return float(greater + 0.5 * ties)


def test_columns_ranking_and_values(digits, digits_pipeline):
    x, y, noisy, _ = digits
    table = hard_examples(digits_pipeline, x, noisy)
    assert list(table.columns) == ["index", "target", "prediction", "confidence", "margin", "entropy", "loss",
                                   "ood_score"]
    assert len(table) == len(x) and sorted(table["index"]) == list(range(len(x)))
    assert table["loss"].is_monotonic_decreasing
    # Recompute every column by hand from the model's logits.
    model = digits_pipeline.stages.forward
    with torch.no_grad():
        logits = model(torch.from_numpy(x))
    rows = table.sort_values("index")
    probs = logits.softmax(1)
    top2 = probs.topk(2, 1).values
    np.testing.assert_allclose(rows["loss"], torch.nn.functional.cross_entropy(
        logits, torch.from_numpy(noisy), reduction="none").numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(rows["prediction"], logits.argmax(1).numpy())
    np.testing.assert_allclose(rows["confidence"], top2[:, 0].numpy(), rtol=1e-5)
    np.testing.assert_allclose(rows["margin"], (top2[:, 0] - top2[:, 1]).numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(rows["entropy"], -(probs * probs.log()).sum(1).numpy(), rtol=1e-4, atol=1e-5)
    assert table.attrs["ood_score"] == "mahalanobis"
    top = hard_examples(digits_pipeline, x, noisy, k=5)
    pandas.testing.assert_frame_equal(top, table.head(5))


def test_top_k_by_loss_recovers_planted_wrong_labels(digits, digits_pipeline):
    x, _, noisy, flipped = digits
    FLIPPED = len(flipped)
    table = hard_examples(digits_pipeline, x, noisy, k=FLIPPED)
    precision = len(set(table["index"]) & set(flipped)) / FLIPPED
    print(f"precision@{FLIPPED} = {precision:.3f}")
    assert precision >= 0.8
    # Among the 20 hardest, nearly all are planted.
    assert len(set(table["index"][:20]) & set(flipped)) >= 18


def test_planted_out_of_distribution_inputs_score_higher(digits, digits_pipeline):
    x, y, _, _ = digits
    rng = np.random.default_rng(1)
    noise = rng.random((100, 64), dtype=np.float32)
    constant = np.repeat(np.linspace(0, 1, 20, dtype=np.float32)[:, None], 64, axis=1)
    planted = np.concatenate([noise, constant])
    inputs = np.concatenate([x[:600], planted])
    targets = np.concatenate([y[:600], rng.integers(0, 10, len(planted))])
    scores = {}
    for ood in ("mahalanobis", "energy", "max_softmax"):
        table = hard_examples(digits_pipeline, inputs, targets, ood=ood).sort_values("index")
        score = table["ood_score"].to_numpy()
        scores[ood] = auroc(score[:600], score[600:])
    print("AUROC " + ", ".join(f"{k}={v:.3f}" for k, v in scores.items()))
    assert scores["mahalanobis"] >= 0.9
    # The softmax-scale scores are fooled by far-away inputs; this is why they are not the default.
    assert scores["energy"] < scores["mahalanobis"] and scores["max_softmax"] < scores["mahalanobis"]


def test_auroc_formula():
    assert auroc(np.array([0.0, 1.0]), np.array([2.0, 3.0])) == 1.0
    assert auroc(np.array([2.0, 3.0]), np.array([0.0, 1.0])) == 0.0
    assert auroc(np.array([1.0]), np.array([1.0])) == 0.5


def test_the_scoring_pass_is_batched_eval_apply():
    calls = []
    linear = torch.nn.Linear(3, 4)

    def forward(xb):
        calls.append((xb.shape[0], linear.training, torch.is_grad_enabled()))
        return linear(xb)

    pl = transform(torch.as_tensor) >> batch >> transform(forward)
    xs = torch.randn(50, 3)
    table = hard_examples(pl, xs, torch.randint(0, 4, (50,)), batch_size=16, ood="energy")
    assert [c[0] for c in calls] == [16, 16, 16, 2]
    assert not any(grad for _, _, grad in calls)
    assert len(table) == 50
    from_generator = hard_examples(pl, (x for x in xs), table.sort_values("index")["target"], ood="energy")
    pandas.testing.assert_frame_equal(from_generator, table)


def test_custom_and_nll_losses():
    torch.manual_seed(0)
    xs = torch.randn(40, 3)
    ys = torch.randint(0, 4, (40,))
    linear = transform(torch.nn.Linear(3, 4))
    logits_pl = transform(torch.as_tensor) >> batch >> linear
    log_probs_pl = logits_pl >> transform(lambda t: t.log_softmax(1))
    ce = hard_examples(logits_pl, xs, ys, ood="energy")
    nll = hard_examples(log_probs_pl, xs, ys, loss="nll", ood="max_softmax")
    np.testing.assert_allclose(ce["loss"], nll["loss"], rtol=1e-5)
    np.testing.assert_array_equal(ce["index"], nll["index"])
    focal = hard_examples(logits_pl, xs, ys, loss=lambda out, t: (out.argmax(1) != t).float(), ood="energy")
    assert set(focal["loss"]) <= {0.0, 1.0} and focal["loss"].is_monotonic_decreasing
    with pytest.raises(ValueError, match="one loss per example"):
        hard_examples(logits_pl, xs, ys, loss=lambda out, t: out.sum())
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        hard_examples(logits_pl, xs, ys, loss="hinge")


def test_bad_input_is_named():
    linear = transform(torch.nn.Linear(3, 4))
    pl = transform(torch.as_tensor) >> batch >> linear
    xs = torch.randn(10, 3)
    with pytest.raises(ValueError, match="10 inputs and 9 targets"):
        hard_examples(pl, xs, [0] * 9)
    with pytest.raises(ValueError, match="target 7 of example 3"):
        hard_examples(pl, xs, [0, 0, 0, 7, 0, 0, 0, 0, 0, 0])
    with pytest.raises(ValueError, match="batch step"):
        hard_examples(transform(torch.as_tensor) >> linear, xs, [0] * 10)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        hard_examples(pl, xs, [0] * 10, k=0)
    with pytest.raises(ValueError, match="unknown ood score 'odin'"):
        hard_examples(pl, xs, [0] * 10, ood="odin")
    with pytest.raises(ValueError, match="correctly classified examples"):
        hard_examples(pl, xs[:3], [0, 1, 2])


def test_confusion_matrix_counts_pairs(digits, digits_pipeline):
    x, _, noisy, _ = digits
    table = hard_examples(digits_pipeline, x, noisy)
    matrix = confusion_matrix(table, classes=10)
    assert matrix.shape == (10, 10) and matrix.index.name == "target" and matrix.columns.name == "prediction"
    assert int(matrix.to_numpy().sum()) == len(x)
    assert int(np.trace(matrix.to_numpy())) == int((table["target"] == table["prediction"]).sum())
    pair = pandas.DataFrame({"target": [0, 0, 2], "prediction": [1, 1, 2]})
    small = confusion_matrix(pair, classes=["a", "b", "c"])
    assert small.loc["a", "b"] == 2 and small.loc["c", "c"] == 1 and small.to_numpy().sum() == 3
    with pytest.raises(ValueError, match="missing: prediction"):
        confusion_matrix(pandas.DataFrame({"target": [1]}))
    fig = plot_confusion_matrix(matrix, normalize=True)
    assert fig.axes and fig.axes[0].get_xlabel() == "prediction"
    empty = plot_confusion_matrix(confusion_matrix(pair.iloc[:0], classes=3), normalize=True)  # no division by 0
    assert empty.axes


def test_plot_of_the_hardest_examples_with_attributions(digits, digits_pipeline):
    x, _, noisy, _ = digits
    table = hard_examples(digits_pipeline, x, noisy, k=6)
    fig = plot_hard_examples(digits_pipeline, x, table, k=6, shape=(8, 8), n_steps=16)
    titled = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert len(titled) == 6
    assert titled[0].startswith(f"#{table['index'][0]}: target {table['target'][0]}")
    assert all(ax.images for ax in fig.axes if ax.get_title())
