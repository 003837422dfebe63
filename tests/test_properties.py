"""Property-based tests of the algebra: associativity, apply equivalence, plain-Python meanings."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench import batch, transform, unbatch

# A small vocabulary of deterministic integer functions to build random pipelines from.
FUNCTIONS = [
    transform(lambda x: x + 1),
    transform(lambda x: x * 3),
    transform(lambda x: x - 7),
    transform(lambda x: x // 2),
    transform(abs),
    transform(lambda x: x % 11),
]
PLAIN = [t.fn for t in FUNCTIONS]

indices = st.integers(min_value=0, max_value=len(FUNCTIONS) - 1)
ints = st.integers(min_value=-10**6, max_value=10**6)


@settings(max_examples=200, deadline=None)
@given(indices, indices, indices, ints)
def test_compose_is_associative(a, b, c, x):
    fa, fb, fc = FUNCTIONS[a], FUNCTIONS[b], FUNCTIONS[c]
    left = (fa >> fb) >> fc
    right = fa >> (fb >> fc)
    expected = PLAIN[c](PLAIN[b](PLAIN[a](x)))
    assert left(x) == right(x) == expected
    assert left.infer_apply(x) == right.infer_apply(x) == expected


@settings(max_examples=100, deadline=None)
@given(st.lists(indices, min_size=1, max_size=4), st.lists(indices, min_size=1, max_size=4), ints)
def test_rollout_and_parallel_mean_what_python_means(left_ids, right_ids, x):
    left = _chain(left_ids)
    right = _chain(right_ids)
    assert (left + right)(x) == (_plain(left_ids, x), _plain(right_ids, x))
    assert (left / right)((x, x + 1)) == (_plain(left_ids, x), _plain(right_ids, x + 1))


@settings(max_examples=100, deadline=None)
@given(st.lists(indices, min_size=1, max_size=4), st.lists(ints, max_size=20))
def test_map_means_a_list_comprehension(ids, xs):
    t = _chain(ids)
    assert (~t)(xs) == [_plain(ids, x) for x in xs]
    assert (~t).infer_apply(xs) == [_plain(ids, x) for x in xs]


@settings(max_examples=60, deadline=None)
@given(st.lists(indices, max_size=3), st.lists(indices, max_size=3), st.lists(indices, max_size=3),
       st.lists(ints, min_size=1, max_size=25), st.integers(min_value=1, max_value=8))
def test_eval_apply_equals_infer_apply_per_item(pre_ids, fwd_ids, post_ids, xs, batch_size):
    to_tensor = transform(lambda x: torch.tensor(x))
    pl = (_chain(pre_ids) >> to_tensor >> batch >> _chain(fwd_ids) >> unbatch
          >> transform(lambda t: int(t)) >> _chain(post_ids))
    expected = [pl.infer_apply(x) for x in xs]
    assert list(pl.eval_apply(xs, batch_size=batch_size)) == expected
    assert expected == [_plain(post_ids, _plain(fwd_ids, _plain(pre_ids, x))) for x in xs]


def _chain(ids):
    pl = transform(lambda x: x)
    for i in ids:
        pl = pl >> FUNCTIONS[i]
    return pl


def _plain(ids, x):
    for i in ids:
        x = PLAIN[i](x)
    return x
