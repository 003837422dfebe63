"""Training a pipeline with PyTorch Lightning: one module, any strategy, a bundle at the end.

``PipelineModule`` is a ``LightningModule`` made from a pipeline and a loss. Its parameters are
the pipeline's layers (training it trains the pipeline you built), its DataLoaders are built from
the pipeline's preprocessing and ``batch`` marker, and its steps run the pipeline's forward stage
in the apply mode Lightning's step stands for: ``train`` in ``training_step`` (``IfTrain`` branches
and dropout on, as in ``train_apply``), ``eval`` in validation, test and prediction. ``SaveBundle``
saves the trained pipeline as a workbench bundle from rank 0.

>>> import lightning as L
>>> from workbench.lightning import PipelineModule, SaveBundle
>>> module = PipelineModule(classifier, F.cross_entropy, train=list(zip(X, y)), val=list(zip(Xv, yv)),
...                         metrics={"accuracy": accuracy})                       # doctest: +SKIP
>>> L.Trainer(max_epochs=2, callbacks=[SaveBundle("digits.wb", monitor="val_accuracy", mode="max")]
...           ).fit(module)                                                       # doctest: +SKIP

This module imports ``lightning`` (the ``workbench[lightning]`` extra); ``import workbench`` does not.
See docs/lightning.md.
"""

from __future__ import annotations

import importlib
import math
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, default_collate

from ._running import MODE, Join, batch_marker, mark_item, parts, step_failed, step_of
from .collate import collate, uncollate
from .mode import MODES
from .pipeline import POSTPROCESS, Transform

__all__ = ["PipelineModule", "SaveBundle"]

Metric = Callable[[Any, Any], Any]

_CHECKPOINT_KEY = "workbench"


