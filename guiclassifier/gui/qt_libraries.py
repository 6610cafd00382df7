"""Before the window opens on Linux/X11: the system libraries Qt's xcb plugin needs.

Without one of them Qt aborts the process with a message that names only the first it missed
(and not always the right one). Checked here first, all of them, with the Debian/Ubuntu package
to install. No Qt is imported: this runs before Qt loads.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Mapping

# soname -> Debian/Ubuntu package: what PySide6's libqxcb.so and libQt6XcbQpa.so link to beyond
# libc, X11 basics and the libraries PySide6 ships (from `ldd` on both).
XCB_LIBRARIES = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-util.so.1": "libxcb-util1",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libfontconfig.so.1": "libfontconfig1",
    "libdbus-1.so.3": "libdbus-1-3",
}


def uses_xcb(env: Mapping[str, str] = os.environ, platform: str = sys.platform) -> bool:
    """Whether Qt will open the window through X11 (xcb) here."""
    if not platform.startswith("linux"):
        return False
    chosen = env.get("QT_QPA_PLATFORM", "")
    if chosen:
        return chosen.split(":")[0].split(";")[0] == "xcb"
    return bool(env.get("DISPLAY")) and not env.get("WAYLAND_DISPLAY")


def missing_libraries() -> list[tuple[str, str]]:
    """(soname, package) of each library the xcb plugin needs that cannot be loaded."""
    missing = []
    for soname, package in XCB_LIBRARIES.items():
        try:
            ctypes.CDLL(soname)
        except OSError:
            missing.append((soname, package))
    return missing


def missing_message(missing: list[tuple[str, str]]) -> str:
    names = ", ".join(soname for soname, _ in missing)
    packages = " ".join(package for _, package in missing)
    return (f"The window cannot open: Qt needs system libraries that are not installed ({names}).\n"
            f"On Debian or Ubuntu: sudo apt install {packages}\n"
            "The commands without a window still work: guiclassifier --help.")
