"""trace(): every step's output, in order, with positions, names and stages; exact final output; hooks."""

import pytest
import torch

from workbench import IfInfer, IfTrain, Try, batch, trace, transform, unbatch
from workbench.inspector import Trace, pipeline_steps

nn = transform(torch.nn)


def same(a, b):
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(inplace=True),
                                            torch.nn.MaxPool2d(2))
        self.drop = torch.nn.Dropout(0.5)
        self.head = torch.nn.Linear(4 * 4 * 4, 3)

    def forward(self, x):
        return self.head(self.drop(self.features(x).flatten(1)))


@transform
def to_image(x):
    return torch.as_tensor(x, dtype=torch.float32).reshape(1, 8, 8)


@transform
def softmax(x):
    return torch.softmax(x, 0)


def cnn_pipeline():
    net = transform(Net())
    return to_image - "image" >> batch >> net - "net" >> unbatch >> ((softmax - "probs") + (transform(torch.argmax) - "label"))


def test_final_output_equals_infer_apply_for_every_composite():
    plus = transform(lambda x: x + 1)
    double = transform(lambda x: x * 2)
    fail_big = transform(lambda x: x + 100 if x < 10 else (_ for _ in ()).throw(ValueError("too big")))
    pipelines = [
        (cnn_pipeline(), torch.rand(64)),
        (plus >> double + plus >> (double / plus), 3),
        (~plus >> transform(sum), [1, 2, 3]),
        (IfTrain(plus, double) >> IfInfer(plus, double), 5),
        (Try(fail_big, transform(lambda x: -1), ValueError) >> plus, 12),
        (Try(fail_big, transform(lambda x: -1), ValueError, else_=double, finally_=plus), 3),
        ((plus >> double) - "group" >> plus, 1),
    ]
    for pl, x in pipelines:
        t = trace(pl, x)
        assert same(t.output, pl.infer_apply(x)), pl
        assert same(t[()].output, t.output)
        assert t[-1].path == ()  # the whole pipeline finishes last


def test_records_have_order_positions_names_and_stages():
    pl = cnn_pipeline()
    t = trace(pl, torch.rand(64))
    assert [(r.where, r.stage) for r in t] == [
        ("[0]", "preprocess"), ("[1]", "forward"), ("[2]", "forward"), ("[3]", "postprocess"),
        ("[4][0]", "postprocess"), ("[4][1]", "postprocess"), ("[4]", "postprocess"), ("(pipeline)", "postprocess"),
    ]
    assert t[0].name == "image" and t["image"] is t[0] and t[(0,)] is t[0]
    assert t["net"].path == (2,) and t["net"].output.shape == (1, 3)
    assert t["probs"].path == (4, 0) and t[(4, 1)].name == "label"
    assert t["batch"].output.shape == (1, 1, 8, 8)
    assert t["unbatch"].output.shape == (3,)
    assert torch.allclose(t["probs"].output.sum(), torch.tensor(1.0))
    with pytest.raises(KeyError, match="no step named 'nope'.*'image'"):
        t["nope"]
    with pytest.raises(KeyError, match="no step at position"):
        t[(9, 9)]
    # The static structure lists the same steps (plus nothing that did not run here).
    assert {s.key for s in pipeline_steps(pl)} == {r.key for r in t}


def test_map_if_and_try_records():
    plus = transform(lambda x: x + 1) - "plus"
    t = trace(~plus, [1, 2, 3])
    assert t["plus"].mapped and t["plus"].output == [2, 3, 4] and t["plus"].calls == 3

    t = trace(IfTrain(transform(lambda x: x * 100) - "aug") >> plus, 1)
    assert t.output == 2
    assert t.get(((0, 0), None)) is None  # the train branch did not run
    assert t[(0,)].note.startswith("else branch")

    bad = transform(lambda x: int(x)) - "parse"
    t = trace(Try(bad, transform(lambda x: -1) - "fallback", ValueError), "twelve")
    assert t.output == -1 and t["fallback"].output == -1
    assert t[()].note == "caught ValueError: invalid literal for int() with base 10: 'twelve'"
    assert t.get(((0,), None)) is None


def test_recorded_outputs_are_copies_unaffected_by_later_in_place_steps():
    @transform
    def add_in_place(x):
        return x.add_(10)

    pl = transform(lambda x: x.clone()) - "copy" >> add_in_place - "bump"
    t = trace(pl, torch.zeros(3))
    assert torch.equal(t["copy"].output, torch.zeros(3))
    assert torch.equal(t["bump"].output, torch.full((3,), 10.0))


def test_layers_records_submodule_outputs_and_removes_hooks():
    pl = cnn_pipeline()
    net = pl["net"]
    x = torch.rand(64)
    t = trace(pl, x, layers=True)
    modules = {r.module for r in t if r.module}
    assert modules == {"features", "features.0", "features.1", "features.2", "drop", "head"}
    image = x.float().reshape(1, 1, 8, 8)
    with torch.no_grad():
        conv = net.features[0](image)
    # The conv output is kept as it was, before the in-place ReLU ran on it.
    assert torch.equal(t["features.0"].output, conv)
    assert torch.equal(t["features.1"].output, torch.relu(conv))
    assert t["features.0"].path == (2,) and t["features.0"].stage == "forward"
    assert same(t.output, pl.infer_apply(x))
    assert all(not m._forward_hooks for m in net.modules())
    assert not any(r.output.requires_grad for r in t if isinstance(r.output, torch.Tensor))


