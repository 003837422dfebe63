"""Short text for people (internal): values cut to a length, articles.

Error messages, the inspector, the plots and the pipeline's own ``repr`` all cut long text; they do
it here, once.

>>> shorten("a" * 10, 6)
'aaaaa…'
>>> shorten("a" * 10, 6, "...")
'aaa...'
>>> f"{article('int')} int"
'an int'
"""

from __future__ import annotations

__all__ = ["shorten", "article"]


def shorten(text: str, limit: int = 60, mark: str = "…") -> str:
    """``text`` if it has at most ``limit`` characters, else its start and ``mark``, ``limit`` in all."""
    return text if len(text) <= limit else text[: limit - len(mark)] + mark


def article(word: str) -> str:
    """``"an"`` or ``"a"``, as written before ``word`` (by its first letter: ``an int``, ``a list``)."""
    return "an" if word[:1].lower() in "aeiou" else "a"

