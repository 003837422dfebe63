"""Where PADL users would notice: named outputs, the stage rules, default names, device, same, layers."""

import json
import pickle
import re
from pathlib import Path

import cloudpickle
import pytest
import torch

from workbench import Compose, Rollout, Try, batch, identity, same, step_name, transform, unbatch
from workbench.display import describe, to_text
from workbench.pipeline import Batch, Unbatch, output_type
from workbench.predict import to_json

nn = transform(torch.nn)


@transform
def plus_one(x):
    return x + 1


@transform
def times_two(x):
    return x * 2


to_tensor = transform(lambda x: torch.tensor(x, dtype=torch.float32))
torch.manual_seed(0)
model = nn.Linear(2, 3)
argmax = same.argmax().item()


class Scale:
    def __init__(self, k):
        self.k = k

    def __call__(self, x):
        return x * self.k


Scale = transform(Scale)
triple = Scale(3)


# --- 1. named outputs ------------------------------------------------------------------------------


def test_rollout_and_parallel_outputs_are_named_by_their_branches():
    out = (plus_one + times_two)(5)
    assert out.plus_one == 6 and out.times_two == 10
    assert out == (6, 10) and tuple(out) == (6, 10)
    a, b = out
    assert (a, b) == (6, 10)
    par = (plus_one / (times_two - "double"))((1, 2))
    assert par._fields == ("plus_one", "double") and par.double == 4
    anonymous = (transform(lambda x: x) + transform(str))(3)
    assert anonymous._fields == ("out_0", "out_1") and anonymous.out_1 == "3"
    # a name that cannot be a field, or is used twice, falls back to the position
    assert (plus_one + plus_one)(1)._fields == ("out_0", "out_1")
    assert (plus_one + (times_two - "not a field"))(1)._fields == ("plus_one", "out_1")


def test_named_outputs_are_the_same_type_in_every_apply_mode():
    pl = to_tensor >> batch >> model >> unbatch >> (argmax + (same.sum() - "total"))
    direct = pl([1.0, 2.0])
    inferred = pl.infer_apply([1.0, 2.0])
    evaluated = list(pl.eval_apply([[1.0, 2.0], [0.0, 1.0]], batch_size=2))
    trained = list(pl.train_apply([[1.0, 2.0]], batch_size=1))
    assert direct._fields == ("argmax", "total")
    for out in (inferred, evaluated[0], evaluated[1], trained[0]):
        assert type(out) is type(direct)
    assert evaluated[0].argmax == inferred.argmax


def test_named_outputs_survive_collation_and_pickling():
    # a rollout in the preprocess stage: its named tuple is collated, forwarded and split again
    pl = (to_tensor + (transform(lambda x: torch.tensor(len(x))) - "length")) >> batch >> unbatch
    outs = list(pl.eval_apply([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], batch_size=2))
    assert [o._fields for o in outs] == [("to_tensor", "length")] * 3
    assert int(outs[2].length) == 2
    batches = list((pl.stages.preprocess).eval_apply([[1.0, 2.0], [3.0, 4.0]], batch_size=2))
    assert batches[0].to_tensor.shape == (2, 2)
    for copy in (pickle.loads(pickle.dumps(outs[0])), cloudpickle.loads(cloudpickle.dumps(outs[0]))):
        assert type(copy) is type(outs[0]) and torch.equal(copy.to_tensor, outs[0].to_tensor)
    assert output_type(("to_tensor", "length")) is type(outs[0])


def test_named_outputs_in_json():
    named = (plus_one + (times_two - "double"))(1)
    assert json.loads(to_json(named)) == {"plus_one": 2, "double": 2}
    anonymous = (transform(lambda x: x) + transform(lambda x: -x))(1)
    assert json.loads(to_json(anonymous)) == [1, -1]  # nothing to name: a list, as a plain tuple is
    assert json.loads(to_json((1, 2))) == [1, 2]


# --- 2. a pipeline without markers is all forward -------------------------------------------------


def test_pipeline_without_markers_is_all_forward():
    pl = to_tensor >> model
    pre, fwd, post = pl.stages
    assert pre is identity and fwd is pl and post is identity
    assert describe(model)["stage"] == "forward"
    assert {node["stage"] for node in describe(pl)["children"]} == {"forward"}


