"""InspectorState: what the inspector shows for known tensors, comparison, PNG export, bounded memory."""

import gc
import io
import weakref

import numpy as np
import pytest
import torch
from PIL import Image

from workbench import IfTrain, transform
from workbench.inspector import InspectorState

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@transform
def maps(i):
    """Example i: 20 feature maps of 4x4 with known values (example 3 has NaN and Inf)."""
    g = torch.Generator().manual_seed(int(i))
    x = torch.randn(20, 4, 4, generator=g)
    if i == 3:
        x[0, 0, 0] = float("nan")
        x[1, 1, 1] = float("inf")
    return x


@transform
def pool(x):
    return torch.nan_to_num(x, nan=0.0, posinf=0.0).mean((1, 2))


@transform
def describe(scores):
    return f"best channel {int(scores.argmax())}"


def pipeline():
    return maps - "maps" >> pool - "scores" >> describe - "text"


def expected_maps(i):
    return maps.fn(i)


def test_summary_matches_the_step_output_for_the_chosen_example():
    state = InspectorState(pipeline(), list(range(10)))
    state.select_step("maps")
    for i in (0, 3, 7):
        state.select_example(i)
        x = expected_maps(i).numpy().astype(np.float64)
        finite = x[np.isfinite(x)]
        s = state.summary()
        assert s.shape == (20, 4, 4) and s.dtype == "float32"
        assert s.min == pytest.approx(finite.min()) and s.max == pytest.approx(finite.max())
        assert s.mean == pytest.approx(finite.mean()) and s.std == pytest.approx(finite.std())
        assert (s.nan_count, s.inf_count) == ((1, 1) if i == 3 else (0, 0))


def panel_titles(fig):
    return [t.get_text() for ax in fig.axes for t in ax.texts if t.get_text().startswith("ch ")]


def test_feature_map_panels_in_the_figure():
    state = InspectorState(pipeline(), list(range(10)), max_panels=16)
    state.select_step("maps")
    layout = state.image_layout()
    assert layout.shown == 16 and layout.note == "showing 16 of 20 channels"
    fig = state.figure()
    assert panel_titles(fig) == [f"ch {c}" for c in range(16)]
    assert any(ax.get_xlabel() == "showing 16 of 20 channels" for ax in fig.axes)
    image = next(ax.images[0] for ax in fig.axes if ax.images)
    assert image.get_array().shape[:2] == (4 * 4 + 3, 4 * 4 + 3)  # a 4x4 grid of 4x4 panels, 1-pixel gaps
    state.set_compare(5)
    assert len(panel_titles(state.figure())) == 32
    state.set_compare(None)
    state.options.max_panels = 4
    assert panel_titles(state.figure()) == ["ch 0", "ch 1", "ch 2", "ch 3"]


def test_nan_pixels_are_marked_in_the_feature_map_mosaic():
    from workbench.inspector.views import _mosaic

    panels = [np.array([[0.0, 1.0], [np.nan, 0.5]], dtype=np.float32), np.zeros((2, 2), np.float32)]
    mosaic, origins = _mosaic(panels)
    assert mosaic.shape == (2, 5, 4) and origins == [(-0.5, -0.5), (-0.5, 2.5)]
    assert np.allclose(mosaic[1, 0], (0.84, 0.15, 0.16, 1.0))      # NaN: red
    assert np.allclose(mosaic[:, 2], 1.0)                          # the gap: white


def test_top_k_and_text_views():
    names = [f"ch{c}" for c in range(20)]
    state = InspectorState(pipeline(), list(range(10)), class_names=names, top_k=3)
    state.select_example(4)
    state.select_step("scores")
    means = expected_maps(4).mean((1, 2))
    order = torch.sort(means, descending=True, stable=True).indices[:3].tolist()
    k = state.top_k()
    assert state.kind == "scores" and k.indices == order and k.labels == [f"ch{c}" for c in order]
    assert k.values == pytest.approx(means[order].tolist())
    assert state.image_layout() is None and state.text() is None
    state.select_step("text")
    assert state.kind == "text" and state.text() == f"best channel {int(means.argmax())}"
    assert state.top_k() is None


def test_steps_that_did_not_run_and_failing_examples_explain_themselves():
    @transform
    def reciprocal(x):
        if x == 0:
            raise ZeroDivisionError("example zero has no reciprocal")
        return 1 / x

    pl = IfTrain(transform(lambda x: x * 2) - "augment") >> reciprocal - "recip"
    state = InspectorState(pl, [0, 1, 2])
    state.select_step("augment")
    state.select_example(1)
    value, message = state.output()
    assert value is None and "did not run for example 1" in message
    assert state.summary() is None
    state.select_step("recip")
    state.select_example(0)
    value, message = state.output()
    assert "failed on example 0" in message and "ZeroDivisionError: example zero has no reciprocal" in message
    assert "in step [1] 'recip'" in message
    assert state.figure() is not None  # the message is drawn instead of the views


