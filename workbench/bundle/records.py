"""What goes into a bundle's ``source.py``, in order: imports, statements and the definitions they make.

While a pipeline is captured, each object becomes one or more :class:`Statement` records appended to
:class:`Records` in the order they must run; :func:`workbench.bundle.emit.render` turns the records
into the file's text once, at the end. A statement is never edited as text after it is recorded: what
is learnt later about it (that its value is a global of the user's code) is a separate ``note``.

>>> records = Records()
>>> records.add_import("import numpy as np", "numpy")
>>> records.add("table = np.zeros(3)")
>>> records.note("table", records.mark() - 1, "# global table of __main__ (ndarray), value at save time\\n")
>>> print(records.statements[0].source)
# global table of __main__ (ndarray), value at save time
table = np.zeros(3)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .source import portable_origin

__all__ = ["Statement", "Definition", "Records"]


@dataclass
class Statement:
    """One statement of the source (a line, or a block such as a copied ``def`` with its comment).

    ``text`` is the code with the comment its writer put above it; ``note`` the comment added once the
    statement turned out to bind a global of the user's code (it says which, and is not stored data).
    """

    text: str
    note: str = ""

    @property
    def source(self) -> str:
        """The statement as it appears in ``source.py``."""
        return self.note + self.text

    def binds(self, name: str) -> bool:
        """Whether the statement, as written so far, begins by assigning ``name`` (``name = ...``)."""
        return self.source.startswith(f"{name} = ")


@dataclass
class Definition:
    """A name the source defines, for the manifest: its kind, what it was and where it came from.

    ``origin`` is where the definition came from (a file, a notebook cell, a module's global) and
    ``line`` its first line there; the manifest records it relative to the project (no home paths).

    >>> Definition("f", "function", "f", "__main__", None, None).as_json()["kind"]
    'function'
    """

    name: str
    kind: str
    qualname: str
    module: str
    origin: dict[str, Any] | None
    line: int | None

    def as_json(self) -> dict[str, Any]:
        out = {"name": self.name, "kind": self.kind, "qualname": self.qualname, "module": self.module}
        if self.origin is not None:
            out["origin"] = portable_origin(self.origin)
            if self.line is not None:
                out["origin"]["line"] = self.line
        return out


class Records:
    """The imports, statements and definitions of one bundle's source, in the order they were recorded.

    ``definitions`` (the manifest's list of what the source defines and where it came from) and
    ``imported_modules`` (the top-level modules the source imports, for ``requirements.txt``) are kept
    beside the statements that make them. :attr:`size` counts the bytes of the statements' text.
    """

    def __init__(self) -> None:
        self.imports: list[str] = []
        self.statements: list[Statement] = []
        self.definitions: list[Definition] = []
        self.imported_modules: set[str] = set()
        self.size = 0

    def add(self, text: str) -> None:
        """Append a statement (its comment, if any, on the lines above it in ``text``)."""
        self.statements.append(Statement(text))
        self.size += len(text.encode("utf-8"))

    def define(self, name: str, kind: str, qualname: str, module: str, origin: dict[str, Any] | None,
               line: int | None) -> None:
        """Record that the source defines ``name`` (a :class:`Definition`, listed in the manifest)."""
        self.definitions.append(Definition(name, kind, qualname, module, origin, line))

    def add_import(self, line: str, module: str) -> None:
        """An import line of the header; ``module`` is the top-level module it imports from."""
        self.imported_modules.add(module)
        self.imports.append(line)

    def mark(self) -> int:
        """A position in the statements: :meth:`note` looks at the statements recorded after it."""
        return len(self.statements)

    def note(self, name: str, since: int, note: str) -> None:
        """Put ``note`` above the last statement since ``since`` that assigns ``name`` (else the first one)."""
        at = next((i for i in range(len(self.statements) - 1, since - 1, -1) if self.statements[i].binds(name)),
                  since)
        self.statements[at].note = note + self.statements[at].note
