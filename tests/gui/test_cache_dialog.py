"""File > Disk cache: what the caches hold, their limit, and Clear cache, while the window stays usable."""

from __future__ import annotations

import time

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction

from guiclassifier.core.cache_dirs import cache_entries, cache_root
from guiclassifier.core.cache_lease import hold
from guiclassifier.core.cache_limit import chosen_limit
from tests.core.test_cache_limit import ENTRY_BYTES, fake_copy, fake_entry


def settled(dialog, qtbot) -> None:
    qtbot.waitUntil(lambda: not dialog.busy and dialog.report is not None, timeout=20_000)


def test_the_dialog_shows_the_caches_and_sets_the_limit(make_window, qtbot) -> None:
    now = time.time()
    for i in range(3):
        fake_entry(cache_root(), f"a{i}", now - 100 + i)
    for i in range(5):
        fake_copy(cache_root(), f"c{i}", now - 50 + i)
    window = make_window()
    next(a for a in window.findChildren(QAction) if a.text() == "Disk cache...").trigger()  # File menu
    dialog = window.cache_dialog
    settled(dialog, qtbot)
    assert [dialog.rows[k][0].text() for k in ("activations", "resized")] == ["3 entries", "5 entries"]
    assert dialog.rows["total"][1].text().startswith("<b>8.0 kB</b> of ")
    assert dialog.automatic_radio.isChecked() and not dialog.limit_spin.isEnabled()

    dialog.chosen_radio.setChecked(True)  # applies the field's value (the automatic limit's)
    qtbot.waitUntil(lambda: chosen_limit(cache_root()) is not None, timeout=20_000)
    settled(dialog, qtbot)
    assert dialog.limit_spin.isEnabled()
    dialog.limit_spin.setDecimals(7)  # the limit: at most 0.0000045 GB, i.e. 4.5 kB
    dialog.limit_spin.setValue(0.0000045)
    dialog.limit_spin.editingFinished.emit()
    settled(dialog, qtbot)
    qtbot.waitUntil(lambda: dialog.message.text().startswith("Limit applied"), timeout=20_000)
    assert chosen_limit(cache_root()) == 4500
    assert dialog.message.text() == "Limit applied: 4.0 kB freed."
    survivors = {e.name for e in cache_entries()}
    assert survivors == {"c1.jpg", "c2.jpg", "c3.jpg", "c4.jpg"}  # the least recently used went first

    dialog.automatic_radio.setChecked(True)
    settled(dialog, qtbot)
    qtbot.waitUntil(lambda: chosen_limit(cache_root()) is None, timeout=20_000)


def test_clear_keeps_what_a_running_job_uses_and_says_so(make_window, qtbot) -> None:
    in_use = fake_entry(cache_root(), "in-use", time.time())
    fake_entry(cache_root(), "idle", time.time())
    lease = hold(in_use)
    window = make_window()
    dialog = window.show_cache_dialog()
    settled(dialog, qtbot)
    qtbot.mouseClick(dialog.clear_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.message.text().startswith("Cleared"), timeout=20_000)
    assert dialog.message.text() == f"Cleared: {ENTRY_BYTES / 1000:.1f} kB freed; 1 entry in use by a running job was kept."
    assert dialog.rows["activations"][0].text() == "1 entry"
    lease.close()


def test_a_cache_folder_that_cannot_be_read_is_a_message(make_window, qtbot, monkeypatch) -> None:
    import guiclassifier.gui.panels.cache_panel as panel

    def broken(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(cache_root()))

    monkeypatch.setattr(panel, "cache_report", broken)
    window = make_window()
    dialog = window.show_cache_dialog()
    qtbot.waitUntil(lambda: "could not be read" in dialog.message.text(), timeout=20_000)
    assert "Permission denied" in dialog.message.text() and not dialog.busy
