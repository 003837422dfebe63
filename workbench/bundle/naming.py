"""Which name each object gets in a bundle's ``source.py``.

All definitions of a bundle share one namespace. :class:`Names` hands out those names: the name an
object's code used where possible, a fresh one (``f_2``) when another object already has it. Objects
are told apart by identity, except immutable scalars (``None``, numbers, strings, bytes), whose
identity does not matter: each name they get is its own assignment.

>>> names = Names()
>>> def f(): pass
>>> def g(): pass
>>> names.claim(f, "f"), names.claim(g, "f"), names.claim(f, "helper")
(('f', 'new'), ('f_2', 'new'), ('helper', 'alias'))
"""

from __future__ import annotations

import contextlib
import keyword
import math
import re
import struct
from typing import Any, Iterator

__all__ = ["Names", "object_key", "scalar_text"]


def object_key(obj: Any) -> tuple[str, Any]:
    """``("literal", text)`` for immutable scalars (their identity does not matter), else ``("id", id(obj))``."""
    if obj is None or isinstance(obj, (bool, int, float, complex, str, bytes)) and type(obj) in (
            bool, int, float, complex, str, bytes):
        return ("literal", type(obj).__name__ + ":" + scalar_text(obj))
    return ("id", id(obj))


def scalar_text(obj: Any) -> str:
    """The exact source text of a scalar: NaN with its sign and payload, infinities, complex parts.

    >>> scalar_text(-float("nan")), scalar_text(complex(1, float("inf")))
    ("-float('nan')", "complex(1.0, float('inf'))")
    """
    if isinstance(obj, float):
        if math.isnan(obj):
            bits = struct.pack("<d", obj)
            if bits == struct.pack("<d", math.copysign(math.nan, obj)):
                return "float('nan')" if math.copysign(1.0, obj) > 0 else "-float('nan')"
            return f"__import__('struct').unpack('<d', bytes.fromhex({bits.hex()!r}))[0]"  # a NaN payload, bit for bit
        if math.isinf(obj):
            return "float('inf')" if obj > 0 else "float('-inf')"
        return repr(obj)
    if isinstance(obj, complex):
        return f"complex({scalar_text(obj.real)}, {scalar_text(obj.imag)})"
    return repr(obj)


class Names:
    """The names taken in one bundle's source, the object each stands for, and each object's first name.

    An object keeps the first name it was given (its *primary* name); a later, different name that is
    still free becomes an *alias* (``helper = f``) whose assignment waits until the object is defined.
    Objects that were named are kept alive until the bundle is written, so their ids stay unique.
    """

    def __init__(self) -> None:
        self._owners: dict[str, Any] = {}          # name -> key of what it stands for
        self._primary: dict[Any, str] = {}         # object key -> its first name
        self._aliases: dict[Any, list[str]] = {}   # object key -> aliases waiting for its definition
        self._kept: list[Any] = []

    key = staticmethod(object_key)

    def __contains__(self, name: str) -> bool:
        return name in self._owners

    def owner(self, name: str) -> Any:
        """The key of what ``name`` stands for (``None`` when the name is free)."""
        return self._owners.get(name)

    def primary(self, key: Any) -> str | None:
        """The first name of the object with ``key``, if it has one."""
        return self._primary.get(key)

    def bind(self, name: str, key: Any, *, primary: bool = False) -> None:
        """Take ``name`` for ``key`` as is (builtins, reserved names, names the live code leaves unbound)."""
        self._owners[name] = key
        if primary:
            self._primary.setdefault(key, name)

    def fresh(self, base: str) -> str:
        """``base`` made an identifier, or ``base_2``, ``base_3``... when it is taken or a keyword."""
        base = re.sub(r"\W", "_", base) or "value"
        if base[0].isdigit():
            base = "_" + base
        if base not in self._owners and not keyword.iskeyword(base):
            return base
        n = 2
        while f"{base}_{n}" in self._owners:
            n += 1
        return f"{base}_{n}"

    def take(self, base: str, key: Any) -> str:
        """A fresh name from ``base``, taken for ``key``."""
        name = self.fresh(base)
        self._owners[name] = key
        return name

    def keep(self, obj: Any) -> None:
        """Keep ``obj`` alive while the bundle is captured (its id names it)."""
        self._kept.append(obj)

    def claim(self, obj: Any, preferred: str) -> tuple[str, str]:
        """``(name, how)`` for ``obj``, preferring ``preferred``.

        ``how`` is ``"new"`` (a name the source must now bind), ``"alias"`` (a further free name for an
        object already named: bind it to the first name) or ``"known"`` (a name already bound to it).
        """
        key = object_key(obj)
        if self._owners.get(preferred) == key:
            return preferred, "known"
        if key[0] == "literal":  # immutable values: every name gets its own assignment
            return self.take(preferred, key), "new"
        primary = self._primary.get(key)
        if primary is not None:
            if preferred.isidentifier() and not keyword.iskeyword(preferred) and preferred not in self._owners:
                self._owners[preferred] = key
                return preferred, "alias"
            return primary, "known"
        name = self.take(preferred, key)
        self._primary[key] = name
        self._kept.append(obj)
        return name, "new"

    def defer_alias(self, key: Any, alias: str) -> None:
        """Remember to bind ``alias`` once the object with ``key`` is defined."""
        self._aliases.setdefault(key, []).append(alias)

    def deferred_aliases(self, key: Any) -> list[str]:
        """The aliases waiting for the object with ``key`` (forgotten once asked for)."""
        return self._aliases.pop(key, [])

    @contextlib.contextmanager
    def unnamed(self, key: Any) -> Iterator[None]:
        """While the block runs, the object with ``key`` has no primary name (to write its value, not its name)."""
        saved = self._primary.pop(key, None)
        try:
            yield
        finally:
            if saved is not None:
                self._primary[key] = saved
