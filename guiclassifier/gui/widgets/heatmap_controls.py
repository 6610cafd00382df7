"""The heatmap switch shared by the Interpret gallery and the Predict rows: a checkbox, an opacity
slider and a legend bar in the overlay's colours (viridis, core.heatmap_image), and the maps made
so far, from which it draws each image's icon."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QSlider, QWidget

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from PySide6.QtGui import QIcon

from guiclassifier.core.heatmap_image import DEFAULT_OPACITY, viridis
from guiclassifier.gui.widgets.images import heatmap_icon, pil_to_pixmap, thumbnail_icon

if TYPE_CHECKING:  # torch: imported where used (see workspace.engine)
    from guiclassifier.core.gradcam import Heatmap

LEGEND_WIDTH = 80


class HeatmapControls(QWidget):
    """`toggled(on)` when the checkbox changes; `opacityChanged(opacity)` while the slider moves."""

    toggled = Signal(bool)
    opacityChanged = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.cams: dict[str, np.ndarray | None] = {}  # by path; None: no map could be made
        self.made_by: object = None  # which model the maps are of (gui.panels.heatmap_jobs.model_version)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.check = QCheckBox("Heatmaps")
        self.check.setObjectName("heatmapCheck")
        self.check.setToolTip("Where the model looked for the class it chose (Grad-CAM on its last "
                              "convolutional layer), over the centre square it sees. That layer is 1/32 of "
                              "the image size: 64-pixel models give a coarse 2\u00d72 map, 224 a 7\u00d77 one")
        self.check.toggled.connect(self._toggled)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setObjectName("heatmapOpacity")
        self.slider.setRange(10, 90)
        self.slider.setValue(round(DEFAULT_OPACITY * 100))
        self.slider.setFixedWidth(90)
        self.slider.setToolTip("Opacity of the heatmap over the image")
        self.slider.valueChanged.connect(lambda v: self.opacityChanged.emit(v / 100))
        from PIL import Image

        bar = Image.fromarray(viridis(np.linspace(0, 1, LEGEND_WIDTH))[None].repeat(10, 0))
        self.legend = QLabel()
        self.legend.setPixmap(pil_to_pixmap(bar))
        self.legend.setToolTip("Colour scale: dark purple where the model looked least, yellow where most")
        self.opacity_label = QLabel("opacity")
        self.less, self.more = QLabel("  looked at: least"), QLabel("most")
        for w in (self.check, self.opacity_label, self.slider, self.less, self.legend, self.more):
            layout.addWidget(w)
        self._toggled(False)

    @property
    def on(self) -> bool:
        return self.check.isChecked()

    @property
    def opacity(self) -> float:
        return self.slider.value() / 100

    def remember(self, heatmaps: Sequence[Heatmap]) -> None:
        self.cams.update({h.path: h.cam for h in heatmaps})

    def forget(self) -> None:
        """The maps no longer say where the model looks (another model, or other images)."""
        self.cams, self.made_by = {}, None

    def missing(self, paths: Iterable[str], model: object) -> list[str]:
        """Those of `paths` (once each) with no map of `model` yet; maps of another model are forgotten."""
        if model != self.made_by:
            self.cams, self.made_by = {}, model
        return [p for p in dict.fromkeys(paths) if p not in self.cams]

    def icon(self, path: str, size: int) -> QIcon | None:
        """The image's heatmap overlay when the switch is on and its map is made, else its thumbnail."""
        cam = self.cams.get(path) if self.on else None
        return thumbnail_icon(path, size) if cam is None else heatmap_icon(path, cam, self.opacity, size)

    def _toggled(self, on: bool) -> None:
        for w in (self.opacity_label, self.slider, self.less, self.legend, self.more):
            w.setVisible(on)
        self.toggled.emit(on)
