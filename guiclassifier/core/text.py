"""Small helpers for messages people read."""

from __future__ import annotations


def plural(n: int, word: str, many: str | None = None) -> str:
    """'1 file', '2 files' ('1 class', '3 classes' with many='classes')."""
    return f"{n} {word if n == 1 else many or word + 's'}"


def printable(text: str) -> str:
    """`text` as it can be shown on one line of a terminal or a table: control characters and
    the like (a newline in a folder name, a right-to-left override) escaped."""
    return text if text.isprintable() else ascii(text)[1:-1]


def byte_size(n: int) -> str:
    """'0 bytes', '512 bytes', '3.4 MB', '1.2 GB' (powers of 1000, as file managers show them)."""
    if n < 1000:
        return plural(n, "byte")
    for unit in ("kB", "MB", "GB", "TB"):
        n /= 1000
        if n < 1000 or unit == "TB":
            return f"{n:.1f} {unit}"
    raise AssertionError("unreachable")
