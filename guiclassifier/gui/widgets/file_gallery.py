"""A gallery of dataset images with the actions that fix the data: thumbnails decoded a few per
timer tick (so the window never stalls), Open folder, Move to a class or to quarantine, Undo last
move. The Interpret and Check data tabs show their images through it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QSize, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QIcon
from PySide6.QtWidgets import (
    QHBoxLayout,
    QListView,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from guiclassifier.gui.widgets.images import thumbnail_icon

THUMB = 96
THUMBS_PER_TICK = 12
QUARANTINE = ""  # the move target that means "out of the dataset"
PATH_ROLE = Qt.ItemDataRole.UserRole
CLASS_ROLE = Qt.ItemDataRole.UserRole + 1


@dataclass(frozen=True)
class GalleryImage:
    path: str
    caption: str  # under the thumbnail
    tooltip: str
    folder_class: str | None  # the class folder it is in: not offered as a move target


class FileGallery(QWidget):
    """`moveRequested(path, class or QUARANTINE)` and `undoRequested()` go to the panel, which asks
    and moves (gui.panels.file_moves). `icon_for(path)` draws a thumbnail; a tab may draw its own
    (the Interpret tab's heatmaps)."""

    moveRequested = Signal(str, str)
    undoRequested = Signal()

    def __init__(self, name: str, caption_lines: int, parent: QWidget | None = None) -> None:
        """`name` prefixes the widgets' object names; `caption_lines` sizes the grid's cells."""
        super().__init__(parent)
        self.classes: tuple[str, ...] = ()
        self.busy = False
        self.icon_for: Callable[[str], QIcon | None] = lambda path: thumbnail_icon(path, THUMB)
        self._pending: list[QListWidgetItem] = []
        self.thumb_timer = QTimer(self)
        self.thumb_timer.setInterval(0)
        self.thumb_timer.timeout.connect(self._load_some_thumbnails)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.grid = QListWidget()
        self.grid.setObjectName(f"{name}Gallery")
        self.grid.setViewMode(QListView.ViewMode.IconMode)
        self.grid.setIconSize(QSize(THUMB, THUMB))
        self.grid.setGridSize(QSize(THUMB + 90, THUMB + 16 * caption_lines + 8))
        self.grid.setResizeMode(QListView.ResizeMode.Adjust)
        self.grid.setMovement(QListView.Movement.Static)
        self.grid.setWordWrap(True)
        self.grid.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.grid.customContextMenuRequested.connect(
            lambda pos: self.grid.itemAt(pos) and self._actions_menu().exec(self.grid.mapToGlobal(pos)))
        self.grid.itemDoubleClicked.connect(lambda _: self.open_folder())
        self.grid.currentItemChanged.connect(lambda *_: self._update_actions())
        layout.addWidget(self.grid, 1)
        actions = QHBoxLayout()
        self.open_folder_button = QPushButton("Open folder")
        self.open_folder_button.setObjectName(f"{name}OpenFolderButton")
        self.open_folder_button.clicked.connect(self.open_folder)
        self.move_button = QToolButton()
        self.move_button.setObjectName(f"{name}MoveButton")
        self.move_button.setText("Move to...")
        self.move_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.undo_button = QPushButton("Undo last move")
        self.undo_button.setObjectName(f"{name}UndoButton")
        self.undo_button.clicked.connect(self.undoRequested)
        self.undo_button.setEnabled(False)
        for w in (self.open_folder_button, self.move_button, self.undo_button):
            actions.addWidget(w)
        actions.addStretch(1)
        layout.addLayout(actions)
        self.set_classes(())

    def set_classes(self, classes: Sequence[str]) -> None:
        """The classes files may be moved to."""
        self.classes = tuple(classes)
        self.move_button.setMenu(self._actions_menu(moves_only=True))

    def show_images(self, images: Sequence[GalleryImage]) -> None:
        self.grid.clear()
        self._pending = []
        for image in images:
            item = QListWidgetItem(image.caption)
            item.setData(PATH_ROLE, image.path)
            item.setData(CLASS_ROLE, image.folder_class)
            item.setToolTip(image.tooltip)
            self.grid.addItem(item)
            self._pending.append(item)
        self.thumb_timer.start()
        self._update_actions()

    def redraw_icons(self) -> None:
        """Draw every icon again (through `icon_for`), a few per tick."""
        self._pending = [self.grid.item(i) for i in range(self.grid.count())]
        self.thumb_timer.start()

    def _load_some_thumbnails(self) -> None:
        batch, self._pending = self._pending[:THUMBS_PER_TICK], self._pending[THUMBS_PER_TICK:]
        for item in batch:
            try:
                icon = self.icon_for(item.data(PATH_ROLE))
                item.setIcon(icon if icon is not None else QIcon())
            except RuntimeError:  # the item was deleted with the gallery's contents meanwhile
                pass
        if not self._pending:
            self.thumb_timer.stop()

    def paths(self) -> list[str]:
        """The paths shown, in order."""
        return [self.grid.item(i).data(PATH_ROLE) for i in range(self.grid.count())]

    def selected_path(self) -> str | None:
        item = self.grid.currentItem()
        return item.data(PATH_ROLE) if item is not None else None

    def _actions_menu(self, moves_only: bool = False) -> QMenu:
        menu = QMenu(self)
        if not moves_only:
            menu.addAction("Open folder", self.open_folder)
            menu.addSeparator()
        moves = [(name, menu.addAction(f"Move to class {name}", lambda n=name: self._request_move(n)))
                 for name in self.classes]

        def own_class_off() -> None:  # a file is not offered the class it is already in
            item = self.grid.currentItem()
            own = item.data(CLASS_ROLE) if item is not None else None
            for name, action in moves:
                action.setEnabled(name != own)

        menu.aboutToShow.connect(own_class_off)
        menu.addSeparator()
        menu.addAction("Move to quarantine (out of the dataset)", lambda: self._request_move(QUARANTINE))
        return menu

    def _request_move(self, target: str) -> None:
        path = self.selected_path()
        if path is not None and not self.busy:
            self.moveRequested.emit(path, target)

    def open_folder(self) -> None:
        path = self.selected_path()
        if path is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(Path(path).parent)))

    def set_state(self, busy: bool, can_undo: bool) -> None:
        """Files are not moved while a job runs: a rescan or a training run reads them."""
        self.busy = busy
        self.undo_button.setEnabled(can_undo and not busy)
        self._update_actions()

    def _update_actions(self) -> None:
        chosen = self.grid.currentItem() is not None
        self.open_folder_button.setEnabled(chosen)
        self.move_button.setEnabled(chosen and not self.busy)
