"""Batching items of different sizes: ``batch.pad`` and ``batch.collate``, and how collating fails."""

import pickle
import subprocess
import sys

import pytest
import torch

import workbench
from workbench import Batch, batch, transform, unbatch
from workbench.collate import pad_collate


def _pairs(items):
    """A user collate function: pads the ids by hand, stacks the labels."""
    ids = torch.nn.utils.rnn.pad_sequence([i for i, _ in items], batch_first=True, padding_value=-1)
    return ids, torch.tensor([y for _, y in items])


def test_pad_collate_pads_every_dimension_and_structures():
    a, b = torch.ones(2, 3), torch.ones(4, 1)
    out = pad_collate([a, b], value=-1)
    assert out.shape == (2, 4, 3)
    assert out[0, 2:].eq(-1).all() and out[1, :, 1:].eq(-1).all() and out[1, :, 0].eq(1).all()
    pairs = pad_collate([(torch.tensor([1, 2]), 0), (torch.tensor([3]), 1)])
    assert pairs[0].tolist() == [[1, 2], [3, 0]] and pairs[1].tolist() == [0, 1]
    dicts = pad_collate([{"ids": torch.tensor([1]), "n": 1}, {"ids": torch.tensor([2, 3]), "n": 2}], value=9)
    assert dicts["ids"].tolist() == [[1, 9], [2, 3]] and dicts["n"].tolist() == [1, 2]


def test_pad_refuses_tensors_of_different_rank():
    with pytest.raises(ValueError, match="different numbers of dimensions"):
        pad_collate([torch.ones(2), torch.ones(2, 2)])


@pytest.mark.parametrize("marker", [batch.pad(value=0), batch.collate(lambda items: pad_collate(items, 0))],
                         ids=["pad", "collate"])
@pytest.mark.parametrize("workers", [0, 1])
def test_variable_length_ids_batch_and_unbatch_per_item(marker, workers):
    bag = transform(torch.nn.EmbeddingBag(10, 3, padding_idx=0))
    pl = transform(torch.tensor) >> marker >> bag >> unbatch
    xs = [[1, 2, 3], [4], [5, 6], [7, 8, 9, 1]]
    many = list(pl.eval_apply(xs, batch_size=3, num_workers=workers))
    one = [pl.infer_apply(x) for x in xs]
    assert len(many) == 4 and all(o.shape == (3,) for o in many)
    for a, b in zip(many, one):
        torch.testing.assert_close(a, b)
    assert isinstance(marker, Batch) and pl.stages.forward is bag  # a one-step stage is that step


def test_markers_display_and_stage_like_batch():
    pl = transform(torch.tensor) >> batch.pad(value=-1) >> transform(lambda t: t * 2) >> unbatch
    assert "══ batch.pad(-1) ══" in repr(pl)
    pre, fwd, post = pl.stages  # the stages keep the padding marker itself
    assert len(pre) == 2 and pre[-1] is pl[1] and fwd is pl[2] and post is pl[3]
    with pytest.raises(ValueError, match="at most one batch"):
        (batch.pad(0) >> batch)._wb_split(0)
    with pytest.raises(TypeError, match="needs a number"):
        batch.pad(value="x")


def test_markers_pickle_for_spawned_workers():
    for marker in (batch.pad(value=2), batch.collate(lambda items: items)):
        back = pickle.loads(pickle.dumps(marker))
        assert isinstance(back, Batch) and back._wb_kind().startswith("batch.")
    assert pickle.loads(pickle.dumps(batch)) is batch


def test_collate_fn_loader_option_is_refused_pointing_to_batch_collate():
    pl = transform(torch.tensor) >> batch
    with pytest.raises(TypeError, match=r"batch\.collate\(fn\)"):
        pl.eval_apply([[1]], collate_fn=_pairs)


@pytest.mark.parametrize("workers", [0, 1])
def test_collate_failure_names_step_items_and_shapes(workers):
    pl = transform(torch.tensor) >> batch >> transform(lambda t: t) >> unbatch
    with pytest.raises(RuntimeError) as info:
        list(pl.eval_apply([[1, 2], [3, 4], [5]], batch_size=3, num_workers=workers))
    text = "\n".join(getattr(info.value, "__notes__", [])) + str(info.value)
    assert "in step [1] 'batch'" in text
    assert "items 0, 1, 2" in text
    assert "shape [2] (items 0, 1), shape [1] (item 2)" in text
    assert "batch.pad(value=0)" in text


def test_user_collate_failure_names_the_marker():
    def broken(items):
        raise ValueError("no")

    pl = transform(torch.tensor) >> batch.collate(broken)
    with pytest.raises(ValueError) as info:
        list(pl.eval_apply([[1], [2]]))
    assert "in step [1] 'batch.collate(test_user_collate_failure_names_the_marker.<locals>.broken)'" \
        in info.value.__notes__[-1]


@pytest.mark.slow
def test_bundle_rebuilds_pad_and_user_collate_in_a_fresh_interpreter(tmp_path):
    bag = transform(torch.nn.EmbeddingBag(10, 3))
    ids = transform(lambda pair: (torch.tensor(pair[0]), pair[1]))
    xs = [([1, 2, 3], 0), ([4], 1)]
    pad = transform(torch.tensor) >> batch.pad(value=0) >> bag >> unbatch
    custom = ids >> batch.collate(_pairs) >> transform(lambda b: b[0].clamp(min=0)) >> bag >> unbatch
    workbench.save(pad, tmp_path / "pad.wb", check=[x for x, _ in xs])
    workbench.save(custom, tmp_path / "custom.wb", check=xs)
    source = (tmp_path / "custom.wb" / "source.py").read_text()
    assert "def _pairs(items):" in source and "_wb.batch.collate(_pairs)" in source
    assert "_wb.batch.pad(0)" in (tmp_path / "pad.wb" / "source.py").read_text()
    script = ("import workbench, sys; pl = workbench.load(sys.argv[1]);"
              "print(repr(pl).splitlines()[2]); print(len(list(pl.eval_apply([([1, 2], 0), ([3], 1), ([4, 5, 6], 0)]))))")
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path / "custom.wb")], capture_output=True, text=True,
                         check=True).stdout.split("\n")
    assert out[0].endswith("══ batch.collate(_pairs) ══") and out[1] == "3"
