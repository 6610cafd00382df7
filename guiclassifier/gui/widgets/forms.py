"""Small builders for the sidebar's forms."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QFormLayout, QHBoxLayout, QPushButton, QSpinBox


def spin_row(form: QFormLayout, label: str, lo: int, hi: int, value: int, name: str, tip: str = "") -> QSpinBox:
    """A labelled integer field added to `form`."""
    spin = QSpinBox()
    spin.setObjectName(name)
    spin.setRange(lo, hi)
    spin.setValue(value)
    spin.setToolTip(tip)
    form.addRow(label, spin)
    return spin


def button(text: str, name: str, slot: Callable[[], object], layout: QHBoxLayout) -> QPushButton:
    """A push button added to `layout`, calling `slot` when clicked."""
    widget = QPushButton(text)
    widget.setObjectName(name)
    widget.clicked.connect(lambda _=False: slot())
    layout.addWidget(widget)
    return widget
