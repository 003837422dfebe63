"""What a bundle's source calls while it rebuilds the pipeline: ``_bundle.parameter(...)`` and friends.

:func:`workbench.bundle.load` executes ``source.py`` with ``_bundle`` bound to a :class:`BundleRuntime`
for that bundle directory. Every accessor memoises by key, so an object shared in the live pipeline
(a tied weight, one lookup table used by two functions) is shared again after loading.

>>> rt = BundleRuntime(Path("model.wb"), {})
>>> rt.namespace("helpers").__name__
'helpers'
"""

from __future__ import annotations

import io
import json
import types
from pathlib import Path
from typing import Any, Callable

from .artifacts import TENSORS, WEIGHTS, load_tensors, read_frame
from .errors import IntegrityError

__all__ = ["BundleRuntime"]


class BundleRuntime:
    """Gives a bundle's source its weights and data, and rebuilds layers and instances without pickle.

    ``files`` holds the bytes of every file as :func:`workbench.bundle.snapshot.read` read them: the
    source is rebuilt from exactly the bytes that were verified, never from the directory again.
    ``ready`` is called before the first file is used (the large ones are still being read then).
    """

    def __init__(self, root: Path, files: dict[str, Any], ready: Callable[[], Any] | None = None):
        self.root = Path(root)
        self._data = files
        self._ready = ready  # waits until the large files are read (and verified)
        self._stores: dict[str, dict[str, Any]] = {}
        self._memo: dict[tuple[str, str], Any] = {}

    def _bytes(self, rel: str) -> Any:
        if rel not in self._data:
            raise IntegrityError(f"bundle {self.root}: its source reads {rel}, which is not in the bundle")
        if self._ready is not None:
            self._ready()
            self._ready = None
        return self._data[rel]

    # --- tensors ------------------------------------------------------------------------------------

    def _store(self, weights: bool) -> dict[str, Any]:
        name = WEIGHTS if weights else TENSORS
        store = self._stores.get(name)
        if store is None:
            store = self._stores[name] = load_tensors(self._bytes(name), f"bundle {self.root}: file {name}")
        return store

    def _read(self, key: str, weights: bool, dims: tuple[int, ...] | None, device: str | None) -> Any:
        t = self._store(weights)[key]
        if dims is not None:  # stored in memory order: give back the saved strides
            t = t.permute([dims.index(d) for d in range(len(dims))])
        if device is not None:
            t = t.to(device)
        return t

    def tensor(self, key: str, *, weights: bool = False, requires_grad: bool = False,
               dims: tuple[int, ...] | None = None, device: str | None = None) -> Any:
        """The stored tensor ``key`` (a buffer when ``weights``, else a data tensor)."""
        memo_key = ("tensor", f"{weights}:{key}")
        if memo_key not in self._memo:
            t = self._read(key, weights, dims, device)
            if requires_grad:
                t.requires_grad_(True)
            self._memo[memo_key] = t
        return self._memo[memo_key]

    def parameter(self, key: str, *, weights: bool = False, requires_grad: bool = True,
                  dims: tuple[int, ...] | None = None, device: str | None = None) -> Any:
        """The stored tensor ``key`` as a ``torch.nn.Parameter``."""
        import torch

        memo_key = ("parameter", f"{weights}:{key}")
        if memo_key not in self._memo:
            self._memo[memo_key] = torch.nn.Parameter(self._read(key, weights, dims, device),
                                                      requires_grad=requires_grad)
        return self._memo[memo_key]

    @staticmethod
    def view(base: Any, size: list[int], stride: list[int], offset: int, *, parameter: bool = False,
             requires_grad: bool = False) -> Any:
        """A tensor sharing ``base``'s memory, ``offset`` elements after ``base`` starts (a saved view)."""
        import torch

        source = base if requires_grad and not parameter else base.detach()
        out = torch.as_strided(source, size, stride, source.storage_offset() + offset)
        return torch.nn.Parameter(out, requires_grad=requires_grad) if parameter else out

    @staticmethod
    def quantized(values: Any, *, scale: float | None = None, zero_point: int | None = None, scales: Any = None,
                  zero_points: Any = None, axis: int = 0) -> Any:
        """The quantized tensor with these integer ``values`` and quantization parameters (bit for bit)."""
        import torch

        if scales is not None:
            return torch._make_per_channel_quantized_tensor(values, scales, zero_points, axis)
        return torch._make_per_tensor_quantized_tensor(values, scale, zero_point)

    # --- data ---------------------------------------------------------------------------------------------

    def array(self, name: str) -> Any:
        """The numpy array stored as ``artifacts/<name>.npy`` (read without pickle)."""
        import numpy as np

        return self._memoised("array", name, lambda: np.load(io.BytesIO(self._bytes(f"artifacts/{name}.npy")),
                                                             allow_pickle=False))

    def frame(self, name: str) -> Any:
        """The DataFrame or Series stored in ``artifacts/<name>.frame/``."""
        prefix = f"artifacts/{name}.frame/"

        def read() -> Any:
            files = {rel[len(prefix):]: data for rel, data in self._data.items() if rel.startswith(prefix)}
            self._bytes(prefix + "frame.json")
            return read_frame(files)

        return self._memoised("frame", name, read)

    def json(self, name: str) -> Any:
        """The value stored as ``artifacts/<name>.json``."""
        def read() -> Any:
            return json.loads(self._bytes(f"artifacts/{name}.json").decode("utf-8"))

        return self._memoised("json", name, read)

    def _memoised(self, kind: str, name: str, make: Callable[[], Any]) -> Any:
        key = (kind, name)
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]

    # --- objects ------------------------------------------------------------------------------------------

    @staticmethod
    def namespace(name: str) -> types.ModuleType:
        """An empty module standing in for a local (not installed) module; the source fills it."""
        return types.ModuleType(name)

    @staticmethod
    def module(cls: type, attrs: dict[str, Any], *, parameters: dict[str, Any] | None = None,
               buffers: dict[str, Any] | None = None, modules: dict[str, Any] | None = None,
               non_persistent: list[str] | tuple[str, ...] = (), parametrized: list[str] | tuple[str, ...] = ()) -> Any:
        """A torch layer of class ``cls`` with these attributes, tensors and sub-layers.

        ``cls.__init__`` is not called (it may need arguments, draw random weights or have side
        effects): the layer is set up like ``torch.nn.Module.__init__`` does and then given exactly
        the state it had when saved, through ``__setstate__`` as unpickling would (recurrent layers
        rebuild their flat weights there). ``parametrized`` names the tensors that
        ``torch.nn.utils.parametrize`` computes from the saved ``parametrizations``.
        """
        import torch

        obj = cls.__new__(cls)
        torch.nn.Module.__init__(obj)
        state = dict(obj.__dict__)
        state["_parameters"].update(parameters or {})
        state["_buffers"].update(buffers or {})
        state["_modules"].update(modules or {})
        state["_non_persistent_buffers_set"].update(non_persistent)
        state.update(attrs)
        obj.__setstate__(state)
        if parametrized:
            from torch.nn.utils import parametrize

            parametrize._inject_new_class(obj)
            for tensor_name in parametrized:
                parametrize._inject_property(obj, tensor_name)
        return obj

    def script_module(self, name: str, tensors: dict[str, Any]) -> Any:
        """The TorchScript module archived as ``artifacts/<name>.torchscript``, given back its tensors.

        ``torch.jit.load`` reads the archive with TorchScript's own reader (no Python pickle); the
        archive's parameters and buffers are empty and ``tensors`` (dotted path -> tensor) fill them.
        """
        import torch

        module = torch.jit.load(str(self.root / "artifacts" / f"{name}.torchscript"), map_location="cpu")
        for path, tensor in tensors.items():
            *owners, attr = path.split(".")
            owner = module
            for part in owners:
                owner = getattr(owner, part)
            setattr(owner, attr, tensor)
        return module

    @staticmethod
    def instance(cls: type | None = None, state: Any = None, *, args: tuple[Any, ...] = (),
                 reduce: Callable[..., Any] | None = None, items: list[Any] | None = None,
                 mapping: dict[Any, Any] | None = None) -> Any:
        """An object rebuilt the way pickle would, but from values written out in the source.

        ``cls.__new__(cls, *args)`` (or ``reduce(*args)``), then the state: ``__setstate__`` when the
        class defines one, else the instance ``__dict__`` (and slots) are filled directly.
        """
        obj = reduce(*args) if reduce is not None else cls.__new__(cls, *args)  # type: ignore[union-attr]
        if state is not None:
            setstate = getattr(obj, "__setstate__", None)
            if setstate is not None and getattr(type(obj).__setstate__, "__objclass__", None) is not object:
                setstate(state)
            else:
                slots = None
                if isinstance(state, tuple) and len(state) == 2:
                    state, slots = state
                if state:
                    obj.__dict__.update(state)
                for key, value in (slots or {}).items():
                    object.__setattr__(obj, key, value)
        for item in items or ():
            obj.append(item)
        for key, value in (mapping or {}).items():
            obj[key] = value
        return obj
