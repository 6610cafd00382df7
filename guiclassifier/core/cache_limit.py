"""How much the on-disk caches may hold: the user's choice, kept in the cache folder itself so that
the window, the command line and scripts share it (ccache keeps its max_size the same way), or
by default 5 GB or a fifth of the disk space the caches could have, whichever is less."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

DEFAULT_LIMIT_BYTES = 5_000_000_000
DEFAULT_DISK_SHARE = 0.2
SETTINGS_FILE = "settings.json"
AUTOMATIC_LIMIT = "5 GB, or a fifth of the free disk space when that is less"


def chosen_limit(root: Path) -> int | None:
    """The limit the user set for the caches in `root`, or None (automatic). A settings file that
    cannot be read counts as none."""
    try:
        value = json.loads((root / SETTINGS_FILE).read_text()).get("limit_bytes")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def choose_limit(root: Path, limit_bytes: int | None) -> None:
    """Keep `limit_bytes` as the limit (None: automatic again). Written atomically."""
    if limit_bytes is not None and limit_bytes < 0:
        raise ValueError("a cache limit cannot be negative")
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{SETTINGS_FILE}.{os.getpid()}"
    tmp.write_text(json.dumps({"limit_bytes": limit_bytes}))
    os.replace(tmp, root / SETTINGS_FILE)


def automatic_limit(root: Path, cached_bytes: int) -> int:
    """5 GB, or a fifth of what the caches could take (the disk's free space plus what they hold
    now) when that is less."""
    folder = root
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return DEFAULT_LIMIT_BYTES
    return int(min(DEFAULT_LIMIT_BYTES, DEFAULT_DISK_SHARE * (free + cached_bytes)))


def cache_limit(root: Path, cached_bytes: int) -> int:
    """The limit in force: the user's, else the automatic one."""
    chosen = chosen_limit(root)
    return chosen if chosen is not None else automatic_limit(root, cached_bytes)
