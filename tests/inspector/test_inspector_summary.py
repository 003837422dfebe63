"""Statistics, view kinds, top-k and image panels of known values."""

import math

import numpy as np
import pytest
import torch

from workbench.inspector.summary import image_layout, leaves, summarize, top_k


def test_statistics_match_numpy_over_finite_values_and_count_nan_inf():
    values = torch.tensor([[1.0, -2.0, float("nan")], [4.0, float("inf"), -float("inf")], [0.5, 3.0, 7.0]])
    s = summarize(values)
    finite = values[torch.isfinite(values)].numpy().astype(np.float64)
    assert (s.type_name, s.shape, s.dtype, s.numel) == ("torch.Tensor", (3, 3), "float32", 9)
    assert s.min == finite.min() and s.max == finite.max()
    assert math.isclose(s.mean, finite.mean()) and math.isclose(s.std, finite.std())
    assert (s.nan_count, s.inf_count) == (1, 2)
    assert "NaN 1 · Inf 2" in s.stats_text()
    rows = dict(s.rows())
    assert rows["min"] == "-2" and rows["max"] == "7" and rows["NaN"] == "1" and rows["Inf"] == "2"


def test_all_nan_integer_bool_and_single_values():
    s = summarize(torch.full((4,), float("nan")))
    assert s.min is None and s.nan_count == 4 and s.stats_text().startswith("no finite values")
    s = summarize(torch.tensor([1, 2, 3, 10]))
    assert s.dtype == "int64" and s.max == 10 and s.kind == "vector" and s.mean == 4.0
    s = summarize(torch.tensor([True, False, True]))
    assert s.mean == pytest.approx(2 / 3) and s.kind == "vector"
    s = summarize(torch.tensor(2.5))
    assert s.kind == "scalar" and s.std == 0.0 and s.shape_text == "scalar"
    assert summarize(3).kind == "scalar" and summarize(3).type_name == "int"
    assert summarize(np.arange(6, dtype=np.float32).reshape(2, 3)).type_name == "numpy.ndarray"
    assert summarize([0.1, 0.7, 0.2]).kind == "scores"
    assert summarize(torch.zeros(0)).kind == "empty"


def test_view_kinds_by_shape():
    kinds = {
        (8, 8): "image", (1, 8, 8): "image", (1, 1, 8, 8): "image", (3, 8, 8): "rgb", (16, 4, 4): "maps",
        (1, 16, 4, 4): "maps", (2, 16, 4, 4): "maps", (5, 1, 8, 8): "maps", (10,): "scores", (1, 10): "scores",
        (64, 1, 1): "numeric", (2, 3, 4, 5, 6): "numeric", (7, 1): "numeric",
    }
    for shape, kind in kinds.items():
        assert summarize(torch.rand(shape)).kind == kind, shape
    assert summarize(np.zeros((16, 16, 3), dtype=np.uint8)).kind == "rgb"


def test_text_and_containers():
    s = summarize("a cat on a mat")
    assert s.kind == "text" and s.preview == "a cat on a mat" and not s.numeric
    assert summarize(["a", "b"]).preview == "[0] a\n[1] b"
    value = (torch.zeros(2, 3), {"label": "cat", "scores": [0.5, 0.5]})
    s = summarize(value)
    assert s.kind == "container" and s.parts == ["[0]", "[1]['label']", "[1]['scores']"]
    assert [label for label, _ in leaves(value)] == s.parts
    assert summarize(None).kind == "other" and summarize(None).preview == "None"


def test_top_k_values_indices_labels_ties_and_nan():
    scores = torch.tensor([0.1, 0.9, float("nan"), 0.4, 0.9, -1.0])
    k = top_k(scores, 3, class_names=["a", "b", "c", "d", "e", "f"])
    assert k.indices == [1, 4, 3]  # tie broken by the lower index; NaN skipped
    assert k.values == pytest.approx([0.9, 0.9, 0.4])
    assert k.labels == ["b", "e", "d"] and k.length == 6
    assert top_k(torch.tensor([[3.0, 1.0, 2.0]]), 10).indices == [0, 2, 1]  # batch of one, k capped
    with pytest.raises(ValueError, match="1-D score vector"):
        top_k(torch.rand(3, 4))


def test_feature_map_panels_are_capped_with_a_note():
    maps = torch.rand(32, 5, 5)
    layout = image_layout(maps, max_panels=16)
    assert layout.shown == 16 and layout.total == 32 and layout.note == "showing 16 of 32 channels"
    assert all(np.array_equal(p, maps[i].numpy()) for i, p in enumerate(layout.panels))
    assert image_layout(torch.rand(1, 5, 6, 6), max_panels=16).note == "showing 5 of 5 channels"
    assert image_layout(torch.rand(4, 6, 5, 5)).note == "item 0 of 4; showing 6 of 6 channels"
    assert image_layout(torch.rand(7, 1, 5, 5)).note == "showing 7 of 7 images"
    single = image_layout(torch.rand(1, 1, 8, 8))
    assert single.shown == 1 and single.note == "" and single.panels[0].shape == (8, 8)
    rgb = image_layout(torch.rand(3, 8, 9) * 4)
    assert rgb.rgb and rgb.panels[0].shape == (8, 9, 3) and rgb.panels[0].max() <= 1.0
