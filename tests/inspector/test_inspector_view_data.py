"""What the inspector sends the browser: arrays as binary buffers, once; bounded per view; one scale
when comparing; the arrow keys the view reports move the selection."""

from __future__ import annotations

import json

import numpy as np
import torch

from workbench import inspect, transform
from workbench.inspector.canvas import MAX_VALUES
from workbench.inspector.views import figure_png


@transform
def maps(i):
    g = torch.Generator().manual_seed(int(i))
    return torch.randn(16, 8, 8, generator=g) * (int(i) + 1)


def pipeline():
    return maps - "maps" >> transform(lambda x: x.mean((1, 2))) - "scores"


def blocks(w, kind):
    return [b for c in w.canvas.spec["columns"] for b in c["blocks"] if b["kind"] == kind]


def test_feature_maps_go_as_float32_buffers_smaller_than_the_png():
    w = inspect(pipeline(), list(range(6)), step="maps")
    grid = blocks(w, "grid")[0]
    assert len(grid["panels"]) == 16 and grid["caption"] == "showing 16 of 16 channels"
    assert all(p["array"]["dtype"] == "float32" and p["array"]["shape"] == [8, 8] for p in grid["panels"])
    values = maps.fn(0)
    assert [(p["lo"], p["hi"]) for p in grid["panels"][:2]] == \
        [(float(values[c].min()), float(values[c].max())) for c in range(2)]
    assert w.canvas.arrays_sent == 16
    assert w.canvas.bytes_sent < len(figure_png(w.state.figure())) / 2


def test_moving_back_to_an_example_resends_nothing_the_page_has():
    w = inspect(pipeline(), list(range(6)), step="maps")
    w.state.select_example(1)
    sent, arrays = w.canvas.bytes_sent, w.canvas.arrays_sent
    assert arrays == 32
    w.state.select_example(0)
    assert w.canvas.arrays_sent == arrays  # the page holds example 0's maps already
    assert 0 < w.canvas.bytes_sent - sent < 16 * 8 * 8 * 4  # only the description
    assert w.state.traces_run == 2
    # A page that lost them (reloaded) asks, and gets exactly those.
    keys = [p["array"]["key"] for p in blocks(w, "grid")[0]["panels"][:3]]
    w.canvas._handle_custom_msg({"type": "want", "keys": keys + ["unknown"]}, [])
    assert w.canvas.arrays_sent == arrays + 3


def test_large_images_are_downsampled_to_the_cap_and_say_so():
    big = transform(lambda i: torch.rand(4, 600, 600))
    w = inspect(big, [0])
    grid = blocks(w, "grid")[0]
    values = sum(np.prod(p["array"]["shape"]) for p in grid["panels"])
    assert values <= MAX_VALUES and grid["panels"][0]["stride"] == 3
    assert grid["caption"] == f"showing 4 of 4 channels · downsampled 1:3 (at most {MAX_VALUES:,} values per view)"


def test_large_views_go_as_float16_unless_their_values_do_not_fit():
    w = inspect(transform(lambda scale: torch.rand(16, 40, 40) * scale), [1.0, 1e6])
    grid = blocks(w, "grid")[0]
    assert {p["array"]["dtype"] for p in grid["panels"]} == {"float16"}
    key = grid["panels"][0]["array"]["key"]
    _, data = w.canvas._current[key]
    assert len(data) == 40 * 40 * 2  # 16 maps of 40x40: above 16,384 values
    sent = np.frombuffer(data, dtype=np.float16).astype(np.float32)
    exact = w.state.value()[0].numpy().reshape(-1)
    assert np.allclose(sent, exact, rtol=1e-3, atol=1e-4)
    w.state.select_example(1)  # values up to 1e6 overflow float16: float32 instead
    assert {p["array"]["dtype"] for p in blocks(w, "grid")[0]["panels"]} == {"float32"}
    small = inspect(pipeline(), [0], step="maps")  # 16x8x8 values: exact
    assert {p["array"]["dtype"] for p in blocks(small, "grid")[0]["panels"]} == {"float32"}


def test_compared_examples_share_one_scale():
    w = inspect(pipeline(), list(range(6)), step="maps")
    w.state.set_compare(4)  # example 4 spreads five times wider than example 0
    left, right = blocks(w, "grid")
    a, b = maps.fn(0), maps.fn(4)
    for c in range(16):
        expected = (float(min(a[c].min(), b[c].min())), float(max(a[c].max(), b[c].max())))
        assert (left["panels"][c]["lo"], left["panels"][c]["hi"]) == expected
        assert (right["panels"][c]["lo"], right["panels"][c]["hi"]) == expected
    assert left["shared"] and right["shared"]
    h_left, h_right = blocks(w, "histogram")
    assert h_left["edges"] == h_right["edges"]
    assert h_left["edges"][0] == float(min(a.min(), b.min())) and sum(h_left["counts"]) == a.numel()


def test_nan_and_inf_never_reach_the_json():
    nan = transform(lambda i: torch.tensor([[1.0, float("nan")], [float("inf"), -2.0]]))
    w = inspect(nan, [0])
    json.dumps(w.canvas.spec, allow_nan=False)
    grid = blocks(w, "grid")[0]
    assert (grid["panels"][0]["lo"], grid["panels"][0]["hi"]) == (-2.0, 1.0)
    summary = dict(w.canvas.spec["columns"][0]["summary"])
    assert summary["NaN"] == "1" and summary["Inf"] == "1"


def test_integer_vectors_show_their_values():
    w = inspect(transform(lambda i: torch.arange(5) * i), [3])
    assert [b["kind"] for b in w.canvas.spec["columns"][0]["blocks"]] == ["text", "histogram"]
    assert blocks(w, "text")[0]["text"] == "[ 0  3  6  9 12]"


def test_arrow_keys_in_the_view_move_examples_in_rank_order_and_steps():
    w = inspect(pipeline(), list(range(30)))
    w.canvas._handle_custom_msg({"type": "navigate", "what": "example", "delta": 1}, [])
    assert w.state.example == 1
    w.canvas._handle_custom_msg({"type": "navigate", "what": "example", "delta": -1}, [])
    w.canvas._handle_custom_msg({"type": "navigate", "what": "example", "delta": -1}, [])
    assert w.state.example == 0  # stops at the first
    w.set_examples([21, 4, 9])
    w.canvas._handle_custom_msg({"type": "navigate", "what": "example", "delta": 1}, [])
    assert w.state.example == 4 and w.example_picker.value == 4
    w.canvas._handle_custom_msg({"type": "navigate", "what": "step", "delta": 1}, [])
    assert w.state.step == w.state.steps[1] and w.step_picker.value == w.state.steps[1].key
    w.canvas._handle_custom_msg({"type": "navigate", "what": "everything", "delta": 5}, [])  # ignored
    assert w.state.example == 4
