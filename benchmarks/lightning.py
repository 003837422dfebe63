"""What training through ``PipelineModule`` costs against a hand-written LightningModule, in the same run.

Both sides do exactly the same work, checked by comparing the trained weights bit for bit: a small
CNN on scikit-learn's digits (the 1,797 images repeated to 5,391 items), per-item preprocessing
(scale 0..16 to 0..1, shape 1x8x8) in the DataLoader, batches of 64 shuffled from the same seed,
cross-entropy, Adam, the training loss logged per step and per epoch, one process on one thread.

- baseline: a ``Dataset`` whose ``__getitem__`` preprocesses, a ``DataLoader`` with the default
  collate, and a ``LightningModule`` written by hand (``training_step``, ``configure_optimizers``);
- pipeline: ``PipelineModule(scale >> to_image >> batch >> model >> unbatch >> to_label, F.cross_entropy)``.

Each repeat trains each side for one more epoch (a new ``Trainer`` each time, shuffled from the
same seed on both sides), the order of the two sides alternating from repeat to repeat so that a
change in the machine's load falls on both; an epoch's time is taken from ``on_train_epoch_start``
to ``on_train_epoch_end`` (no validation, checkpointing, logger or progress bar on either side), as
CPU time of the training thread by default: on a shared machine wall time charges other processes'
time to whichever side happened to run (``--clock wall`` for elapsed time).
Reported: the median epoch time of each, and the median of the per-repeat ratios. Goal: <= 1.05.

    python benchmarks/lightning.py
    python benchmarks/lightning.py --repeats 15 --clock wall

Exit status 1 when the goal is missed or the two sides trained different weights. See docs/lightning.md.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Callable

# This file is called lightning.py: its folder must not hide the lightning package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import lightning as L  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from torch.utils.data import DataLoader, Dataset  # noqa: E402

from workbench import batch, transform, unbatch  # noqa: E402
from workbench.lightning import PipelineModule  # noqa: E402

GOAL = 1.05
BATCH_SIZE = 64
LR = 1e-3


def preprocess(pixels: np.ndarray) -> torch.Tensor:
    return (torch.as_tensor(pixels, dtype=torch.float32) / 16.0).reshape(1, 8, 8)


def cnn() -> torch.nn.Module:
    torch.manual_seed(0)
    nn = transform(torch.nn)
    return nn.Sequential(nn.Conv2d(1, 16, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(16 * 4 * 4, 10))


# --- baseline: written by hand -------------------------------------------------------------------


class DigitsDataset(Dataset):
    def __init__(self, items: list[tuple[np.ndarray, int]]):
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        pixels, label = self.items[i]
        return preprocess(pixels), label


class HandWritten(L.LightningModule):
    def __init__(self, items: list[tuple[np.ndarray, int]]):
        super().__init__()
        self.model = cnn()
        self.items = items

    def train_dataloader(self) -> DataLoader:
        return DataLoader(DigitsDataset(self.items), batch_size=BATCH_SIZE, shuffle=True)

    def training_step(self, batch_: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch_
        loss = F.cross_entropy(self.model(x), y)
        self.log("train_loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=len(y))
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=LR)


# --- the pipeline --------------------------------------------------------------------------------


def pipeline_module(items: list[tuple[np.ndarray, int]]) -> PipelineModule:
    to_label = transform(lambda scores: int(scores.argmax()))
    pipeline = transform(preprocess) >> batch >> cnn() >> unbatch >> to_label
    return PipelineModule(pipeline, F.cross_entropy, train=items, batch_size=BATCH_SIZE, lr=LR)


# --- measuring -----------------------------------------------------------------------------------


CLOCKS = {"thread": time.thread_time, "wall": time.perf_counter}


class EpochTimer(L.Callback):
    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.times: list[float] = []

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = self.clock()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.times.append(self.clock() - self._start)


def one_epoch(module: L.LightningModule, seed: int, clock: Callable[[], float]) -> float:
    timer = EpochTimer(clock)
    trainer = L.Trainer(max_epochs=1, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[timer])
    torch.manual_seed(seed)  # the shuffling order, the same for both sides
    trainer.fit(module)
    return timer.times[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9, help="epochs per side (default 9)")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="thread",
                        help="thread: CPU time of the training thread (default); wall: elapsed time")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")

    digits = load_digits()
    items = [(x, int(y)) for x, y in zip(digits.data, digits.target)] * 3
    modules = {"hand-written": HandWritten(items), "PipelineModule": pipeline_module(items)}
    times: dict[str, list[float]] = {name: [] for name in modules}
    for r in range(args.repeats):
        for name in list(modules)[::1 if r % 2 == 0 else -1]:
            times[name].append(one_epoch(modules[name], seed=r, clock=CLOCKS[args.clock]))
    weights = [list(m.parameters()) for m in modules.values()]
    same = all(torch.equal(a, b) for a, b in zip(*weights))
    base, ours = (statistics.median(times[k]) for k in modules)
    ratio = statistics.median(p / h for h, p in zip(times["hand-written"], times["PipelineModule"]))
    print(f"{len(items)} items, batches of {BATCH_SIZE}, {args.repeats} epochs per side, one process, one thread, "
          f"{args.clock} clock")
    print(f"median epoch: hand-written LightningModule {base:.3f} s, PipelineModule {ours:.3f} s")
    print(f"ratio (median of per-epoch ratios) {ratio:.3f} (goal <= {GOAL}); trained weights identical: {same}")
    return 0 if same and ratio <= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
