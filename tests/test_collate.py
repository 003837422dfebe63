"""collate and uncollate are inverse on the structures a forward pass produces."""

from collections import namedtuple

import numpy as np
import pytest
import torch

from workbench.collate import collate, uncollate

Pair = namedtuple("Pair", "a b")


def test_tensors_stack_and_unbind():
    items = [torch.full((2,), float(i)) for i in range(3)]
    b = collate(items)
    assert b.shape == (3, 2)
    assert all(torch.equal(x, y) for x, y in zip(uncollate(b), items))


def test_nested_structures_round_trip():
    items = [Pair(torch.tensor([i]), {"k": torch.tensor(float(i))}) for i in range(4)]
    back = uncollate(collate(items))
    assert len(back) == 4 and type(back[0]) is Pair
    assert torch.equal(back[2].a, torch.tensor([2])) and back[2].b["k"].item() == 2.0


def test_strings_and_numbers():
    assert collate(["a", "b"]) == ["a", "b"] and uncollate(["a", "b"]) == ["a", "b"]
    assert torch.equal(collate([1, 2]), torch.tensor([1, 2]))
    assert [float(x) for x in uncollate(collate([1.5, 2.5]))] == [1.5, 2.5]
    assert torch.equal(collate([np.zeros(2), np.ones(2)]), torch.tensor([[0.0, 0.0], [1.0, 1.0]], dtype=torch.float64))


def test_uncollate_errors_name_the_problem():
    with pytest.raises(ValueError, match="no batch dimension"):
        uncollate(torch.tensor(1.0))
    with pytest.raises(ValueError, match="different batch sizes"):
        uncollate((torch.zeros(2), torch.zeros(3)))
    with pytest.raises(TypeError, match="cannot split a set"):
        uncollate({1, 2})