def test_inputs_move_to_the_layers_device_without_batch():
    layer = torch.nn.Linear(2, 2)
    where = transform(lambda t: t.device.type) + transform(layer.to("meta"))
    x = torch.ones(2)
    assert where.infer_apply(x)[0] == "meta"
    assert [o[0] for o in where.eval_apply([x, x], batch_size=2)] == ["meta", "meta"]


# --- 3. stages keep their markers ---------------------------------------------------------------------


def test_stages_keep_markers_and_compose_back():
    pl = to_tensor >> batch >> model >> unbatch >> (argmax + (same.max().item() - "top"))
    pre, fwd, post = pl.stages
    assert pre[-1] is batch and post[0] is unbatch
    assert fwd is model  # a stage of one step is that step
    one = pre.infer_apply([1.0, 2.0])
    assert one.shape == (1, 2)  # a batch of one, ready for the forward stage
    assert fwd.infer_apply(one).shape == (1, 3)
    again = pre >> fwd >> post
    for x in ([1.0, 2.0], [-3.0, 0.5]):
        assert again.infer_apply(x) == pl.infer_apply(x)
        assert type(again.infer_apply(x)) is type(pl.infer_apply(x))
    assert list(again.eval_apply([[1.0, 2.0]], batch_size=1)) == list(pl.eval_apply([[1.0, 2.0]], batch_size=1))


def test_a_named_node_split_into_stages_keeps_its_name():
    body = (batch >> model >> unbatch) - "body"
    pl = to_tensor >> body >> argmax
    pre, fwd, post = pl.stages
    assert step_name(pre[-1]["body"]) == "body" and step_name(fwd["body"]) == "body"
    assert step_name(post[0]) == "body"


# --- 4. unbatch without batch ------------------------------------------------------------------------


def test_unbatch_without_batch_is_the_identity_per_item():
    pl = times_two >> unbatch
    assert pl.infer_apply(1) == 2
    assert pl(1) == 2
    assert list(pl.eval_apply([1, 2, 3], batch_size=2)) == [2, 4, 6]
    tensors = transform(torch.tensor) >> unbatch >> same.tolist()
    assert tensors.infer_apply([1, 2, 3]) == [1, 2, 3]  # not split: it was never batched
    assert unbatch.infer_apply(5) == 5
    assert (tensors.stages.forward, tensors.stages.postprocess[0]) == (tensors[0], unbatch)


# --- 5. default names --------------------------------------------------------------------------------------


def test_steps_are_found_by_the_variable_they_were_defined_as():
    pl = plus_one >> to_tensor >> triple >> batch >> model >> unbatch >> (times_two - "twice")
    assert pl["plus_one"] is plus_one and pl["to_tensor"] is to_tensor
    assert pl["triple"] is triple and pl["model"] is model
    assert step_name(pl["twice"]) == "twice"
    with pytest.raises(KeyError) as info:
        pl["times_two"]  # the explicit name wins
    message = str(info.value)
    assert "no step named 'times_two'" in message
    assert "['model', 'plus_one', 'to_tensor', 'triple', 'twice']" in message


def test_default_names_survive_save_and_load(tmp_path: Path):
    from workbench import load, save

    pl = to_tensor >> batch >> model >> unbatch >> (argmax + same.sum())
    save(pl, tmp_path / "b")
    loaded = load(tmp_path / "b")
    assert loaded["model"] is not None and loaded["to_tensor"] is not None
    assert loaded.infer_apply([1.0, 2.0])._fields == ("argmax", "out_1")
    assert to_text(loaded) == to_text(pl)


# --- 6. device ----------------------------------------------------------------------------------------------


def test_device_compares_equal_to_strings_and_torch_devices():
    pl = to_tensor >> model
    assert pl.device == "cpu" and pl.device == torch.device("cpu") and torch.device("cpu") == pl.device
    assert pl.device != "cuda:0" and pl.device != "meta"
    assert pl.device.type == "cpu" and pl.device.index is None
    assert torch.ones(1).to(pl.device).device.type == "cpu"
    meta = transform(torch.nn.Linear(1, 1).to("meta"))
    assert meta.device == "meta" and (identity >> meta).device == torch.device("meta")