def test_selection_by_name_path_and_errors():
    state = InspectorState(pipeline(), list(range(5)))
    assert state.select_step("scores").path == (1,)
    assert state.select_step((2,)).name == "text"
    assert state.select_step("[0]").name == "maps"
    assert state.select_step(()).path == ()
    with pytest.raises(KeyError, match="no step 'conv9'.*'maps'"):
        state.select_step("conv9")
    with pytest.raises(IndexError, match="example 5 is out of range: there are 5 inputs"):
        state.select_example(5)
    with pytest.raises(TypeError, match="integer index, got 2.5"):
        state.select_example(2.5)
    state.select_example(np.int64(2))
    assert state.example == 2 and type(state.example) is int
    state.select_example(-1)
    assert state.example == 4
    with pytest.raises(ValueError, match="cache_size must be an integer of at least 2"):
        InspectorState(pipeline(), [1], cache_size=1)
    with pytest.raises(ValueError, match="inputs is empty"):
        InspectorState(pipeline(), [])


def test_parts_of_tuple_outputs():
    pl = transform(lambda x: (torch.full((3,), float(x)), f"item {x}"))
    state = InspectorState(pl, [7])
    assert state.parts() == ["[0]", "[1]"] and state.kind == "scores"
    state.select_part(1)
    assert state.kind == "text" and state.text() == "item 7"
    with pytest.raises(IndexError, match="part 2 is out of range"):
        state.select_part(2)


def test_set_examples_feeds_a_ranked_list():
    state = InspectorState(pipeline(), list(range(50)))
    seen = []
    state.subscribe(lambda s, what: seen.append(what))
    state.set_examples([17, 3, 42], labels=["loss 2.1", "loss 1.7", "loss 0.9"])
    assert state.examples == [17, 3, 42] and state.example == 17
    assert state.example_label(3) == "example 3 · loss 1.7"
    assert seen == ["examples", "example"]
    pd = pytest.importorskip("pandas")
    state.set_examples(pd.DataFrame({"index": [8, 9], "loss": [1.0, 0.5]}))
    assert state.examples == [8, 9] and state.example == 8
    with pytest.raises(ValueError, match="got 2 indices but 1 labels"):
        state.set_examples([1, 2], labels=["x"])
    with pytest.raises(IndexError, match="example 99 is out of range"):
        state.set_examples([1, 99])
    state.set_examples(None)
    assert state.examples is None


def test_export_png_writes_a_real_image(tmp_path):
    state = InspectorState(pipeline(), list(range(10)))
    state.select_step("maps")
    path = state.export_png(str(tmp_path / "maps.png"))
    data = open(path, "rb").read()
    assert data[:8] == PNG_SIGNATURE
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG" and image.size == (500, 500)
    assert len(np.unique(np.asarray(image.convert("L")))) > 10  # drawn, not blank
    state.set_compare(2)
    wide = Image.open(state.export_png(str(tmp_path / "compare.png")))
    assert wide.size == (1000, 500)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        state.export_png(str(tmp_path / "missing" / "x.png"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["compare.png", "maps.png"]


def test_default_export_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    state = InspectorState(pipeline(), list(range(10)))
    state.select_step("maps")
    state.select_example(4)
    assert state.export_png() == "inspector-0-4.png"
    assert (tmp_path / "inspector-0-4.png").read_bytes()[:8] == PNG_SIGNATURE


class CountingInputs:
    """10,000 inputs made on demand, counting which ones are read."""

    def __init__(self, n):
        self.n, self.read = n, []

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        self.read.append(i)
        return i


def test_memory_is_bounded_while_browsing_many_examples():
    inputs = CountingInputs(10_000)
    state = InspectorState(pipeline(), inputs, cache_size=4)
    assert inputs.read == []  # nothing traced up front
    rng = np.random.default_rng(0)
    alive, viewed = [], set()
    for step in range(300):
        i = int(rng.integers(0, 10_000))
        state.select_example(i)
        viewed.add(i)
        if step % 3 == 0:
            state.set_compare(int(rng.integers(0, 10_000)))
            viewed.add(state.compare)
        state.summary()
        if state.compare is not None:
            state.summary(state.compare)
        alive.append(weakref.ref(state.trace()))
        assert len(state.cached()) <= 4
    gc.collect()
    assert sum(ref() is not None for ref in alive) <= 4  # evicted traces are freed
    assert set(inputs.read) <= viewed and len(inputs.read) == state.traces_run  # only viewed examples read
    # Revisiting a cached example does not trace it again.
    runs = state.traces_run
    state.select_example(state.cached()[-1])
    state.summary()
    assert state.traces_run == runs


def test_text_with_dollar_signs_is_drawn_literally(tmp_path):
    state = InspectorState(transform(lambda s: s.upper()) - "shout", ["costs $5 and $x_1$ $"],
                           class_names=["$a"])
    state.select_step("shout")
    fig = state.figure()
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert texts == ["COSTS $5 AND $X_1$ $"]
    assert open(state.export_png(str(tmp_path / "t.png")), "rb").read(8) == PNG_SIGNATURE
