"""Where the on-disk caches live: one folder, a subfolder per kind (activations, resized images).

The user cache folder by default; GUICLASSIFIER_CACHE_DIR moves all of them (tests, shared disks).
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

CACHE_DIR_ENV = "GUICLASSIFIER_CACHE_DIR"


def cache_root() -> Path:
    override = os.environ.get(CACHE_DIR_ENV)
    return Path(override) if override else Path(platformdirs.user_cache_dir("guiclassifier"))