def test_hooks_are_released_when_a_layer_raises():
    class Exploding(torch.nn.Module):
        def forward(self, x):
            raise RuntimeError("boom inside the layer")

    class Outer(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.ok = torch.nn.Linear(2, 2)
            self.bad = Exploding()

        def forward(self, x):
            return self.bad(self.ok(x))

    outer = transform(Outer())
    pl = transform(torch.tensor) >> outer - "outer"
    with pytest.raises(RuntimeError, match="boom inside the layer") as traced:
        trace(pl, [1.0, 2.0], layers=True)
    assert all(not m._forward_hooks for m in outer.modules())
    with pytest.raises(RuntimeError) as applied:
        pl.infer_apply([1.0, 2.0])
    assert traced.value.__notes__ == applied.value.__notes__
    assert "in step [1] 'outer'" in traced.value.__notes__[0]


def test_errors_match_infer_apply_and_partial_traces_keep_what_ran():
    from workbench.inspector.tracing import _run

    pl = transform(lambda x: x + 1) - "inc" >> (transform(lambda x: x) / transform(lambda x: x)) - "pair"
    with pytest.raises(TypeError, match="2 branches and needs a tuple of 2 values; got int") as traced:
        trace(pl, 1)
    with pytest.raises(TypeError) as applied:
        pl.infer_apply(1)
    assert str(traced.value) == str(applied.value) and traced.value.__notes__ == applied.value.__notes__
    partial = _run(pl, 1, layers=False)
    assert isinstance(partial.error, TypeError) and partial["inc"].output == 2 and partial.output is None


def test_runs_in_infer_mode_without_grad_and_leaves_grad_mode_alone():
    pl = cnn_pipeline()
    pl["net"].train()
    x = torch.rand(64)
    outs = [trace(pl, x).output[0] for _ in range(3)]
    assert all(torch.equal(o, outs[0]) for o in outs)  # dropout off
    assert torch.is_grad_enabled()


def test_repr_and_html_name_the_steps():
    t = trace(cnn_pipeline(), torch.rand(64), layers=True)
    text = repr(t)
    assert "[0] image" in text and "features.0" in text and "tensor(1, 3)" in text
    page = t._repr_html_()
    assert "<table" in page and "features.0" in page and "forward" in page
    assert isinstance(t, Trace) and len(t) == len(list(t))


def test_trace_rejects_non_pipelines():
    with pytest.raises(TypeError, match="needs a workbench pipeline"):
        trace(lambda x: x, 1)


# --- random pipelines: the trace's output is infer_apply's, and every node that ran has one record ------

from hypothesis import given, settings
from hypothesis import strategies as st

from workbench import Compose, Map, Parallel, Rollout

@transform
def inc(x):
    return x + 1


@transform
def triple(x):
    return x * 3


@transform
def neg(x):
    return -x


@transform
def odd_only(x):
    if x % 2 == 0:
        raise ValueError("even")
    return x


@transform
def total(xs):
    return sum(xs)


@transform
def pair(x):
    return (x, x * 2)


@transform
def spread(x):
    return [x, x + 1]


@transform
def difference(t):
    return t[0] - t[1]


_LEAVES = [inc, triple, neg, odd_only]


def _trees():
    leaf = st.sampled_from(_LEAVES)

    def extend(children):
        return st.one_of(
            st.lists(children, min_size=2, max_size=3).map(Compose),
            st.lists(children, min_size=2, max_size=3).map(Rollout).map(lambda r: r >> total),
            children.map(Map).map(lambda m: spread >> m >> total),
            st.lists(children, min_size=2, max_size=2).map(Parallel).map(lambda p: pair >> p >> difference),
            st.tuples(children, children).map(lambda ab: IfTrain(ab[0], ab[1])),
            st.tuples(children, children).map(lambda ab: Try(ab[0], ab[1], ValueError)),
        )

    return st.recursive(leaf, extend, max_leaves=8)


@settings(max_examples=200, deadline=None)
@given(_trees(), st.integers(-20, 20))
def test_random_pipelines_trace_exactly_like_infer_apply(pl, x):
    try:
        expected = pl.infer_apply(x)
    except ValueError as exc:
        with pytest.raises(ValueError) as traced:
            trace(pl, x)
        assert traced.value.__notes__ == exc.__notes__
        return
    t = trace(pl, x)
    assert t.output == expected and t[()].output == expected
    keys = [r.key for r in t]
    assert len(keys) == len(set(keys))  # one record per step (map steps hold a list)
    known = {s.key for s in pipeline_steps(pl)}
    assert set(keys) <= known
