"""PipelineModule and SaveBundle with a real Lightning Trainer: one process, DDP on 2 CPU processes,
bundles and checkpoints loaded back (bundles in fresh interpreters)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy
import pytest
import torch
import torch.nn.functional as F

L = pytest.importorskip("lightning")

import workbench  # noqa: E402
from workbench import IfTrain, batch, transform, unbatch  # noqa: E402
from workbench.lightning import PipelineModule, SaveBundle  # noqa: E402

from . import _digits  # noqa: E402

pytestmark = pytest.mark.slow

HERE = Path(__file__).parent
nn = transform(torch.nn)


def _trainer(root: Path, **options) -> "L.Trainer":
    options = {"max_epochs": 2, "accelerator": "cpu", "devices": 1, "default_root_dir": str(root),
               "enable_progress_bar": False, "enable_model_summary": False, **options}
    return L.Trainer(**options)


def _run(code: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE.parent.parent), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


# --- one process: trained once, looked at by several tests ------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("one-process")
    train, held_out = _digits.digits()
    module = PipelineModule(_digits.classifier(), F.cross_entropy, train=train, val=held_out, lr=1e-2,
                            metrics={"accuracy": _digits.accuracy})
    saver = SaveBundle(root / "digits.wb", monitor="val_accuracy", mode="max")
    trainer = _trainer(root, callbacks=[saver])
    trainer.fit(module)
    return {"root": root, "module": module, "trainer": trainer, "saver": saver, "held_out": held_out}


def test_one_process_trains_the_pipeline_above_the_floor(trained):
    accuracy = _digits.held_out_accuracy(trained["module"].pipeline, trained["held_out"])
    assert accuracy >= _digits.ACCURACY_FLOOR, accuracy
    # The pipeline's own layers were trained: they are the module's parameters.
    assert {id(p) for p in trained["module"].parameters()} == \
        {id(p) for m in trained["module"].pipeline._wb_modules() for p in m.parameters()}


def test_metrics_are_logged_to_csv_by_default(trained):
    logger = trained["trainer"].logger
    assert type(logger).__name__ == "CSVLogger"
    with open(Path(logger.log_dir) / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    epochs = [r for r in rows if r.get("val_accuracy")]
    assert len(epochs) == 2
    assert {"train_loss_epoch", "train_accuracy_epoch", "val_loss"} <= set(rows[0])
    assert float(epochs[-1]["val_accuracy"]) >= _digits.ACCURACY_FLOOR


def test_save_bundle_predicts_in_a_fresh_process_what_the_module_predicts(trained, tmp_path):
    module, trainer, saver = trained["module"], trained["trainer"], trained["saver"]
    assert saver.best_epoch == 1 and saver.best_score >= _digits.ACCURACY_FLOOR
    inputs = [x for x, _ in trained["held_out"]]
    predicted = [p for batch_ in trainer.predict(module, module.dataloader(inputs, targets=False)) for p in batch_]
    module.eval()
    with torch.no_grad():
        scores = torch.cat([module(x) for x in module.dataloader(inputs, targets=False)])
    torch.save(torch.tensor(numpy.stack(inputs)), tmp_path / "inputs.pt")
    code = textwrap.dedent(f"""
        import json, torch, workbench
        pl = workbench.load({str(saver.path)!r})
        inputs = torch.load("inputs.pt").numpy()
        labels = list(pl.eval_apply(inputs, batch_size=64))
        scores = torch.stack(list(pl[:-1].eval_apply(inputs, batch_size=64)))
        torch.save(scores, "scores.pt")
        print(json.dumps(labels))
    """)
    proc = _run(code, tmp_path)
    assert json.loads(proc.stdout.splitlines()[-1]) == predicted
    assert torch.equal(torch.load(tmp_path / "scores.pt"), scores)


def test_load_from_checkpoint_gives_back_an_equal_pipeline(trained):
    module = trained["module"]
    checkpoint = trained["trainer"].checkpoint_callback.best_model_path
    loaded = PipelineModule.load_from_checkpoint(checkpoint, metrics={"accuracy": _digits.accuracy})
    assert loaded.pipeline is not module.pipeline
    assert repr(loaded.pipeline) == repr(module.pipeline)
    live, back = module.state_dict(), loaded.state_dict()
    assert live.keys() == back.keys() and all(torch.equal(live[k], back[k]) for k in live)
    inputs = [x for x, _ in trained["held_out"]]
    assert list(loaded.pipeline.eval_apply(inputs)) == list(module.pipeline.eval_apply(inputs))
    # loss, batch size, learning rate and optimizer come back; training continues from the weights.
    assert loaded.loss is F.cross_entropy and loaded.optimizer is torch.optim.Adam
    assert (loaded.lr, loaded.batch_size) == (module.lr, module.batch_size)
    result = _trainer(trained["root"] / "again", max_epochs=1, logger=False, enable_checkpointing=False
                      ).validate(loaded, loaded.dataloader(trained["held_out"]), verbose=False)
    assert result[0]["val_accuracy"] >= _digits.ACCURACY_FLOOR


# --- two DDP processes -----------------------------------------------------------------------------------

DDP_SCRIPT = """
import json, sys
from pathlib import Path
import lightning as L
import torch
import torch.nn.functional as F
sys.path.insert(0, {tests!r})
import _digits
from workbench.lightning import PipelineModule, SaveBundle

