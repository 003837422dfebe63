"""The capture report: every global value a bundle stores, its type, its size and the steps that read it.

A bundle should hold only what its pipeline reads. Saving makes that visible: for each global value the
pipeline's code uses (data, not the functions and classes copied as source), the report gives the name,
the type, the bytes it adds to the bundle and the step (and function) that reads it. Where the code
only reads some attributes of an object (``wine.target_names``), only those attributes are stored and
the report lists them.

``save(..., max_data_bytes=...)`` warns with :class:`LargeDataWarning` about any global above the
threshold (``strict=True`` refuses instead). Weights of torch layers are counted apart from data: a
model is expected to be large, a dataset held by accident is not.

>>> entry = GlobalEntry("VOCAB", "dict", data_bytes=2_500_000, readers=["step 'encode' (function encode)"])
>>> print(CaptureReport([entry]).text())
global  type  size    read by
VOCAB   dict  2.5 MB  step 'encode' (function encode)
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["GlobalEntry", "CaptureReport", "LargeDataWarning", "HomePathWarning", "MAX_DATA_BYTES", "format_bytes"]

MAX_DATA_BYTES = 10_000_000


class LargeDataWarning(UserWarning):
    """A global value above ``max_data_bytes`` goes into a bundle (name, reading step and size in the message)."""


class HomePathWarning(UserWarning):
    """A string the pipeline holds as data contains a path in the author's home directory.

    The bundle must store it (the code may use it), so it says so rather than hide or rewrite it.
    """


def format_bytes(n: int) -> str:
    """``512 B``, ``3.1 kB``, ``2.5 MB``, ``1.2 GB`` (decimal units).

    >>> format_bytes(2_500_000)
    '2.5 MB'
    """
    if n < 1000:
        return f"{n} B"
    for unit in ("kB", "MB", "GB", "TB"):
        n /= 1000
        if n < 1000 or unit == "TB":
            return f"{n:.1f} {unit}"
    raise AssertionError  # unreachable


@dataclass
class GlobalEntry:
    """One global value stored in a bundle.

    ``data_bytes`` is what it adds as data (arrays, tensors, tables, JSON, literal source text);
    ``weight_bytes`` what it adds as parameters and buffers of torch layers. ``attributes`` lists
    the attributes stored when the code reads only those (``None``: the object is stored whole).
    """

    name: str
    type: str
    data_bytes: int = 0
    weight_bytes: int = 0
    readers: list[str] = field(default_factory=list)
    attributes: list[str] | None = None

    @property
    def size(self) -> int:
        return self.data_bytes + self.weight_bytes

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type, "data_bytes": self.data_bytes,
                               "weight_bytes": self.weight_bytes, "read_by": list(self.readers)}
        if self.attributes is not None:
            out["attributes"] = list(self.attributes)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "GlobalEntry":
        return cls(str(data.get("name", "?")), str(data.get("type", "?")), int(data.get("data_bytes", 0)),
                   int(data.get("weight_bytes", 0)), [str(r) for r in data.get("read_by", [])],
                   data.get("attributes"))

    def describe(self) -> str:
        """``global 'wine' (Bunch, 3.2 kB; attributes target_names) read by step ...``."""
        what = f"{self.type}, {format_bytes(self.size)}"
        if self.attributes is not None:
            what += f"; only attribute{'s' * (len(self.attributes) != 1)} {', '.join(self.attributes)}"
        readers = "; ".join(self.readers) or "the pipeline"
        return f"global {self.name!r} ({what}) read by {readers}"


@dataclass
class CaptureReport:
    """What a bundle stores besides code: one :class:`GlobalEntry` per global value, largest first."""

    entries: list[GlobalEntry]

    def large(self, max_data_bytes: int) -> list[GlobalEntry]:
        """The entries whose data is above ``max_data_bytes``."""
        return [e for e in self.entries if e.data_bytes > max_data_bytes]

    def text(self) -> str:
        """A table: global, type, size (with the stored attributes), read by."""
        if not self.entries:
            return "no global values stored (only code, and the weights of the pipeline's layers)"
        rows = [("global", "type", "size", "read by")]
        for e in self.entries:
            size = format_bytes(e.size)
            if e.weight_bytes:
                size += " (weights)" if not e.data_bytes else f" ({format_bytes(e.weight_bytes)} weights)"
            name = e.name if e.attributes is None else f"{e.name}.{{{', '.join(e.attributes)}}}"
            rows.append((name, e.type, size, "; ".join(e.readers)))
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        return "\n".join("  ".join(c.ljust(w) for c, w in zip(r[:3], widths)) + "  " + r[3] for r in rows)

    def as_json(self) -> list[dict[str, Any]]:
        return [e.as_json() for e in self.entries]

    @classmethod
    def from_json(cls, data: list[dict[str, Any]]) -> "CaptureReport":
        return cls([GlobalEntry.from_json(d) for d in data])


class _Tally:
    """Running byte counts of what a capture has collected so far: ``(weights, data)``.

    Each store is append-only, so only the entries added since the last call are measured.
    """

    def __init__(self, capture: Any) -> None:
        self.capture = capture
        self.seen: dict[str, int] = {}
        self.totals = {"weights": 0, "data": 0}

    def __call__(self) -> tuple[int, int]:
        cap = self.capture
        for label, store, kind, size in (
                ("weights", cap.weights, "weights", _tensor_bytes),
                ("tensors", cap.tensors, "data", _tensor_bytes),
                ("arrays", cap.arrays, "data", lambda a: int(a.nbytes)),
                ("frames", cap.frames, "data", _frame_bytes),
                ("json", cap.json_values, "data", lambda v: len(json.dumps(v, allow_nan=False).encode("utf-8"))),
                ("statements", cap.statements, "data", lambda s: len(s.encode("utf-8")))):
            done = self.seen.get(label, 0)
            if len(store) > done:
                values = store.values() if isinstance(store, dict) else store
                self.totals[kind] += sum(size(v) for v in itertools.islice(values, done, None))
                self.seen[label] = len(store)
        return self.totals["weights"], self.totals["data"]


def _tensor_bytes(t: Any) -> int:
    return int(t.numel() * t.element_size())


def _frame_bytes(frame: Any) -> int:
    usage = frame.memory_usage(deep=True)
    return int(usage.sum()) if hasattr(usage, "sum") else int(usage)
