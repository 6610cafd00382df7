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


def test_log_axes_name_the_decades_in_one_format(qtbot) -> None:
    import math

    from guiclassifier.gui.widgets.plot_axes import DecadeAxis, decade_text

    axis = DecadeAxis(orientation="left")
    minor = [-5 + math.log10(m) for m in range(1, 10)] + [-4.0]
    strings = axis.logTickStrings(minor, 1, 1)
    assert strings[0] == "1e-5" and strings[-1] == "1e-4" and set(strings[1:-1]) == {""}
    assert axis.logTickStrings([math.log10(2e-4), math.log10(5e-4)], 1, 1) == ["2e-4", "5e-4"]  # inside a decade
    assert [decade_text(e) for e in (-3, -2, 0, 1, 3)] == ["1e-3", "0.01", "1", "10", "1e3"]