out = Path(sys.argv[1])
torch.set_num_threads(1)
train, held_out = _digits.digits()
module = PipelineModule(_digits.classifier(), F.cross_entropy, train=train, val=held_out, lr=1e-2,
                        metrics={{"accuracy": _digits.accuracy}})
trainer = L.Trainer(max_epochs=2, accelerator="cpu", devices=2, strategy="ddp", default_root_dir=str(out),
                    enable_progress_bar=False, enable_model_summary=False,
                    callbacks=[SaveBundle(out / "digits.wb")])
trainer.fit(module)
report = {{"rank": trainer.global_rank, "world_size": trainer.world_size, "batches": trainer.num_training_batches,
          "accuracy": _digits.held_out_accuracy(module.pipeline, held_out),
          "weights": [p.sum().item() for p in module.parameters()]}}
(out / f"rank{{trainer.global_rank}}.json").write_text(json.dumps(report))
"""


def test_ddp_on_two_cpu_processes(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(DDP_SCRIPT.format(tests=str(HERE)))
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE.parent.parent), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, str(script), str(out)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=400, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    reports = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in reports] == [2, 2]
    # Each process saw half of the 1347 training items: 11 batches of at most 64, not 22.
    assert [r["batches"] for r in reports] == [11, 11]
    # Gradients were averaged: both processes end with the same weights, and the pipeline learned.
    assert reports[0]["weights"] == reports[1]["weights"]
    assert reports[0]["accuracy"] >= _digits.ACCURACY_FLOOR, reports[0]["accuracy"]
    # Rank 0 saved the last pipeline; it loads in a fresh process and scores as the trained one did.
    code = textwrap.dedent(f"""
        import sys, workbench
        sys.path.insert(0, {str(HERE)!r})
        import _digits
        _, held_out = _digits.digits()
        print(_digits.held_out_accuracy(workbench.load({str(out / "digits.wb")!r}), held_out))
    """)
    assert float(_run(code, tmp_path).stdout.split()[-1]) == reports[0]["accuracy"]


# --- modes -----------------------------------------------------------------------------------------------


def test_iftrain_branches_and_dropout_act_in_training_only(tmp_path):
    seen = []

    @transform
    def preprocess_seen(x):
        seen.append(("preprocess", len(x)))
        return x

    @transform
    def forward_seen(x):
        seen.append(("forward", len(x)))
        return x

    @transform
    def dropout_state(x):
        seen.append(("dropout training", dropout.training, torch.is_grad_enabled()))
        return x

    dropout = nn.Dropout(0.5)
    pipeline = (transform(lambda x: torch.as_tensor(x, dtype=torch.float32)) >> IfTrain(preprocess_seen)
                >> batch >> IfTrain(forward_seen) >> dropout >> dropout_state >> nn.Linear(3, 2) >> unbatch)
    items = [([1.0, 2.0, 3.0], i % 2) for i in range(8)]
    module = PipelineModule(pipeline, F.cross_entropy, train=items, val=items, batch_size=4)
    _trainer(tmp_path, max_epochs=1, num_sanity_val_steps=0, logger=False, enable_checkpointing=False).fit(module)
    assert seen.count(("preprocess", 3)) == 8           # every training item, no validation item
    assert seen.count(("forward", 4)) == 2              # every training batch, no validation batch
    # Two training batches with dropout on and grad, then two validation batches with neither.
    assert [s[1:] for s in seen if s[0] == "dropout training"] == [(True, True)] * 2 + [(False, False)] * 2
    seen.clear()
    predicted = [p for b in _trainer(tmp_path, logger=False).predict(module, module.dataloader(
        [x for x, _ in items], targets=False)) for p in b]
    assert len(predicted) == 8 and all(p.shape == (2,) for p in predicted)
    assert seen == [("dropout training", False, False)] * 2


def test_preprocessing_runs_in_workers_in_the_mode_of_its_loader(tmp_path):
    seen = []

    @transform
    def batch_max(x):
        seen.append(float(x.max()))
        return x

    shift = IfTrain(transform(lambda x: x + 100))
    pipeline = transform(lambda x: torch.as_tensor(x, dtype=torch.float32)) >> shift >> batch >> batch_max >> nn.Linear(3, 2)
    items = [([1.0, 2.0, 3.0], "ab"[i % 2]) for i in range(8)]
    module = PipelineModule(pipeline, F.cross_entropy, train=items, val=items, batch_size=4, num_workers=2,
                            target="ab".index)
    _trainer(tmp_path, max_epochs=1, num_sanity_val_steps=0, logger=False, enable_checkpointing=False).fit(module)
    assert seen == [103.0, 103.0, 3.0, 3.0]   # two training batches shifted in the workers, two validation batches not


def test_optimizer_options_and_scheduler(tmp_path):
    module = PipelineModule(_digits.classifier(), F.cross_entropy, train=_digits.digits()[0][:64], lr=0.1,
                            optimizer=torch.optim.SGD, optimizer_options={"momentum": 0.9},
                            scheduler=lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5))
    trainer = _trainer(tmp_path, max_epochs=2, logger=False, enable_checkpointing=False)
    trainer.fit(module)
    optimizer = trainer.optimizers[0]
    assert type(optimizer) is torch.optim.SGD and optimizer.param_groups[0]["momentum"] == 0.9
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5 ** 2)


# --- text: sentences of different lengths, padded by the pipeline's batch marker --------------------

POSITIVE = ["good", "great", "lovely", "excellent", "fine"]
NEGATIVE = ["bad", "awful", "poor", "terrible", "dull"]
FILLER = ["the", "film", "was", "really", "quite", "a", "story", "and", "plot"]


def _sentences(n, seed):
    """``n`` (sentence, label) pairs of 2 to 9 words: filler words and one word that gives the label."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        label = i % 2
        length = int(torch.randint(1, 9, (1,), generator=g))
        words = [FILLER[int(j)] for j in torch.randint(len(FILLER), (length,), generator=g)]
        cue = (NEGATIVE if label else POSITIVE)[int(torch.randint(5, (1,), generator=g))]
        words.insert(int(torch.randint(len(words) + 1, (1,), generator=g)), cue)
        out.append((" ".join(words), label))
    return out


