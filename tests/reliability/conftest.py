"""Fault tests drive the window too: its fixture comes from tests/gui."""

from tests.gui.conftest import make_window  # noqa: F401
