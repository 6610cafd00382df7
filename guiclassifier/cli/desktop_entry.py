"""`guiclassifier --install-desktop`: a freedesktop.org menu entry and icon for this user, so the
app opens from a Linux desktop's application menu like any other."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from guiclassifier.bundled import icon_path

APP_ID = "guiclassifier"
ICON_SIZE = 256  # resources/icon.png
ENTRY = """[Desktop Entry]
Type=Application
Name=guiclassifier
GenericName=Image classifier trainer
Comment=Train an image classifier by pointing and clicking (the fast.ai lesson-1 recipe)
Exec={command} %f
Icon={icon}
Terminal=false
Categories=Education;Science;ArtificialIntelligence;
"""


def _quoted(word: str) -> str:
    """An Exec= argument as the Desktop Entry spec wants it quoted."""
    if not any(c in word for c in ' \t"\'\\$`'):
        return word
    return '"' + "".join("\\" + c if c in '"`$\\' else c for c in word) + '"'


def launch_command() -> str:
    """The window's launcher on PATH, else this Python running the package."""
    found = shutil.which(f"{APP_ID}-window") or shutil.which(APP_ID)
    words = [found] if found else [sys.executable, "-m", APP_ID]
    return " ".join(_quoted(w) for w in words)


def install_desktop_entry(data_home: Path | None = None) -> tuple[Path, Path | None]:
    """Write the menu entry and the icon under $XDG_DATA_HOME (~/.local/share); their paths."""
    data = data_home or Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    icon = icon_path()
    icon_file = None
    if icon is not None:
        icon_file = data / "icons" / "hicolor" / f"{ICON_SIZE}x{ICON_SIZE}" / "apps" / f"{APP_ID}.png"
        icon_file.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(icon, icon_file)
    entry = data / "applications" / f"{APP_ID}.desktop"
    entry.parent.mkdir(parents=True, exist_ok=True)
    entry.write_text(ENTRY.format(command=launch_command(), icon=APP_ID if icon_file else "applications-science"))
    return entry, icon_file
