"""The inspector's Attribution tab, driven through its real ipywidgets controls."""

from __future__ import annotations

import pytest
import torch

from workbench import batch, explain, hard_examples, inspect, transform
from workbench.attribution import example_labels
from workbench.inspector import registered_views


def cnn_pipeline():
    torch.manual_seed(0)
    model = transform(torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(4, 6, 3, stride=2, padding=1), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(6, 3)))
    return transform(lambda v: torch.as_tensor(v).reshape(1, 8, 8)) >> batch >> model


def test_every_inspector_gets_the_attribution_tab():
    assert "Attribution" in registered_views()
    w = inspect(cnn_pipeline(), torch.rand(5, 64))
    assert "Attribution" in w.tabs.titles


@pytest.mark.slow
def test_the_view_explains_the_current_example_and_follows_the_controls():
    pl = cnn_pipeline()
    images = torch.rand(6, 64)
    w = inspect(pl, images, class_names=["zero", "one", "two"])
    view = w.view("Attribution")
    e = view.explanation
    assert e is not None and e.method == "integrated_gradients"
    overlay = view.canvas.spec["columns"][0]["blocks"][0]
    assert overlay["kind"] == "overlay" and overlay["heat"]["shape"] == [8, 8] and overlay["image"]["dtype"] == "float32"
    expected = explain(pl, images[0])
    torch.testing.assert_close(e.attributions, expected.attributions)
    assert [label for label, _ in view.target.options] == ["predicted", "0 (zero)", "1 (one)", "2 (two)"]

    w.state.select_example(3)  # the inspector moves: the view follows
    w.update_view("Attribution")
    torch.testing.assert_close(view.explanation.attributions, explain(pl, images[3]).attributions)

    view.method.value = "grad_cam"  # no layer chosen: the last conv layer
    assert view.explanation.layer == "2" and view.explanation.attributions.shape == (4, 4)
    view.layer.value = "0"
    assert view.explanation.layer == "0" and view.explanation.attributions.shape == (8, 8)

    view.method.value = "saliency"  # the layer picker only applies to layer methods
    assert view.explanation.layer is None
    view.target.value = 2
    assert view.explanation.target == 2 and "2 (two)" in view.status.value

    view.method.value = "noise_tunnel"
    assert view.base.layout.display == "" and view.explanation.method == "noise_tunnel"
    view.base.value = "input_x_gradient"
    assert view.explanation is not None

    before, spec = view.explanation, view.canvas.spec
    view.canvas.alpha = 0.3  # the browser redraws the overlay; nothing is recomputed or resent
    assert view.explanation is before and view.canvas.spec is spec


def test_errors_show_in_the_tab_and_leave_the_controls_usable():
    torch.manual_seed(0)
    model = transform(torch.nn.Linear(4, 2))
    pl = transform(torch.as_tensor) >> batch >> model
    w = inspect(pl, torch.rand(3, 4))
    view = w.view("Attribution")
    assert "grad_cam" not in view.method.options  # a linear model has no conv layer: not offered
    view.method.value = "layer_integrated_gradients"  # no embedding to default to, no layer chosen
    assert view.explanation is None and "needs a layer" in view.status.value
    view.method.value = "saliency"
    assert view.explanation is not None
    view.shape.value = "3x3"  # 4 values cannot be 3x3
    assert "pass shape" in view.status.value or "cannot draw" in view.status.value
    view.shape.value = "2x2"
    assert view.figure is not None and "cannot" not in view.status.value


def test_hard_examples_feed_the_example_picker():
    torch.manual_seed(0)
    model = transform(torch.nn.Linear(4, 3))
    pl = transform(torch.as_tensor) >> batch >> model
    xs = torch.randn(40, 4)
    with torch.no_grad():
        model.weight.mul_(20)  # confident, so that a wrong label costs a large loss
        ys = model(xs).argmax(1)
    ys[[5, 17]] = (ys[[5, 17]] + 1) % 3  # two wrong labels
    table = hard_examples(pl, xs, ys, k=5)
    assert set(table["index"][:2]) == {5, 17}
    labels = example_labels(table)
    assert labels[0].startswith(f"loss {table['loss'][0]:.2f} · target {table['target'][0]}")
    w = inspect(pl, xs, examples=table, labels=labels)
    assert w.state.examples == table["index"].tolist() and w.state.example == table["index"][0]
    view = w.view("Attribution")
    assert view.explanation is not None
    torch.testing.assert_close(view.explanation.input, xs[table["index"][0]])