class PipelineModule(L.LightningModule):
    """A ``LightningModule`` that trains ``pipeline`` with ``loss(forward_output, target)``.

    ``train``, ``val``, ``test`` are sequences (or map-style Datasets) of ``(input, target)`` items;
    ``predict`` holds inputs only. Each input goes through the pipeline's preprocessing in the
    DataLoader (in the mode of the step it feeds), the batch marker collates the inputs (padding
    included), targets are collated by torch's ``default_collate`` after the optional per-item
    ``target`` function. ``metrics`` maps names to ``fn(forward_output, target)``; each is logged as
    ``train_<name>``/``val_<name>``/``test_<name>`` next to the loss, through the Trainer's logger.

    >>> module = PipelineModule(classifier, F.cross_entropy, train=items, val=held_out,
    ...                         batch_size=64, lr=1e-2)   # doctest: +SKIP
    >>> L.Trainer(max_epochs=2, accelerator="cpu", devices=2, strategy="ddp").fit(module)  # doctest: +SKIP

    ``predict_step`` returns what ``eval_apply`` yields for the batch: the postprocessed items when
    the pipeline has ``unbatch``, else the forward stage's output batch.
    """

    def __init__(self, pipeline: Transform, loss: Callable[[Any, Any], Any], *, train: Any = None,
                 val: Any = None, test: Any = None, predict: Any = None, batch_size: int = 64,
                 lr: float = 1e-3, optimizer: Callable[..., torch.optim.Optimizer] | None = torch.optim.Adam,
                 optimizer_options: Mapping[str, Any] | None = None,
                 scheduler: Callable[[torch.optim.Optimizer], Any] | None = None,
                 metrics: Mapping[str, Metric] | None = None, target: Callable[[Any], Any] | None = None,
                 shuffle: bool = True, num_workers: int = 0, loader_options: Mapping[str, Any] | None = None):
        super().__init__()
        if not isinstance(pipeline, Transform):
            raise TypeError(f"PipelineModule needs a workbench pipeline; got {type(pipeline).__name__}")
        if not callable(loss):
            raise TypeError(f"loss must be a callable loss(output, target); got {type(loss).__name__}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        for name, fn in (metrics or {}).items():
            if not callable(fn):
                raise TypeError(f"metric {name!r} must be a callable fn(output, target); got {type(fn).__name__}")
        taken = sorted(set(loader_options or {}) & {"collate_fn", "batch_size", "shuffle", "dataset"})
        if taken:
            raise ValueError(f"loader_options cannot set {', '.join(taken)}: PipelineModule sets them (the pipeline's "
                             "batch marker collates, e.g. batch.pad(); batch_size= and shuffle= are its own arguments)")
        # Assigned through object.__setattr__: a pipeline that is itself one torch layer must not be
        # registered twice (it is already among ``layers``).
        object.__setattr__(self, "pipeline", pipeline)
        self.layers = torch.nn.ModuleList(pipeline._wb_modules())
        self.loss = loss
        self.batch_size, self.lr = batch_size, lr
        self.optimizer, self.optimizer_options, self.scheduler = optimizer, dict(optimizer_options or {}), scheduler
        self.metrics = dict(metrics or {})
        self.target = target
        self.shuffle, self.num_workers, self.loader_options = shuffle, num_workers, dict(loader_options or {})
        self.data = {"train": _items(train, "train"), "val": _items(val, "val"),
                     "test": _items(test, "test"), "predict": _items(predict, "predict")}
        self._pre, self._fwd, self._post, self._collate, self._unbatch = _stages(pipeline)

    # --- data --------------------------------------------------------------------------------------

    def dataloader(self, items: Any, *, targets: bool = True, mode: str = "eval",
                   shuffle: bool = False, name: str = "data") -> DataLoader:
        """A DataLoader over ``items`` built from the pipeline's preprocessing and batch marker.

        ``targets=True``: items are ``(input, target)`` pairs and batches ``(inputs, targets)``;
        ``targets=False``: items are inputs. ``mode`` is the apply mode preprocessing runs in.

        >>> trainer.test(module, module.dataloader(test_items))   # doctest: +SKIP
        """
        if mode not in MODES:
            raise ValueError(f"unknown apply mode {mode!r}; expected one of {', '.join(MODES)}")
        items = _items(items, name)
        dataset = _PreprocessedItems(items, self._pre, self.target if targets else None, mode, targets, name)
        return DataLoader(dataset, batch_size=self.batch_size, shuffle=shuffle, num_workers=self.num_workers,
                          collate_fn=_Collate(self._collate, targets), **self.loader_options)

    def train_dataloader(self) -> DataLoader:
        items = self.data["train"]
        if items is None:
            raise ValueError("no training data: pass train=[(input, target), ...] to PipelineModule, "
                             "or train_dataloaders to trainer.fit")
        return self.dataloader(items, mode="train", shuffle=self.shuffle, name="train")

    def val_dataloader(self) -> Any:
        items = self.data["val"]
        return [] if items is None else self.dataloader(items, name="val")  # []: no validation

    def test_dataloader(self) -> Any:
        if self.data["test"] is None:
            raise ValueError("no test data: pass test=[(input, target), ...] to PipelineModule, "
                             "or dataloaders to trainer.test (module.dataloader(items) builds one)")
        return self.dataloader(self.data["test"], name="test")

    def predict_dataloader(self) -> Any:
        if self.data["predict"] is None:
            raise ValueError("no inputs to predict: pass predict=[input, ...] to PipelineModule, or dataloaders "
                             "to trainer.predict (module.dataloader(inputs, targets=False) builds one)")
        return self.dataloader(self.data["predict"], targets=False, name="predict")

    # --- steps -------------------------------------------------------------------------------------

    def forward(self, inputs: Any) -> Any:
        """The pipeline's forward stage on a batch, in train mode while training, else eval mode."""
        return self._forward(inputs, "train" if self.training else "eval")

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "test")

    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> Any:
        output = self._forward(batch, "eval")
        if not self._unbatch:
            return output
        items = uncollate(output)
        post, node = self._post
        if post is None:
            return items
        token = MODE.set("eval")
        try:
            out = []
            for i, item in enumerate(items):
                try:
                    out.append(post(item))
                except Exception as exc:
                    step_failed(exc, node, f"item {i} of predict batch {batch_idx}")
                    raise
            return out
        finally:
            MODE.reset(token)

    def _step(self, batch: Any, stage: str) -> torch.Tensor:
        inputs, targets = batch
        output = self._forward(inputs, "train" if stage == "train" else "eval")
        loss = self.loss(output, targets)
        size = _batch_size(targets)
        options = {"on_step": stage == "train", "on_epoch": True, "batch_size": size,
                   "sync_dist": self.trainer.world_size > 1}
        self.log(f"{stage}_loss", loss, prog_bar=True, **options)
        detached = output.detach() if isinstance(output, torch.Tensor) else output
        for name, fn in self.metrics.items():
            self.log(f"{stage}_{name}", _as_float_tensor(fn(detached, targets), name), prog_bar=True, **options)
        return loss

    def _forward(self, inputs: Any, mode: str) -> Any:
        forward, node = self._fwd
        if forward is None:
            return inputs
        token = MODE.set(mode)
        try:
            return forward(inputs)
        except Exception as exc:
            step_failed(exc, node, f"a batch of {_batch_size(inputs)} items ({mode} mode)")
            raise
        finally:
            MODE.reset(token)

    # --- optimisation ------------------------------------------------------------------------------

    def configure_optimizers(self) -> Any:
        if self.optimizer is None:
            raise ValueError("no optimizer: this module was loaded from a checkpoint whose optimizer could not "
                             "be imported; pass optimizer=... to load_from_checkpoint")
        optimizer = self.optimizer(self.parameters(), lr=self.lr, **self.optimizer_options)
        if self.scheduler is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": self.scheduler(optimizer)}

    # --- checkpoints -------------------------------------------------------------------------------

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Put the pipeline and the loss (as bundles) and the options into the Lightning checkpoint.

        Something that cannot be saved as a bundle is left out with a warning naming it (training
        goes on; ``load_from_checkpoint`` then needs it passed as a keyword).
        """
        pipeline, pipeline_problem = self._bundle_or_warn(self.pipeline, "pipeline")
        loss, loss_problem = self._bundle_or_warn(self.loss, "loss")
        checkpoint[_CHECKPOINT_KEY] = {
            "pipeline": pipeline, "pipeline_problem": pipeline_problem, "loss": loss, "loss_problem": loss_problem,
            "options": {"batch_size": self.batch_size, "lr": self.lr, "optimizer": _import_path(self.optimizer),
                        "optimizer_options": self.optimizer_options, "shuffle": self.shuffle,
                        "num_workers": self.num_workers},
        }

    def _bundle_or_warn(self, obj: Any, what: str) -> tuple[dict[str, bytes] | None, str | None]:
        from .bundle import CaptureError
        from .transform import FunctionTransform

        try:
            return _bundle_files(obj if what == "pipeline" else FunctionTransform(obj)), None
        except CaptureError as exc:
            if self._trainer is None or self._trainer.is_global_zero:
                warnings.warn(f"the {what} is not stored in the checkpoint (pass {what}=... to load_from_checkpoint): "
                              f"{exc}", stacklevel=3)
            return None, str(exc)

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path: str | os.PathLike[str], map_location: Any = None,
                             strict: bool = True, **kwargs: Any) -> "PipelineModule":  # type: ignore[override]
        """The module saved in a Lightning checkpoint, its ``.pipeline`` equal to the one trained.

        The pipeline comes back from the bundle stored in the checkpoint (verified like any bundle)
        with the checkpoint's weights; loss, batch size, learning rate and optimizer come back too.
        Data, metrics, ``target`` and anything else are passed again as keywords; so are the
        pipeline or loss when they could not be stored (``pipeline=...`` gets the checkpoint's
        weights). The checkpoint is read with ``torch.load(weights_only=True)``; the bundle's source
        runs, as ``workbench.load`` does: load checkpoints you trust.

        >>> pipeline = PipelineModule.load_from_checkpoint("epoch=1.ckpt").pipeline   # doctest: +SKIP
        """
        checkpoint = torch.load(checkpoint_path, map_location=map_location or "cpu", weights_only=True)
        stored = checkpoint.get(_CHECKPOINT_KEY)
        if stored is None:
            raise ValueError(f"{checkpoint_path} was not written by a PipelineModule: it holds no pipeline")
        for what in ("pipeline", "loss"):
            if what in kwargs:
                continue
            if stored[what] is None:
                raise ValueError(f"{checkpoint_path} holds no {what}: it could not be saved "
                                 f"({stored[what + '_problem']}); pass {what}=...")
            loaded = _from_bundle_files(stored[what], what)
            kwargs[what] = loaded if what == "pipeline" else loaded.fn
        options = dict(stored["options"])
        optimizer = options.pop("optimizer")
        options["optimizer"] = _import(optimizer) if optimizer is not None else None
        module = cls(**{**options, **kwargs})
        module.load_state_dict(checkpoint["state_dict"], strict=strict)
        return module


class SaveBundle(L.Callback):
    """Save the trained pipeline as a workbench bundle at ``path``: the best, or the last.

    With ``monitor`` (a logged metric such as ``"val_loss"``), the bundle is replaced each training
    epoch (after that epoch's validation) whose value improves on the best so far (``mode="min"`` or
    ``"max"``); without, after every training epoch. Only rank 0 writes; every write is atomic
    (``workbench.save``), and with ``check=[inputs...]`` the new bundle is loaded in a fresh
    interpreter and must reproduce the live outputs before it replaces the previous one. A bundle
    already at ``path`` is refused at the start of ``fit`` unless ``overwrite=True``.

    >>> saver = SaveBundle("digits.wb", monitor="val_accuracy", mode="max", check=X_test[:4])  # doctest: +SKIP
    >>> L.Trainer(max_epochs=5, callbacks=[saver]).fit(module)                               # doctest: +SKIP
    >>> saver.best_score, saver.best_epoch                                                   # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike[str], *, monitor: str | None = None, mode: str = "min",
                 check: Iterable[Any] | None = None, overwrite: bool = False):
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        self.path = Path(path)
        self.monitor, self.mode, self.overwrite = monitor, mode, overwrite
        self.check = list(check) if check is not None else None
        self.best_score: float | None = None
        self.best_epoch: int | None = None

    @property
    def state_key(self) -> str:
        return f"SaveBundle[path={self.path}, monitor={self.monitor}]"

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        pipeline = _pipeline_of(pl_module)
        error = None
        if trainer.is_global_zero:
            # Refuse before training what could only be refused after it.
            try:
                if self.path.exists() and not self.overwrite and self.best_epoch is None:
                    raise FileExistsError(f"SaveBundle: {self.path} already exists; pass overwrite=True to replace it")
                from .bundle import dependency_source

                dependency_source(pipeline)
            except Exception as exc:
                error = exc
        _raise_on_all_ranks(trainer, error)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        score = self._score(trainer)
        improved = self.monitor is None or (not math.isnan(score) and (
            self.best_score is None or (score < self.best_score if self.mode == "min" else score > self.best_score)))
        improved = trainer.strategy.broadcast(improved, src=0)
        if not improved:
            return
        error = None
        if trainer.is_global_zero:
            from .bundle import save

            try:
                save(_pipeline_of(pl_module), self.path, overwrite=True, check=self.check)
            except Exception as exc:
                error = exc
        _raise_on_all_ranks(trainer, error)
        self.best_score, self.best_epoch = (score if self.monitor else None), trainer.current_epoch

    def _score(self, trainer: L.Trainer) -> float:
        if self.monitor is None:
            return math.nan
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            logged = ", ".join(sorted(trainer.callback_metrics)) or "none"
            raise KeyError(f"SaveBundle: the monitored metric {self.monitor!r} was not logged; logged metrics: {logged}")
        return float(value)

    def state_dict(self) -> dict[str, Any]:
        return {"best_score": self.best_score, "best_epoch": self.best_epoch}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best_score, self.best_epoch = state_dict["best_score"], state_dict["best_epoch"]


