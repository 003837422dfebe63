"""Explanation.plot: images, tokens and bars; all-zero attributions draw without dividing by zero."""

from __future__ import annotations

import warnings

import numpy as np
import torch

from workbench import batch, explain, transform
from workbench.attribution import Explanation
from workbench.attribution.plots import attribution_kind


def make(attributions, input, tokens=None, layer=None):
    return Explanation(attributions=attributions, target=0, prediction=0, delta=None, method="saliency",
                       input=input, output=torch.zeros(2), tokens=tokens, layer=layer)


def heat_of(fig):
    """The data of the attribution image (the last image drawn)."""
    return np.asarray(fig.axes[1].images[-1].get_array())


def test_all_zero_attributions_draw_everywhere_without_warnings():
    cases = [
        make(torch.zeros(1, 8, 8), torch.rand(1, 8, 8)),
        make(torch.zeros(3, 4, 4), torch.rand(3, 4, 4)),
        make(torch.zeros(5), torch.rand(5)),
        make(torch.zeros(3, 4), torch.tensor([1, 2, 3]), tokens=["a", "b", "c"], layer="embedding"),
        make(torch.zeros(8, 8), torch.zeros(8, 8)),  # a constant image as well
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's divide-by-zero RuntimeWarning would fail here
        for e in cases:
            fig = e.plot()
            assert fig.axes
            for ax in fig.axes:
                for image in ax.images:
                    assert np.isfinite(np.asarray(image.get_array(), dtype=float)).all()
                    assert image.norm.vmin < image.norm.vmax


def test_image_attributions_are_overlaid_on_a_symmetric_scale():
    attr = torch.zeros(1, 8, 8)
    attr[0, 2, 3] = 2.0
    attr[0, 5, 5] = -0.5
    fig = make(attr, torch.rand(1, 8, 8)).plot()
    overlay = fig.axes[1].images[-1]
    assert (overlay.norm.vmin, overlay.norm.vmax) == (-2.0, 2.0)
    np.testing.assert_allclose(heat_of(fig), attr[0].numpy())
    assert len(fig.axes[1].images) == 2  # the input underneath, the heatmap on top


def test_flat_inputs_reshape_to_images_and_grad_cam_maps_are_upsampled():
    e = make(torch.arange(64.0), torch.rand(64))
    assert attribution_kind(e) == "bars" and attribution_kind(e, shape=(8, 8)) == "image"
    fig = e.plot(shape=(8, 8))
    np.testing.assert_allclose(heat_of(fig), np.arange(64.0).reshape(8, 8))
    cam = make(torch.rand(4, 4), torch.rand(1, 8, 8))
    assert heat_of(cam.plot()).shape == (8, 8)


def test_text_is_drawn_as_coloured_tokens():
    e = make(torch.tensor([[1.0, 0.0], [-2.0, 0.0], [0.0, 0.0]]), torch.tensor([4, 5, 6]),
             tokens=["good", "bad", "film"], layer="embedding")
    assert attribution_kind(e) == "text"
    fig = e.plot()
    texts = [t for t in fig.axes[0].texts if t.get_bbox_patch() is not None]
    assert [t.get_text() for t in texts] == ["good", "bad", "film"]
    values = [t.get_text() for t in fig.axes[0].texts if t.get_bbox_patch() is None]
    assert values == ["+1.00", "-2.00", "+0.00"]  # each token's value is written under it
    assert len(fig.axes) == 2 and fig.axes[1].get_xlim() == (-2.0, 2.0)  # the colour scale, symmetric
    colours = [t.get_bbox_patch().get_facecolor() for t in texts]
    assert texts[1].get_color() == "white" and texts[2].get_color() == "black"  # readable on the strong colour
    assert colours[0][0] > colours[0][2]  # positive: red
    assert colours[1][2] > colours[1][0]  # negative: blue
    assert np.allclose(colours[2][:3], colours[2][0], atol=0.03)  # zero: neutral (near white)


def test_feature_vectors_are_drawn_as_bars_with_labels():
    e = make(torch.tensor([0.5, -1.0, 0.25]), torch.rand(3))
    fig = e.plot(labels=["age", "height", "weight"])
    ax = fig.axes[0]
    assert [round(p.get_width(), 3) for p in ax.patches] == [0.5, -1.0, 0.25]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["age", "height", "weight"]
    assert [t.get_text() for t in ax.texts] == ["+0.5", "-1", "+0.25"]


def test_plot_from_a_real_explanation_of_a_token_list():
    torch.manual_seed(0)
    vocab = {"a": 1, "b": 2, "c": 3}
    model = transform(torch.nn.Sequential(torch.nn.Embedding(4, 3), torch.nn.Flatten(), torch.nn.Linear(9, 2)))
    pl = transform(lambda words: torch.tensor([vocab[w] for w in words])) >> batch >> model
    e = explain(pl, ["a", "c", "b"], method="layer_integrated_gradients", layer="0")
    assert e.tokens == ["a", "c", "b"] and e.scores.shape == (3,)
    fig = e.plot()
    assert [t.get_text() for t in fig.axes[0].texts if t.get_bbox_patch() is not None] == ["a", "c", "b"]
    named = explain(pl, ["a", "c", "b"], method="layer_integrated_gradients", layer="0", tokens=["x", "y", "z"])
    assert named.tokens == ["x", "y", "z"]
