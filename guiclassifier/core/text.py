"""Small helpers for messages people read."""

from __future__ import annotations


def plural(n: int, word: str, many: str | None = None) -> str:
    """'1 file', '2 files' ('1 class', '3 classes' with many='classes')."""
    return f"{n} {word if n == 1 else many or word + 's'}"


def printable(text: str) -> str:
    """`text` as it can be shown on one line of a terminal or a table: control characters and
    the like (a newline in a folder name, a right-to-left override) escaped."""
    return text if text.isprintable() else ascii(text)[1:-1]