# --- helpers -----------------------------------------------------------------------------------------


_Stage = tuple[Callable[[Any], Any] | None, Any]


def _stages(pipeline: Transform) -> tuple[_Stage, _Stage, _Stage, Callable[[list[Any]], Any], bool]:
    """Preprocess, forward and postprocess as ``(callable, node to note errors with)`` (see
    ``_running.step_of``), the inputs' collate, and whether the pipeline has ``unbatch``.

    Without ``batch`` there is no preprocessing: the inputs are collated with ``default_collate``
    and the pipeline (up to ``unbatch``, if any) is the forward stage.
    """
    (pre, fwd, post), end = parts(pipeline)
    marker = batch_marker(pipeline)
    join = Join(*marker) if marker is not None else collate
    return step_of(pre), step_of(fwd), step_of(post), join, end == POSTPROCESS


def _items(items: Any, name: str) -> Any:
    """``items`` as something indexable with a length (a Dataset or a sequence); ``None`` stays ``None``."""
    if items is None or hasattr(items, "__getitem__") and hasattr(items, "__len__"):
        return items
    if isinstance(items, IterableDataset):
        raise TypeError(f"{name} is an IterableDataset: PipelineModule needs items it can index (a sequence or a "
                        "map-style Dataset), so that each process of a distributed run gets its share")
    if isinstance(items, Iterable):
        return list(items)
    raise TypeError(f"{name} must be a sequence or map-style Dataset of items; got {type(items).__name__}")


