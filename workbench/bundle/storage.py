"""The data a bundle stores by value as files: tensors, arrays, frames, JSON values, TorchScript archives.

:class:`DataFiles` collects them while a pipeline is captured, under the names the source reads them
by (``_bundle.array('table')``), and :func:`workbench.bundle.artifacts.write_all` writes them. Each
tensor is stored once, however many places hold it, and a tensor overlapping the memory of one
already stored is found so it can be rebuilt as a view of it.

>>> import numpy as np
>>> data = DataFiles()
>>> data.add_array("table", np.zeros(3)), data.add_array("table", np.ones(2))
('table', 'table_2')
>>> data.totals()
(0, 40)
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from typing import Any

__all__ = ["DataFiles", "StoredTensor", "is_array", "is_frame", "is_numpy_scalar"]


def is_array(obj: Any) -> bool:
    """Whether ``obj`` is a numpy array (stored as ``artifacts/<name>.npy``)."""
    np = sys.modules.get("numpy")
    return np is not None and type(obj) is np.ndarray


def is_numpy_scalar(obj: Any) -> bool:
    """Whether ``obj`` is a numpy scalar (``np.float32(1.5)``; object scalars excluded)."""
    np = sys.modules.get("numpy")
    return np is not None and isinstance(obj, np.generic) and not isinstance(obj, np.object_)


def is_frame(obj: Any) -> bool:
    """Whether ``obj`` is a pandas DataFrame or Series (stored as ``artifacts/<name>.frame/``)."""
    pd = sys.modules.get("pandas")
    return pd is not None and type(obj) in (pd.DataFrame, pd.Series)


@dataclass(frozen=True)
class StoredTensor:
    """Where a live tensor went: ``store`` is ``"weights"``, ``"tensors"`` or ``"view"`` (then ``key`` is
    the source name of the view); ``dims`` is the memory order it was stored in (``None``: row-major)."""

    tensor: Any
    store: str
    key: str
    dims: tuple[int, ...] | None


def _byte_range(tensor: Any) -> tuple[int, int]:
    """The bytes of its storage that a non-empty tensor covers, as ``(start, end)``."""
    size = tensor.element_size()
    last = sum((n - 1) * step for n, step in zip(tensor.shape, tensor.stride()))
    start = tensor.storage_offset() * size
    return start, start + (last + 1) * size


def _tensor_bytes(t: Any) -> int:
    return int(t.numel() * t.element_size())


def _frame_bytes(frame: Any) -> int:
    usage = frame.memory_usage(deep=True)
    return int(usage.sum()) if hasattr(usage, "sum") else int(usage)


class DataFiles:
    """Tensors, arrays, frames, JSON values and archives of one bundle, by the name its source reads them by.

    ``weights`` (parameters and buffers of layers) and ``tensors`` map keys to CPU tensors; ``arrays``,
    ``frames``, ``json_values`` and ``archives`` map artifact names to values. :meth:`totals` gives
    the bytes collected so far, weights apart from other data (for the capture report).
    """

    def __init__(self) -> None:
        self.weights: dict[str, Any] = {}
        self.tensors: dict[str, Any] = {}
        self.arrays: dict[str, Any] = {}
        self.frames: dict[str, Any] = {}
        self.json_values: dict[str, Any] = {}
        self.archives: dict[str, bytes] = {}
        self._artifact_names: set[str] = set()
        self._stored: dict[int, StoredTensor] = {}       # id of a live tensor -> where it went
        self._storages: dict[Any, list[Any]] = {}       # (device, storage pointer) -> stored tensors, byte ranges
        self._weight_bytes = 0
        self._data_bytes = 0

    # --- artifacts ------------------------------------------------------------------------------------

    def artifact_name(self, hint: str) -> str:
        """A file name under ``artifacts/`` not used yet, made from ``hint``."""
        base = re.sub(r"[^A-Za-z0-9_]", "_", hint) or "data"
        name = base
        n = 2
        while name in self._artifact_names:
            name = f"{base}_{n}"
            n += 1
        self._artifact_names.add(name)
        return name

    def add_array(self, hint: str, array: Any) -> str:
        name = self.artifact_name(hint)
        self.arrays[name] = array
        self._data_bytes += int(array.nbytes)
        return name

    def add_frame(self, hint: str, frame: Any) -> str:
        name = self.artifact_name(hint)
        self.frames[name] = frame
        self._data_bytes += _frame_bytes(frame)
        return name

    def add_json(self, hint: str, value: Any) -> str:
        name = self.artifact_name(hint)
        self.json_values[name] = value
        self._data_bytes += len(json.dumps(value, allow_nan=False).encode("utf-8"))
        return name

    def add_archive(self, hint: str, archive: bytes) -> str:
        name = self.artifact_name(hint)
        self.archives[name] = archive
        return name

    # --- tensors --------------------------------------------------------------------------------------

    def stored(self, tensor: Any) -> StoredTensor | None:
        """Where ``tensor`` (this very object) was stored, if it was."""
        return self._stored.get(id(tensor))

    def add_tensor(self, tensor: Any, data: Any, key: str, store: str, dims: tuple[int, ...] | None) -> StoredTensor:
        """Store ``data`` (the CPU, contiguous bytes of ``tensor``) under ``key`` or ``key_2``... in ``store``."""
        existing = self.weights if store == "weights" else self.tensors
        if key in existing:
            n = 2
            while f"{key}_{n}" in existing:
                n += 1
            key = f"{key}_{n}"
        existing[key] = data
        if store == "weights":
            self._weight_bytes += _tensor_bytes(data)
        else:
            self._data_bytes += _tensor_bytes(data)
        entry = self._stored[id(tensor)] = StoredTensor(tensor, store, key, dims)
        return entry

    def add_view(self, tensor: Any, name: str) -> None:
        """Record that ``tensor`` is rebuilt by the source as the view bound to ``name``."""
        self._stored[id(tensor)] = StoredTensor(tensor, "view", name, None)

    def overlapping(self, tensor: Any) -> Any:
        """The first stored tensor whose bytes overlap ``tensor``'s; when there is none, ``tensor`` is
        remembered as holding its bytes and ``None`` is returned."""
        storage = (tensor.device.type, tensor.untyped_storage().data_ptr())
        start, end = _byte_range(tensor)
        held = self._storages.setdefault(storage, [])
        for other, (b_start, b_end) in held:
            if not (end <= b_start or b_end <= start):
                return other
        held.append((tensor, (start, end)))
        return None

    @staticmethod
    def holds_inside(outer: Any, inner: Any) -> bool:
        """Whether ``inner`` lies inside the contiguous ``outer`` with the same dtype (a view can remake it)."""
        o_start, o_end = _byte_range(outer)
        i_start, i_end = _byte_range(inner)
        return outer.is_contiguous() and outer.dtype == inner.dtype and o_start <= i_start and i_end <= o_end

    # --- sizes ----------------------------------------------------------------------------------------

    def totals(self) -> tuple[int, int]:
        """``(weight bytes, other data bytes)`` collected so far (TorchScript archives not counted)."""
        return self._weight_bytes, self._data_bytes
