"""explain() against answers known in closed form, and the promises around it (state, memory, errors)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from workbench import batch, explain, transform, unbatch
from workbench.attribution import method_names
from workbench.attribution.methods import get_method


def linear_pipeline(inputs: int = 5, classes: int = 3, seed: int = 0):
    torch.manual_seed(seed)
    model = transform(torch.nn.Linear(inputs, classes))
    return transform(lambda v: torch.tensor(v, dtype=torch.float32)) >> batch >> model >> unbatch, model


def test_every_method_is_registered_under_its_name():
    assert set(method_names()) >= {"integrated_gradients", "saliency", "input_x_gradient", "occlusion",
                                   "feature_ablation", "grad_cam", "layer_integrated_gradients", "noise_tunnel"}
    with pytest.raises(ValueError, match="unknown attribution method 'shap'.*integrated_gradients"):
        get_method("shap")


def test_integrated_gradients_of_a_linear_model_is_weight_times_input_minus_baseline():
    pl, model = linear_pipeline()
    x = [0.5, -1.0, 2.0, 0.25, 3.0]
    baseline = torch.tensor([[0.1, 0.2, -0.3, 0.0, 1.0]])
    e = explain(pl, x, baselines=baseline)
    expected = model.weight[e.target].detach() * (torch.tensor(x) - baseline[0])
    torch.testing.assert_close(e.attributions, expected, rtol=1e-5, atol=1e-6)
    assert e.prediction == int(model(torch.tensor(x)).argmax())
    assert e.target == e.prediction
    assert abs(e.delta) < 1e-5


def test_integrated_gradients_completeness_within_the_reported_delta():
    torch.manual_seed(1)
    model = transform(torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 4)))
    pl = transform(torch.as_tensor) >> batch >> model
    x = torch.randn(6)
    for n_steps in (8, 64):
        e = explain(pl, x, target=2, n_steps=n_steps)
        with torch.no_grad():
            difference = float(model(x[None])[0, 2] - model(torch.zeros(1, 6))[0, 2])
        gap = float(e.attributions.sum()) - difference
        assert gap == pytest.approx(e.delta, abs=1e-5)
        assert abs(gap) <= abs(e.delta) + 1e-5
    assert abs(e.delta) < 1e-3  # 64 Gauss-Legendre steps on a smooth model converge


def test_saliency_of_a_linear_model_is_the_absolute_weight_row():
    pl, model = linear_pipeline()
    for target in range(3):
        e = explain(pl, [1.0, 2.0, 3.0, 4.0, 5.0], method="saliency", target=target)
        torch.testing.assert_close(e.attributions, model.weight[target].detach().abs())
        assert e.target == target and e.delta is None
    signed = explain(pl, [1.0, 2.0, 3.0, 4.0, 5.0], method="saliency", target=1, abs=False)
    torch.testing.assert_close(signed.attributions, model.weight[1].detach())


def test_input_x_gradient_occlusion_and_ablation_agree_on_a_linear_model():
    pl, model = linear_pipeline()
    x = torch.tensor([1.0, -2.0, 3.0, 0.5, -1.5])
    expected = model.weight[0].detach() * x  # removing a feature of a linear model removes w_i * x_i
    for method in ("input_x_gradient", "feature_ablation", "occlusion"):
        e = explain(pl, x.tolist(), method=method, target=0)
        torch.testing.assert_close(e.attributions, expected, rtol=1e-5, atol=1e-6, msg=method)


def test_noise_tunnel_smooths_a_base_method_and_rejects_others():
    pl, model = linear_pipeline()
    e = explain(pl, [1.0, 2.0, 3.0, 4.0, 5.0], method="noise_tunnel", target=0)  # base: saliency
    torch.testing.assert_close(e.attributions, model.weight[0].detach().abs())  # constant gradient
    torch.manual_seed(0)
    ig = explain(pl, [1.0, 2.0, 3.0, 4.0, 5.0], method="noise_tunnel", base="integrated_gradients", target=0,
                 nt_samples=4, n_steps=10)
    assert ig.delta is not None and abs(ig.delta) < 1e-4
    assert ig.options == {"base": "integrated_gradients", "nt_samples": 4, "n_steps": 10}
    assert "noise_tunnel(integrated_gradients)" in ig.plot().axes[0].get_title()
    with pytest.raises(ValueError, match="base='occlusion'"):
        explain(pl, [1.0] * 5, method="noise_tunnel", base="occlusion")


def small_cnn():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(4, 6, 3, stride=2, padding=1), torch.nn.ReLU(),  # 8x8 -> 4x4
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(6, 10))


def cnn_pipeline():
    model = transform(small_cnn())
    return transform(lambda v: torch.as_tensor(v).reshape(1, 8, 8)) >> batch >> model, model


def test_grad_cam_returns_a_map_of_the_layer_spatial_size():
    pl, model = cnn_pipeline()
    image = torch.rand(64)
    by_module = explain(pl, image, method="grad_cam", layer=model[2])
    assert by_module.attributions.shape == (4, 4)
    assert by_module.layer == "2"
    first = explain(pl, image, method="grad_cam", layer="0")  # by name; the first conv keeps 8x8
    assert first.attributions.shape == (8, 8)
    assert (first.attributions >= 0).all()  # ReLU'd as in the paper


def test_grad_cam_without_a_layer_takes_the_last_convolution_as_the_inspector_does():
    pl, _ = cnn_pipeline()
    image = torch.rand(64)
    e = explain(pl, image, method="grad_cam")
    assert e.layer == "2" and e.attributions.shape == (4, 4)
    torch.testing.assert_close(e.attributions, explain(pl, image, method="grad_cam", layer="2").attributions)


def test_a_method_class_declares_its_default_layer_and_where_it_is_offered():
    """A new layer method needs no special case by name in explain or the inspector's method picker."""
    from workbench.attribution import methods, register_method
    from workbench.attribution.view import runnable_methods

    @register_method("last_linear_gradients")
    class LastLinear(methods.AttributionMethod):
        needs_layer = True
        layer_types = (torch.nn.Linear,)
        last_layer = True
        layer_kind = "linear"

        def attribute(self, inputs, target, **options):
            from captum.attr import LayerGradientXActivation

            return LayerGradientXActivation(self.forward_func, self.layer).attribute(inputs, target=target), None

    try:
        torch.manual_seed(0)
        model = transform(torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3)))
        pl = transform(torch.as_tensor) >> batch >> model
        e = explain(pl, torch.rand(4), method="last_linear_gradients")
        assert e.layer == "2" and e.attributions.shape == (3,)
        assert "last_linear_gradients" in runnable_methods(pl, integer_input=False)
        assert "grad_cam" not in runnable_methods(pl, integer_input=False)
        no_linear = transform(torch.as_tensor) >> batch >> transform(torch.nn.Sequential(torch.nn.Tanh()))
        with pytest.raises(ValueError, match="has no linear layer to default to: pass layer="):
            explain(no_linear, torch.rand(4), method="last_linear_gradients")
    finally:
        del methods._METHODS["last_linear_gradients"]


def test_grad_cam_points_at_the_evidence():
    """One channel, identity conv: the map is the activation weighted by a positive mean gradient."""
    conv = torch.nn.Conv2d(1, 1, 1, bias=False)
    head = torch.nn.Linear(1, 2, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0)
        head.weight.copy_(torch.tensor([[1.0], [-1.0]]))
    model = transform(torch.nn.Sequential(conv, torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), head))
    pl = transform(lambda v: v.reshape(1, 6, 6)) >> batch >> model
    image = torch.zeros(6, 6)
    image[4, 1] = 5.0
    e = explain(pl, image, method="grad_cam", layer=conv)
    assert e.prediction == 0
    assert e.attributions.shape == (6, 6)
    assert divmod(int(e.attributions.argmax()), 6) == (4, 1)
    torch.testing.assert_close(e.attributions, image / 36)  # weight = mean gradient = 1/36


class MeanEmbedding(torch.nn.Module):
    """Tokens -> embeddings -> mean -> linear: a bag-of-words text classifier."""

    def __init__(self, vocab: int, dim: int, classes: int):
        super().__init__()
        self.embedding = torch.nn.Embedding(vocab, dim, padding_idx=0)
        self.head = torch.nn.Linear(dim, classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.embedding(ids).mean(1))


VOCAB = ["<pad>", "great", "awful", "the", "film", "was", "plot", "superb", "boring"]
POSITIVE, NEGATIVE = {"great", "superb"}, {"awful", "boring"}


@pytest.fixture(scope="module")
def text_pipeline():
    torch.manual_seed(0)
    index = {w: i for i, w in enumerate(VOCAB)}
    model = transform(MeanEmbedding(len(VOCAB), 8, 2))
    tokenize = transform(lambda text: torch.tensor([index[w] for w in text.split()]))
    rng = np.random.default_rng(0)
    neutral = ["the", "film", "was", "plot"]
    sentences, labels = [], []
    for _ in range(200):
        label = int(rng.integers(0, 2))
        words = list(rng.choice(neutral, size=3)) + [str(rng.choice(sorted(POSITIVE if label else NEGATIVE)))]
        rng.shuffle(words)
        sentences.append(" ".join(words))
        labels.append(label)
    ids = torch.stack([tokenize(s) for s in sentences])
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(150):
        loss = torch.nn.functional.cross_entropy(model(ids), torch.tensor(labels))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return tokenize >> batch >> model, model


def test_layer_integrated_gradients_scores_each_token_of_a_text_model(text_pipeline):
    pl, model = text_pipeline
    sentence = "the plot was superb"
    e = explain(pl, sentence, method="layer_integrated_gradients", layer=model.embedding)
    assert e.prediction == 1 and e.target == 1
    assert e.attributions.shape == (4, 8)
    assert e.tokens == sentence.split()
    scores = e.scores
    assert scores.shape == (4,)
    assert int(scores.argmax()) == 3  # "superb" carries the positive prediction
    assert float(scores[3]) > 5 * float(scores[:3].abs().max())
    assert abs(e.delta) < 1e-3
    # Completeness: per-token scores add up to F(x) - F(all padding).
    with torch.no_grad():
        ids = pl.stages.preprocess(sentence)  # the stage ends with batch: a batch of one
        difference = float(model(ids)[0, 1] - model(torch.zeros_like(ids))[0, 1])
    assert float(scores.sum()) == pytest.approx(difference, abs=abs(e.delta) + 1e-5)
    negative = explain(pl, "awful film was the", method="layer_integrated_gradients", layer="embedding")
    assert negative.prediction == 0 and int(negative.scores.argmax()) == 0


def test_gradient_methods_on_token_ids_say_to_use_the_embedding_layer(text_pipeline):
    pl, _ = text_pipeline
    with pytest.raises(TypeError, match="layer_integrated_gradients"):
        explain(pl, "the plot was superb", method="saliency")


def test_layers_are_in_eval_mode_with_grads_only_inside_explain_and_restored_afterwards():
    torch.manual_seed(0)
    seen = []

    class Probe(torch.nn.Module):
        def forward(self, x):
            seen.append((self.training, torch.is_grad_enabled()))
            return x

    inner = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Dropout(0.9), Probe(), torch.nn.Linear(8, 3))
    model = transform(inner)
    pl = transform(torch.as_tensor) >> batch >> model
    model.train()
    inner[3].weight.requires_grad_(False)  # a frozen layer stays frozen, trainable ones stay trainable
    first = explain(pl, torch.ones(4), method="integrated_gradients", n_steps=20)
    second = explain(pl, torch.ones(4), method="integrated_gradients", n_steps=20)
    torch.testing.assert_close(first.attributions, second.attributions)  # dropout was off
    assert seen and all(training is False for training, _ in seen)
    assert any(grad for _, grad in seen)  # Captum's own no-grad evaluations (the delta) aside
    assert all(m.training for m in inner.modules())
    assert inner[0].weight.requires_grad and not inner[3].weight.requires_grad
    assert inner[0].weight.grad is None  # no parameter gradients were accumulated
    seen.clear()
    with torch.no_grad():
        explain(pl, torch.ones(4), method="saliency")  # grads are enabled inside even under no_grad
        assert not torch.is_grad_enabled()
    assert seen[-1] == (False, True)