class _PreprocessedItems(Dataset):
    """Item ``i`` through the pipeline's preprocessing (and the target function), in ``mode``.

    ``pre`` is ``(callable, node)`` as ``_running.step_of`` gives it: a one-step stage is called directly.
    """

    def __init__(self, items: Any, pre: _Stage, target: Callable[[Any], Any] | None,
                 mode: str, targets: bool, name: str):
        self.items, self.pre, self.target, self.mode, self.targets, self.name = items, pre, target, mode, targets, name

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> Any:
        item = self.items[i]
        if self.targets:
            try:
                x, y = item
            except (TypeError, ValueError):
                raise TypeError(f"item {i} of {self.name} is not an (input, target) pair: got "
                                f"{type(item).__name__}") from None
        else:
            x, y = item, None
        pre, node = self.pre
        token = MODE.set(self.mode)
        try:
            if pre is not None:
                try:
                    x = pre(x)
                except Exception as exc:
                    step_failed(exc, node, f"item {i} of {self.name}")
                    raise
            if self.target is not None:
                try:
                    y = self.target(y)
                except Exception as exc:
                    mark_item(exc, f"the target of item {i} of {self.name}")
                    raise
        finally:
            MODE.reset(token)
        return (x, y) if self.targets else x

    def __reduce__(self) -> Any:
        # DataLoader workers started with spawn unpickle the dataset: notebook functions need cloudpickle.
        import cloudpickle

        state = (self.items, self.pre, self.target, self.mode, self.targets, self.name)
        return (_unpickle_items, (cloudpickle.dumps(state),))


