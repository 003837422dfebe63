"""Short text for people (internal): values cut to a length, errors on one line, articles.

Error messages, the command line, the server, the inspector, the plots and the pipeline's own
``repr`` all cut long text and describe errors; they do it here, once.

>>> shorten("a" * 10, 6)
'aaaaa…'
>>> shorten("a" * 10, 6, "...")
'aaa...'
>>> f"{article('int')} int"
'an int'
>>> error = ValueError("bad input")
>>> error.add_note("workbench: in step [1] 'scale'")
>>> describe_error(error)
"ValueError: bad input (workbench: in step [1] 'scale')"
>>> short_repr("x" * 100)
"'xxxxxxxxxxxxxxxxxxxxxxxxxx...xxxxxxxxxxxxxxxxxxxxxxxxxxxx'"
"""

from __future__ import annotations

import reprlib
from typing import Any

__all__ = ["shorten", "short_repr", "describe_error", "article"]

_SHORT = reprlib.Repr()
_SHORT.maxstring = 60
_SHORT.maxother = 60


def shorten(text: str, limit: int = 60, mark: str = "…") -> str:
    """``text`` if it has at most ``limit`` characters, else its start and ``mark``, ``limit`` in all."""
    return text if len(text) <= limit else text[: limit - len(mark)] + mark


def short_repr(value: Any) -> str:
    """``repr(value)`` abbreviated (``reprlib``: long strings, big containers and other long reprs cut), to
    name an input in a message."""
    return _SHORT.repr(value)


def describe_error(exc: BaseException | None) -> str:
    """``ValueError: message (note) (note)``: an exception with its notes, on one line."""
    text = f"{type(exc).__name__}: {exc}"
    for note in getattr(exc, "__notes__", ()):
        text += f" ({note})"
    return text


def article(word: str) -> str:
    """``"an"`` or ``"a"``, as written before ``word`` (by its first letter: ``an int``, ``a list``)."""
    return "an" if word[:1].lower() in "aeiou" else "a"
