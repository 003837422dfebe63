"""The pipeline algebra: composition, rollout, parallel, map, naming, indexing, stages, control flow."""

import pytest
import torch

from workbench import (
    Compose,
    IfEval,
    IfInfer,
    IfTrain,
    Map,
    Parallel,
    Rollout,
    Try,
    batch,
    identity,
    step_name,
    transform,
    unbatch,
)


@transform
def plus_one(x):
    return x + 1


@transform
def times_two(x):
    return x * 2


@transform
def fail_on_three(x):
    if x == 3:
        raise ValueError("three is not allowed")
    return x


def test_compose_applies_left_to_right():
    assert (plus_one >> times_two)(3) == 8
    assert (times_two >> plus_one)(3) == 7


def test_compose_flattens_unnamed_but_keeps_named_groups():
    pl = plus_one >> times_two >> plus_one
    assert isinstance(pl, Compose) and len(pl) == 3
    grouped = (plus_one >> times_two) - "inner"
    outer = grouped >> plus_one
    assert len(outer) == 2 and outer[0] is grouped
    assert outer["inner"] is grouped


def test_rollout_parallel_map():
    assert (plus_one + times_two)(5) == (6, 10)
    assert (plus_one / times_two)((1, 2)) == (2, 4)
    assert (~plus_one)([1, 2, 3]) == [2, 3, 4]
    assert isinstance(plus_one + times_two + plus_one, Rollout)
    assert len(plus_one + times_two + plus_one) == 3
    assert len(plus_one / times_two / plus_one) == 3
    assert isinstance(~plus_one, Map)


def test_parallel_checks_input_arity():
    with pytest.raises(TypeError, match="2 branches and needs a tuple of 2 values; got tuple of length 3"):
        (plus_one / times_two)((1, 2, 3))
    with pytest.raises(TypeError, match="got int"):
        (plus_one / times_two)(4)


def test_operators_accept_plain_callables_on_either_side():
    assert (plus_one >> (lambda x: x - 10))(1) == -8
    assert ((lambda x: x - 10) >> plus_one)(1) == -8
    assert (str + plus_one)(1) == ("1", 2)
    with pytest.raises(TypeError, match="cannot combine a pipeline with int"):
        plus_one >> 3


def test_named_copy_leaves_original_untouched():
    named = plus_one - "inc"
    assert step_name(named) == "inc" and step_name(plus_one) is None
    assert named(1) == 2
    pl = named >> times_two
    assert pl["inc"] is named


def test_indexing_slicing_len():
    pl = plus_one >> times_two >> (plus_one - "last")
    assert len(pl) == 3
    assert pl[1] is times_two
    assert step_name(pl[-1]) == "last"
    sub = pl[1:]
    assert isinstance(sub, Compose) and len(sub) == 2 and sub(1) == 3
    with pytest.raises(KeyError, match="no step named 'nope'.*named steps: \\['last', 'plus_one', 'times_two'\\]"):
        pl["nope"]
    assert pl[0:0](5) == 5  # an empty composition is the identity


def test_identity():
    assert identity(object) is object
    assert (identity + plus_one)(1) == (1, 2)


def test_stages_split_at_markers():
    pl = plus_one >> batch >> times_two >> unbatch >> plus_one
    pre, fwd, post = pl.stages
    assert list(pre) == [plus_one, batch] and fwd is times_two and list(post) == [unbatch, plus_one]
    no_markers = plus_one >> times_two
    assert no_markers.stages.forward is no_markers
    assert no_markers.stages.preprocess is identity and no_markers.stages.postprocess is identity


def test_stages_through_branches():
    left = plus_one >> batch >> times_two
    right = times_two >> batch >> plus_one
    pl = (left + right) >> unbatch
    pre, fwd, post = pl.stages
    assert isinstance(pre, Rollout) and [b[-1] for b in pre] == [batch, batch]
    assert [t.tolist() for t in pre(1)] == [[2], [2]]  # a batch of one per branch
    assert isinstance(fwd, Parallel) and fwd((2, 2)) == (4, 3)
    assert post is unbatch


def test_stage_errors_are_clear():
    with pytest.raises(ValueError, match="'batch' cannot come in the forward stage"):
        (batch >> plus_one >> batch).stages
    with pytest.raises(ValueError, match="'unbatch' cannot come in the preprocess stage"):
        (plus_one >> unbatch >> batch).stages
    with pytest.raises(ValueError, match="disagree on batch/unbatch"):
        ((plus_one >> batch) + plus_one >> batch).stages
    with pytest.raises(ValueError, match="inside the Map step"):
        (~(plus_one >> batch)).stages


def test_markers_collate_and_split_a_single_item():
    pl = transform(torch.tensor) >> batch >> transform(lambda b: b.shape) 
    assert pl([1.0, 2.0]) == torch.Size([1, 2])
    back = transform(torch.tensor) >> batch >> unbatch
    assert torch.equal(back([1.0, 2.0]), torch.tensor([1.0, 2.0]))


def test_if_mode_branches_follow_apply_mode():
    pl = IfTrain(plus_one, times_two)
    assert pl.infer_apply(5) == 10
    assert list(pl.eval_apply([5], batch_size=1)) == [10]
    assert list(pl.train_apply([5], batch_size=1)) == [6]
    assert list(IfEval(plus_one).eval_apply([5])) == [6]
    assert IfEval(plus_one).infer_apply(5) == 5
    assert IfInfer(plus_one).infer_apply(5) == 6
    assert list(IfInfer(plus_one).train_apply([5])) == [5]


def test_try_catch_else_finally():
    safe = Try(fail_on_three, transform(lambda x: -x), ValueError, else_=plus_one, finally_=times_two)
    assert safe(2) == (2 + 1) * 2
    assert safe(3) == -3 * 2
    other = Try(fail_on_three, identity, KeyError)
    with pytest.raises(ValueError, match="three is not allowed"):
        other(3)


def test_error_names_step_position_and_item():
    pl = plus_one >> (times_two + (fail_on_three - "checker")) >> identity
    with pytest.raises(ValueError) as info:
        pl.infer_apply(2)
    note = info.value.__notes__[-1]
    assert "in step [1][1] 'checker'" in note and "on input 2" in note
    with pytest.raises(ValueError) as info:
        list(pl.eval_apply([0, 1, 2, 5], batch_size=2))
    assert "in step [1][1] 'checker' on item 2" in info.value.__notes__[-1]


def test_shape_error_between_steps_names_the_layer():
    nn = transform(torch.nn)
    pl = transform(torch.tensor) >> batch >> (nn.Linear(3, 2) - "head") >> unbatch
    with pytest.raises(RuntimeError) as info:
        pl.infer_apply([1.0, 2.0])
    assert "in step [2] 'head'" in info.value.__notes__[-1]


def test_error_in_forward_stage_of_eval_apply_names_the_batch():
    bad = transform(lambda b: b if b.shape[0] < 3 else b.reshape(-1, 7))
    pl = transform(torch.zeros) >> batch >> (bad - "reshape") >> unbatch
    with pytest.raises(RuntimeError) as info:
        list(pl.eval_apply([2] * 5, batch_size=4))
    assert "in step [2] 'reshape' on the batch of items 0, 1, 2, 3" in info.value.__notes__[-1]