def _unpickle_items(payload: bytes) -> _PreprocessedItems:
    import pickle

    return _PreprocessedItems(*pickle.loads(payload))


class _Collate:
    """Inputs collated by the batch marker, targets by torch's ``default_collate``."""

    def __init__(self, inputs: Callable[[list[Any]], Any], targets: bool):
        self.inputs, self.targets = inputs, targets

    def __call__(self, items: list[Any]) -> Any:
        if not self.targets:
            return self.inputs(items)
        return self.inputs([x for x, _ in items]), default_collate([y for _, y in items])

    def __reduce__(self) -> Any:
        import cloudpickle

        return (_unpickle_collate, (cloudpickle.dumps((self.inputs, self.targets)),))


def _unpickle_collate(payload: bytes) -> _Collate:
    import pickle

    return _Collate(*pickle.loads(payload))


def _batch_size(batch: Any) -> int:
    if isinstance(batch, torch.Tensor):
        return batch.shape[0] if batch.dim() else 1
    if isinstance(batch, (tuple, list)) and batch:
        return _batch_size(batch[0]) if isinstance(batch[0], (torch.Tensor, tuple, list, dict)) else len(batch)
    if isinstance(batch, dict) and batch:
        return _batch_size(next(iter(batch.values())))
    return 1


def _as_float_tensor(value: Any, name: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach().float()
    if isinstance(value, (int, float)):
        return torch.tensor(float(value))
    raise TypeError(f"metric {name!r} returned {type(value).__name__}; it must return a number or a 0-d tensor")


def _pipeline_of(module: L.LightningModule) -> Transform:
    pipeline = getattr(module, "pipeline", None)
    if not isinstance(pipeline, Transform):
        raise TypeError(f"SaveBundle needs a PipelineModule (or a LightningModule with a .pipeline); "
                        f"got {type(module).__name__}")
    return pipeline


def _raise_on_all_ranks(trainer: L.Trainer, error: BaseException | None) -> None:
    """Raise rank 0's error on every rank, so no rank is left waiting for the others."""
    message = trainer.strategy.broadcast(None if error is None else f"{type(error).__name__}: {error}", src=0)
    if error is not None:
        raise error
    if message is not None:
        raise RuntimeError(f"SaveBundle failed on rank 0: {message}")


def _bundle_files(transform: Transform) -> dict[str, bytes]:
    """The files of ``transform``'s bundle, by relative path."""
    from .bundle import save

    with tempfile.TemporaryDirectory(prefix="workbench-ckpt-") as tmp:
        root = save(transform, Path(tmp) / "bundle.wb")
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _from_bundle_files(files: Mapping[str, bytes], what: str) -> Any:
    """The transform in a bundle held as files in memory (written out, verified and loaded)."""
    from .bundle import load

    with tempfile.TemporaryDirectory(prefix="workbench-ckpt-") as tmp:
        root = Path(tmp) / f"{what}.wb"
        for name, data in files.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        return load(root)


def _import_path(obj: Any) -> str | None:
    """``"module:qualname"`` when ``obj`` is importable under that name, else ``None``."""
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not module or not qualname or module == "__main__" or "<" in qualname:
        return None
    try:
        return f"{module}:{qualname}" if _import(f"{module}:{qualname}") is obj else None
    except (ImportError, AttributeError):
        return None


def _import(path: str) -> Any:
    module, _, qualname = path.partition(":")
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj
