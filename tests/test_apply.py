"""infer_apply / eval_apply / train_apply: stages, modes, grad, loaders, workers, devices, progress."""

import os
import subprocess
import sys
import textwrap
import threading

import pytest
import torch

from workbench import IfEval, IfInfer, IfTrain, batch, current_mode, identity, same, transform, unbatch
from workbench.mode import apply_mode

nn = transform(torch.nn)


def classifier():
    to_tensor = transform(lambda x: torch.tensor(x, dtype=torch.float32))
    model = nn.Sequential(torch.nn.Linear(2, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    return to_tensor >> batch >> model >> unbatch >> same.argmax().item(), model


XS = [[float(i), float(-i) / 3] for i in range(10)]


def test_eval_apply_equals_infer_apply_and_has_len():
    pl, _ = classifier()
    outs = pl.eval_apply(XS, batch_size=4)
    assert len(outs) == 10
    assert list(outs) == [pl.infer_apply(x) for x in XS]
    assert all(type(o) is int for o in outs)


def test_outputs_have_the_same_type_however_applied():
    pl = transform(lambda x: torch.tensor(x)) >> batch >> transform(lambda b: (b * 2, {"s": b.sum(1)})) >> unbatch
    one = pl.infer_apply([1.0, 2.0])
    many = list(pl.eval_apply([[1.0, 2.0], [3.0, 4.0]], batch_size=2))
    assert type(one) is type(many[0]) is tuple
    assert type(one[0]) is type(many[0][0]) is torch.Tensor and one[0].shape == many[0][0].shape
    assert type(one[1]) is dict and torch.equal(one[1]["s"], many[0][1]["s"])


def test_without_unbatch_outputs_are_batches():
    pl = transform(torch.tensor) >> batch >> transform(lambda b: b * 2)
    outs = pl.eval_apply([[1], [2], [3]], batch_size=2)
    assert len(outs) == 2
    batches = list(outs)
    assert [b.shape for b in batches] == [(2, 1), (1, 1)]
    assert pl.infer_apply([5]).shape == (1, 1)


def test_without_batch_the_whole_pipeline_runs_per_item():
    pl = transform(lambda x: x + 1) >> transform(str)
    outs = pl.eval_apply(range(5), batch_size=2)
    assert len(outs) == 5 and list(outs) == ["1", "2", "3", "4", "5"]


def test_eval_apply_accepts_iterables_and_reiterates():
    pl, _ = classifier()
    outs = pl.eval_apply(iter(XS), batch_size=3)
    first, second = list(outs), list(outs)
    assert first == second and len(first) == 10
    assert next(outs) == first[0] and next(outs) == first[1]


def test_grad_and_layer_modes_per_apply():
    seen = []
    record = transform(lambda b: seen.append((current_mode(), torch.is_grad_enabled())) or b)
    model = nn.Dropout(0.5)
    pl = transform(torch.ones) >> batch >> record >> model >> unbatch
    pl.infer_apply(4)
    list(pl.eval_apply([4], batch_size=1))
    out = list(pl.train_apply([4] * 20, batch_size=4))
    assert seen[0] == ("infer", False) and seen[1] == ("eval", False)
    assert set(seen[2:]) == {("train", True)}
    assert any((o == 0).any() for o in out)  # dropout active in training
    assert torch.equal(pl.infer_apply(4), torch.ones(4))  # and off again afterwards
    assert not model.training


def test_train_apply_outputs_carry_grad_and_settings_do_not_leak():
    layer = nn.Linear(2, 1)
    pl = transform(torch.tensor) >> batch >> layer
    torch.set_grad_enabled(True)
    with torch.no_grad():
        for out in pl.train_apply([[1.0, 2.0]] * 4, batch_size=2):
            assert out.requires_grad
            assert not torch.is_grad_enabled()  # the caller's own setting inside the loop
            assert current_mode() == "infer"
    for out in pl.eval_apply([[1.0, 2.0]] * 4, batch_size=2):
        assert not out.requires_grad
        assert torch.is_grad_enabled()


def test_training_loop_updates_the_shared_model():
    pl, model = classifier()
    train = (transform(lambda xy: torch.tensor(xy[0], dtype=torch.float32)) + transform(lambda xy: xy[1])) \
        >> batch >> (model / identity)
    data = [(x, i % 3) for i, x in enumerate(XS)]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    before = model[0].weight.detach().clone()
    for logits, targets in train.train_apply(data, batch_size=5):
        loss = torch.nn.functional.cross_entropy(logits, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert not torch.equal(before, model[0].weight)


def test_loader_options_pass_through():
    pl = transform(lambda x: x) >> batch >> identity >> unbatch
    shuffled = pl.eval_apply(list(range(20)), batch_size=4, shuffle=True,
                             generator=torch.Generator().manual_seed(1))
    values = [int(v) for v in shuffled]
    assert sorted(values) == list(range(20)) and values != list(range(20))
    dropped = pl.eval_apply(list(range(10)), batch_size=4, drop_last=True)
    assert len(dropped) == 8 and len(list(dropped)) == 8
    sampled = pl.eval_apply(list(range(10)), batch_size=3, sampler=[9, 8, 7])
    assert len(sampled) == 3 and [int(v) for v in sampled] == [9, 8, 7]
    pinned = pl.eval_apply(list(range(6)), batch_size=4, pin_memory=False, timeout=0)
    assert [int(v) for v in pinned] == list(range(6))
    with pytest.raises(TypeError):
        list(pl.eval_apply([1], batch_size=1, no_such_option=1))
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        pl.eval_apply([1], batch_size=0)


def test_progress_bar(capsys):
    pl, _ = classifier()
    list(pl.eval_apply(XS, batch_size=4, progress=True))
    err = capsys.readouterr().err
    assert "eval_apply" in err and "10/10" in err


def test_mode_is_per_thread():
    barrier = threading.Barrier(2)
    seen = {}

    def probe(tag):
        def fn(x):
            barrier.wait(timeout=5)
            seen.setdefault(tag, []).append(current_mode())
            return x
        return transform(fn)

    results = {}

    def run_train():
        results["train"] = list(IfTrain(probe("train") >> transform(lambda x: "T"), transform(lambda x: "E"))
                                .train_apply([0, 1], batch_size=1, shuffle=False))

    def run_eval():
        results["eval"] = list((probe("eval") >> IfTrain(transform(lambda x: "T"), transform(lambda x: "E")))
                               .eval_apply([0, 1], batch_size=1))

    threads = [threading.Thread(target=run_train), threading.Thread(target=run_eval)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == {"train": ["T", "T"], "eval": ["E", "E"]}
    assert seen == {"train": ["train", "train"], "eval": ["eval", "eval"]}


def _branches_per_item():
    """Preprocessing that records, per item, the process, the mode it saw and which If* branches ran."""
    def ran(name):
        return transform(lambda d: {**d, "ran": d["ran"] + [name]})

    seen = transform(lambda x: {"item": x, "pid": os.getpid(), "mode": current_mode(), "ran": []})
    return seen >> IfTrain(ran("train")) >> IfEval(ran("eval")) >> IfInfer(ran("infer")) >> batch.collate(list)


@pytest.mark.parametrize("caller_mode", ["infer", "eval", "train"])
@pytest.mark.parametrize("apply", ["eval_apply", "train_apply"])
def test_workers_preprocess_in_the_mode_of_the_apply_call(apply, caller_mode):
    """DataLoader workers start outside any apply call, or forked from a caller in another mode
    (an evaluation inside a training step): the mode-dependent steps they run follow the apply call."""
    mode = apply.removesuffix("_apply")
    pl = _branches_per_item()
    with apply_mode(caller_mode):
        batches = list(getattr(pl, apply)(range(8), batch_size=2, num_workers=2, multiprocessing_context="fork"))
    items = [d for b in batches for d in b]
    assert sorted(d["item"] for d in items) == list(range(8))
    assert os.getpid() not in {d["pid"] for d in items}  # all preprocessed in worker processes
    assert {(d["mode"], tuple(d["ran"])) for d in items} == {(mode, (mode,))}
    (one,) = pl.infer_apply(3)  # and the same steps in this process, for one item
    assert (one["mode"], one["ran"], one["pid"]) == ("infer", ["infer"], os.getpid())


def test_to_moves_every_layer_and_batches_follow():
    first, second = nn.Linear(2, 2), nn.Linear(2, 2)
    pl = transform(torch.tensor) >> batch >> (first >> second) >> transform(lambda b: b.device.type)
    assert pl.device == torch.device("cpu")
    pl.to("meta")
    assert first.weight.device.type == "meta" and second.weight.device.type == "meta"
    assert pl.device == torch.device("meta")
    assert pl.infer_apply([1.0, 2.0]) == "meta"
    assert list(pl.eval_apply([[1.0, 2.0]], batch_size=1)) == ["meta"]


WORKER_SCRIPT = textwrap.dedent("""
    import sys
    import torch
    import workbench as wb

    OFFSET = 100

    @wb.transform
    def prepare(x):
        import os
        return torch.tensor([x + OFFSET, os.getpid()], dtype=torch.float64)

    def main(method):
        import os
        nn = wb.transform(torch.nn)
        pl = (prepare >> wb.transform(lambda t: t * 1) >> wb.batch
              >> wb.transform(lambda b: b) >> wb.unbatch >> wb.same.tolist())
        outs = list(pl.eval_apply(range(40), batch_size=8, num_workers=2, multiprocessing_context=method))
        assert [o[0] for o in outs] == [float(i + 100) for i in range(40)], outs
        pids = {o[1] for o in outs}
        import os
        assert os.getpid() not in pids and len(pids) >= 1, pids
        try:
            list((prepare >> wb.transform(lambda t: 1 / 0) - "divide").eval_apply(
                range(4), batch_size=2, num_workers=2, multiprocessing_context=method))
        except ZeroDivisionError as exc:  # no batch: all forward stage, so it fails here, not in a worker
            assert "workbench: in step [1] 'divide' on item 0" in exc.__notes__, exc.__notes__
        else:
            raise AssertionError("no error")
        # A pipeline without markers is all forward stage: the model runs here, never in a worker.
        model = nn.Linear(2, 2).double()
        where = (prepare >> model >> wb.transform(lambda t: os.getpid())).eval_apply(
            range(6), batch_size=2, num_workers=2, multiprocessing_context=method)
        assert set(where) == {os.getpid()}, set(where)
        print("ok", method, len(pids))

    if __name__ == "__main__":
        main(sys.argv[1])
""")


@pytest.mark.slow
@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_workers_under_fork_and_spawn(tmp_path, method):
    script = tmp_path / "run_workers.py"
    script.write_text(WORKER_SCRIPT)
    result = subprocess.run([sys.executable, str(script), method], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith(f"ok {method}")
