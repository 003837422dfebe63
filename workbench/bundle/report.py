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

import contextlib
import types
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from .._text import shorten
from ..errors import HomePathWarning, LargeDataWarning

__all__ = ["GlobalEntry", "CaptureReport", "LargeDataWarning", "HomePathWarning", "MAX_DATA_BYTES", "format_bytes",
           "Ledger"]

MAX_DATA_BYTES = 10_000_000


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


class Ledger:
    """What a capture stores besides code, as it is collected: the report in the making.

    ``totals`` gives the running ``(weight bytes, data bytes)`` of the capture; :meth:`measure`
    charges what a block adds to an object, :meth:`note_reader` records which step reads a global,
    :meth:`note_origin` which global of which module a value was bound from, and :meth:`note_text`
    strings holding a path in the author's home directory (``home_paths``: text -> how the pipeline
    reaches it).

    >>> ledger = Ledger(lambda: (0, 0), home=None)
    >>> ledger.note_reader(("id", 1), [1, 2], "TABLE", len, "step 'count'")
    >>> ledger.report({}).entries[0].readers
    ["step 'count' (function len)"]
    """

    def __init__(self, totals: Callable[[], tuple[int, int]], home: str | None) -> None:
        self._totals = totals
        self._home = home
        self._sizes: dict[Any, list[int]] = {}        # object key -> [weight bytes, data bytes] it added
        self._readers: dict[Any, dict[str, Any]] = {}  # object key -> report entry under construction
        self._origins: dict[Any, tuple[str, str, dict[str, Any]]] = {}  # object key -> (global, module, file)
        self.home_paths: dict[str, str] = {}

    @contextlib.contextmanager
    def measure(self, key: Any) -> Iterator[None]:
        """Add the bytes collected while the block runs to ``key``'s size (nested definitions included)."""
        weights, data = self._totals()
        try:
            yield
        finally:
            after = self._totals()
            size = self._sizes.setdefault(key, [0, 0])
            size[0] += after[0] - weights
            size[1] += after[1] - data

    def note_origin(self, key: Any, gname: str, module: str, origin: dict[str, Any]) -> None:
        """The value with ``key`` is global ``gname`` of ``module`` (the first global seen holding it counts)."""
        self._origins.setdefault(key, (gname, module, origin))

    def origin(self, key: Any) -> tuple[str, str, dict[str, Any]] | None:
        """``(global name, module, file)`` the value with ``key`` was bound from, if it is a global's."""
        return self._origins.get(key)

    def note_text(self, text: str, path: str) -> None:
        """Remember ``text`` (stored as data, reached by ``path``) when it holds a home-directory path."""
        if self._home and self._home in text:
            self.home_paths.setdefault(shorten(text, 200, "..."), path)

    def note_reader(self, key: Any, value: Any, gname: str, owner: Any, step: str | None) -> None:
        """Record that ``owner`` (a function or class, run by pipeline step ``step``) reads global ``gname``."""
        if isinstance(value, (types.FunctionType, type, types.ModuleType, types.BuiltinFunctionType)):
            return  # definitions, listed by %wb_deps, not data
        entry = self._readers.get(key)
        if entry is None:
            entry = self._readers[key] = {"name": gname, "type": type(value).__name__, "readers": []}
        kind = "class" if isinstance(owner, type) else "function"
        reader = f"{kind} {getattr(owner, '__qualname__', '?').rpartition('<locals>.')[2]}"
        if step is not None:
            reader = f"{step} ({reader})"
        if reader not in entry["readers"]:
            entry["readers"].append(reader)

    def report(self, attributes: dict[Any, set[str]]) -> CaptureReport:
        """Every global value captured, with its size and readers, largest first.

        ``attributes``: for objects stored as only some of their attributes, those attributes.
        """
        entries = []
        for key, info in self._readers.items():
            weights, data = self._sizes.get(key, (0, 0))
            attrs = sorted(attributes[key]) if key in attributes else None
            entries.append(GlobalEntry(info["name"], info["type"], data, weights, list(info["readers"]), attrs))
        entries.sort(key=lambda e: (-e.size, e.name))
        return CaptureReport(entries)
