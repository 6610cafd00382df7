"""The Qt binding itself: faults of a PySide6 release that would crash the app in a long session."""

from __future__ import annotations

import sys

import pytest


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="None is immortal from Python 3.12 on")
def test_qt_calls_keep_none_alive(make_window) -> None:
    """PySide6 6.12.0 on Python 3.11 dropped a reference to None on each call returning nothing;
    after enough calls the interpreter aborts ("deallocating None")."""
    window = make_window()
    before = sys.getrefcount(None)
    for _ in range(200):
        window._update_enabled()
    assert sys.getrefcount(None) >= before - 50  # a few may be released legitimately