class MeanOfEmbeddings(torch.nn.Module):
    """Token ids (0 = padding) to class scores: the mean of the real tokens' embeddings, then a linear layer."""

    def __init__(self, vocabulary: int, dim: int, classes: int):
        super().__init__()
        self.embedding = torch.nn.Embedding(vocabulary, dim, padding_idx=0)
        self.out = torch.nn.Linear(dim, classes)

    def forward(self, ids):
        mask = (ids != 0).unsqueeze(-1).float()
        return self.out((self.embedding(ids) * mask).sum(1) / mask.sum(1).clamp(min=1.0))


def test_a_text_pipeline_with_padding_trains(tmp_path):
    train, held_out = _sentences(200, 0), _sentences(60, 1)
    vocab = {w: i for i, w in enumerate(sorted({w for s, _ in train for w in s.split()}), start=2)}  # 0 pad, 1 unknown
    tokenize = transform(lambda s: torch.tensor([vocab.get(w, 1) for w in s.split()]))
    widths = []

    @transform
    def width(ids):
        widths.append(ids.shape[1])
        return ids

    torch.manual_seed(0)
    classifier = tokenize >> batch.pad(0) >> width >> transform(MeanOfEmbeddings(len(vocab) + 2, 16, 2)) >> unbatch \
        >> transform(lambda scores: int(scores.argmax()))
    module = PipelineModule(classifier, F.cross_entropy, train=train, batch_size=16, lr=0.05)
    _trainer(tmp_path, max_epochs=5, logger=False, enable_checkpointing=False).fit(module)
    assert len(set(widths)) > 1  # batches of different lengths were padded to their longest sentence
    predictions = list(classifier.eval_apply([s for s, _ in held_out]))
    accuracy = sum(p == y for p, (_, y) in zip(predictions, held_out)) / len(held_out)
    assert accuracy >= 0.9, accuracy

    # The same pipeline with a plain batch cannot stack sentences of different lengths, and says so.
    unpadded = tokenize >> batch >> transform(MeanOfEmbeddings(len(vocab) + 2, 16, 2))
    module = PipelineModule(unpadded, F.cross_entropy, train=train, batch_size=16)
    with pytest.raises(RuntimeError) as info:
        _trainer(tmp_path, max_epochs=1, logger=False, enable_checkpointing=False).fit(module)
    assert any("step [1] 'batch'" in n and "use batch.pad(value=0)" in n for n in info.value.__notes__)


# --- what is refused, and how ------------------------------------------------------------------------


