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


BYTE_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
              "t": 10**12, "tb": 10**12}


def parse_byte_size(text: str) -> int:
    """'5GB', '500 MB', '2.5g', '1000' -> bytes (powers of 1000, as byte_size writes them);
    ValueError with what is wrong."""
    cleaned = text.strip().lower().replace(" ", "")
    number = cleaned.rstrip("kmgtb")
    unit = cleaned[len(number):]
    if unit not in BYTE_UNITS:
        raise ValueError(f"{text!r} is not a size: write it like 5GB, 500MB or 2.5GB")
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f"{text!r} is not a size: write it like 5GB, 500MB or 2.5GB") from None
    if not value >= 0 or value == float("inf"):
        raise ValueError(f"{text!r}: a size is a number of bytes, 0 or more")
    return int(value * BYTE_UNITS[unit])