# --- 8. calling a same expression -------------------------------------------------------------------------


def test_calling_a_same_expression_applies_it_unless_it_ends_in_a_method_name():
    assert same[0]([1, 2, 3]) == 1
    t = torch.tensor([1.5, 2.5])
    assert same.tolist()(t) == t.tolist()
    assert same("x") == "x"
    recorded = same.split(",")
    assert recorded("a,b") == ["a", "b"] and recorded._wb_kind() == "same.split(',')"
    with pytest.raises(TypeError, match="exactly one argument"):
        same[0](1, 2)


# --- 10. new marker instances --------------------------------------------------------------------------------


def test_new_marker_instances_behave_and_pickle_as_themselves():
    pl = to_tensor >> Batch() >> model >> Unbatch() >> argmax
    assert pl.infer_apply([1.0, 2.0]) == (to_tensor >> batch >> model >> unbatch >> argmax).infer_apply([1.0, 2.0])
    mine = Batch()
    assert type(pickle.loads(pickle.dumps(mine))) is Batch and pickle.loads(pickle.dumps(mine)) is not batch
    assert pickle.loads(pickle.dumps(batch)) is batch


# --- 11. structural errors, as documented ---------------------------------------------------------------------

STRUCTURAL_ERRORS = [
    ("batch >> batch", lambda: (plus_one >> batch >> batch).infer_apply(1), ValueError,
     "'batch' cannot come in the forward stage: a pipeline has at most one batch, followed by at most one unbatch"),
    ("unbatch >> unbatch", lambda: (plus_one >> unbatch >> unbatch).infer_apply(1), ValueError,
     "'unbatch' cannot come in the postprocess stage: a pipeline has at most one batch, followed by at most one "
     "unbatch"),
    ("marker inside Try", lambda: list(Try(plus_one >> batch, identity).eval_apply([1])), ValueError,
     "batch/unbatch inside the Try step 'Try' is not supported: put it inside one stage"),
    ("unknown name", lambda: (plus_one >> times_two)["nope"], KeyError,
     "no step named 'nope' in this pipeline; named steps: ['plus_one', 'times_two']"),
    ("transform(2)", lambda: transform(2), TypeError,
     "transform() needs a function, a callable class or instance, a torch.nn.Module or a module; got int 2"),
]


@pytest.mark.parametrize("case", STRUCTURAL_ERRORS, ids=[c[0] for c in STRUCTURAL_ERRORS])
def test_structural_errors_are_the_documented_type_and_message(case):
    what, run, kind, message = case
    with pytest.raises(kind) as info:
        run()
    text = info.value.args[0]
    assert text == message
    docs = (Path(__file__).parents[1] / "docs" / "pipeline.md").read_text()
    row = next(line for line in docs.splitlines() if line.startswith(f"| {what} |") or line.startswith(f"| `{what}` |"))
    assert f"`{kind.__name__}`" in row and re.sub(r"\s+", " ", message) in row.replace("`", "")


# --- 12. whole-pipeline parameters and layers --------------------------------------------------------------------


def test_pipeline_parameters_and_layers_list_each_layer_once():
    shared = nn.Linear(3, 3)
    head = nn.Linear(3, 2)
    pl = to_tensor >> batch >> shared >> shared >> (head + head) >> unbatch
    assert pl.layers == [shared, head]
    params = list(pl.parameters())
    assert len(params) == 4 and {id(p) for p in params} == {id(p) for m in (shared, head) for p in m.parameters()}
    optimizer = torch.optim.SGD(pl.parameters(), lr=0.1)
    before = head.weight.detach().clone()
    loss = sum(out.sum() for out in next(iter(pl.train_apply([[1.0, 2.0, 3.0]], batch_size=1))))
    loss.backward()
    optimizer.step()
    assert not torch.equal(head.weight, before)
    assert list(head.parameters()) == list(transform(head).parameters())


def test_a_layer_with_a_submodule_called_layers_keeps_it():
    class Stack(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = torch.nn.ModuleList([torch.nn.Linear(2, 2)])

        def forward(self, x):
            return self.layers[0](x)

    stack = transform(Stack())
    assert isinstance(stack.layers, torch.nn.ModuleList)
    assert (to_tensor >> stack).layers == [stack]