def test_state_is_restored_when_the_method_fails():
    pl, model = linear_pipeline()
    model.train()
    with pytest.raises(TypeError, match="unknown option"):
        explain(pl, [1.0] * 5, method="saliency", n_steps=3)
    assert model.training and model.weight.requires_grad


def test_internal_batch_size_bounds_the_forward_batch():
    sizes = []
    torch.manual_seed(0)
    linear = torch.nn.Linear(64, 10)

    def forward(x):
        sizes.append(x.shape[0])
        return linear(x)

    pl = transform(torch.as_tensor) >> batch >> transform(forward)
    explain(pl, torch.rand(64), n_steps=100)  # default internal batch
    assert max(sizes) <= 32 and sum(sizes) >= 100
    sizes.clear()
    explain(pl, torch.rand(64), n_steps=50, internal_batch_size=7)
    assert max(sizes) <= 7
    sizes.clear()
    explain(pl, torch.rand(64), method="feature_ablation")
    assert max(sizes) <= 16 and len(sizes) >= 64 // 16
    sizes.clear()
    explain(pl, torch.rand(64), method="occlusion", perturbations_per_eval=5)
    assert max(sizes) <= 5


def test_bad_calls_name_the_problem():
    pl, model = linear_pipeline()
    with pytest.raises(ValueError, match="target=7 is not a class index"):
        explain(pl, [1.0] * 5, target=7)
    with pytest.raises(ValueError, match="pass layer="):
        explain(pl, [1.0] * 5, method="grad_cam")
    with pytest.raises(ValueError, match="no layer named 'conv9'"):
        explain(pl, [1.0] * 5, method="grad_cam", layer="conv9")
    with pytest.raises(ValueError, match="not a module inside this pipeline"):
        explain(pl, [1.0] * 5, method="grad_cam", layer=torch.nn.Conv2d(1, 1, 1))
    with pytest.raises(ValueError, match="'saliency' attributes to the forward input and takes no layer"):
        explain(pl, [1.0] * 5, method="saliency", layer=model)
    with pytest.raises(ValueError, match="needs a pipeline with a batch step"):
        explain(transform(torch.as_tensor) >> model, [1.0] * 5)
    with pytest.raises(TypeError, match="got unknown option.*n_step\\b"):
        explain(pl, [1.0] * 5, n_step=10)
    with pytest.raises(RuntimeError) as info:
        explain(pl, [1.0] * 4)  # wrong width for the model
    notes = "\n".join(getattr(info.value, "__notes__", []))
    assert "forward stage" in notes and "in step [2] 'Linear'" in notes, notes


def test_target_accepts_numpy_and_tensor_integers():
    pl, _ = linear_pipeline()
    assert explain(pl, [1.0] * 5, method="saliency", target=np.int64(2)).target == 2
    assert explain(pl, [1.0] * 5, method="saliency", target=torch.tensor(1)).target == 1


def test_a_tuple_forward_input_gets_one_attribution_per_part():
    torch.manual_seed(0)

    class TwoInputs(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = torch.nn.Linear(3, 2), torch.nn.Linear(2, 2)

        def forward(self, x, y):
            return self.a(x) + self.b(y)

    model = transform(TwoInputs())
    pl = transform(lambda v: (torch.tensor(v[:3]), torch.tensor(v[3:]))) >> batch >> model
    values = [1.0, 2.0, 3.0, 4.0, 5.0]
    e = explain(pl, values, target=1)
    first, second = e.attributions
    torch.testing.assert_close(first, model.a.weight[1].detach() * torch.tensor(values[:3]))
    torch.testing.assert_close(second, model.b.weight[1].detach() * torch.tensor(values[3:]))
    assert isinstance(e.input, tuple) and e.input[1].shape == (2,)
    assert e.plot().axes  # draws the first part


@pytest.mark.slow
def test_importing_workbench_leaves_captum_pandas_and_widgets_for_first_use():
    import subprocess
    import sys

    code = ("import sys, workbench; from workbench.inspector import registered_views; "
            "assert 'Attribution' in registered_views(); "
            "print(sorted(m for m in ('captum', 'pandas', 'ipywidgets', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