def test_save_bundle_refuses_an_existing_bundle_before_training(trained, tmp_path):
    train, _ = _digits.digits()
    module = PipelineModule(_digits.classifier(), F.cross_entropy, train=train[:64])
    trainer = _trainer(tmp_path, logger=False, enable_checkpointing=False,
                       callbacks=[SaveBundle(trained["saver"].path)])
    with pytest.raises(FileExistsError, match="already exists; pass overwrite=True"):
        trainer.fit(module)
    assert trainer.global_step == 0


def test_save_bundle_refuses_an_unsavable_pipeline_before_training(tmp_path):
    import threading

    lock = threading.Lock()

    @transform
    def locked(x):
        with lock:
            return torch.as_tensor(x, dtype=torch.float32)

    module = PipelineModule(locked >> batch >> nn.Linear(3, 2), F.cross_entropy, train=[([1, 2, 3], 0)] * 4)
    trainer = _trainer(tmp_path, logger=False, enable_checkpointing=False, callbacks=[SaveBundle(tmp_path / "x.wb")])
    with pytest.raises(workbench.bundle.CaptureError, match="lock"):
        trainer.fit(module)
    assert trainer.global_step == 0 and not (tmp_path / "x.wb").exists()


def test_save_bundle_names_a_metric_that_was_not_logged(tmp_path):
    module = PipelineModule(_digits.classifier(), F.cross_entropy, train=_digits.digits()[0][:64])
    trainer = _trainer(tmp_path, max_epochs=1, logger=False, enable_checkpointing=False,
                       callbacks=[SaveBundle(tmp_path / "x.wb", monitor="val_acc")])
    with pytest.raises(KeyError, match="'val_acc' was not logged; logged metrics: train_loss"):
        trainer.fit(module)
    assert not (tmp_path / "x.wb").exists()


def test_items_that_are_not_pairs_and_failing_steps_are_named(tmp_path):
    module = PipelineModule(_digits.classifier(), F.cross_entropy, train=[x for x, _ in _digits.digits()[1][:8]])
    with pytest.raises(TypeError, match=r"item \d of train is not an \(input, target\) pair"):
        _trainer(tmp_path, logger=False, enable_checkpointing=False).fit(module)

    bad = [([1.0] * 64, 0)] * 3 + [([1.0] * 10, 1)]
    module = PipelineModule(_digits.classifier(), F.cross_entropy, train=bad, shuffle=False)
    with pytest.raises(RuntimeError) as info:
        _trainer(tmp_path, logger=False, enable_checkpointing=False).fit(module)
    assert any("step [1] 'to_image'" in n and "item 3 of train" in n for n in info.value.__notes__)


def test_what_a_checkpoint_cannot_hold_is_named_and_passed_when_loading(tmp_path):
    namespace = {}
    exec("def loss(output, target):\n    return torch.nn.functional.cross_entropy(output, target)", {"torch": torch},
         namespace)  # a function whose source cannot be found: it cannot go into a bundle
    module = PipelineModule(_digits.classifier(), namespace["loss"], train=_digits.digits()[0][:64])
    trainer = _trainer(tmp_path, max_epochs=1, logger=False, enable_checkpointing=False)
    trainer.fit(module)
    with pytest.warns(UserWarning, match=r"the loss is not stored in the checkpoint \(pass loss=\.\.\. to"):
        trainer.save_checkpoint(tmp_path / "last.ckpt")
    with pytest.raises(ValueError, match=r"holds no loss: it could not be saved \(cannot save function 'loss'"):
        PipelineModule.load_from_checkpoint(tmp_path / "last.ckpt")
    loaded = PipelineModule.load_from_checkpoint(tmp_path / "last.ckpt", loss=F.cross_entropy)
    assert loaded.loss is F.cross_entropy
    inputs = [x for x, _ in _digits.digits()[1][:32]]
    assert list(loaded.pipeline.eval_apply(inputs)) == list(module.pipeline.eval_apply(inputs))
    # pipeline= replaces the stored pipeline and gets the checkpoint's weights.
    fresh = _digits.classifier()
    weights = lambda pl: [p.detach().clone() for m in pl._wb_modules() for p in m.parameters()]  # noqa: E731
    assert not all(map(torch.equal, weights(fresh), weights(module.pipeline)))
    PipelineModule.load_from_checkpoint(tmp_path / "last.ckpt", loss=F.cross_entropy, pipeline=fresh)
    assert all(map(torch.equal, weights(fresh), weights(module.pipeline)))


def test_import_workbench_does_not_import_lightning(tmp_path):
    code = "import sys, workbench; print('lightning' in sys.modules, 'lightning.pytorch' in sys.modules)"
    assert _run(code, tmp_path).stdout.split() == ["False", "False"]
