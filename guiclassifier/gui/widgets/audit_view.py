"""The Check data tab: what the data check (core.audit) found, grouped by kind with what each kind
means; a finding's images as thumbnails with their class and split; actions to fix the data."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QModelIndex, QRect, QSize, Qt, Signal
from PySide6.QtGui import QFont, QFontMetrics, QPainter, QPalette, QResizeEvent
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from guiclassifier.core.text import plural
from guiclassifier.gui.widgets.file_gallery import FileGallery, GalleryImage

if TYPE_CHECKING:  # torch: imported where used (see workspace.engine)
    from guiclassifier.core.audit import Finding
    from guiclassifier.core.curate import FileMove
    from guiclassifier.workspace.jobs import Audited

GALLERY_LIMIT = 300
FINDINGS_PER_KIND = 500  # more are counted, not listed: nobody reads further
NAMES_SHOWN = 3  # file names a group's line starts with
PATH_ROLE = Qt.ItemDataRole.UserRole
MEANING_ROLE = Qt.ItemDataRole.UserRole + 2  # a kind's row: what the kind means
PAD = 3
TITLES = {
    "leak": "Train/valid leaks",
    "conflicting_labels": "Conflicting labels",
    "exact_duplicates": "Exact duplicates",
    "near_duplicates": "Near duplicates",
    "label_error": "Labels to double-check",
    "small_class": "Small classes",
    "class_imbalance": "Class imbalance",
    "small_images": "Small images",
    "unlike_class": "Unlike their class",
}
NOTHING_YET = ("Check the dataset for copies, train/valid leaks, labels that look wrong, small or unequal "
               "classes and odd images. It needs no training: the pretrained network compares the images.")
NO_DATA = "Open a dataset, then check it here (or with Check data on the Data tab)."
PICK = "Click a finding on the left to see its images."
STEPS = (("reading", "reading every image"), ("duplicates", "comparing images"), ("labels", "checking labels"))


def title(kind: str) -> str:
    return TITLES.get(kind, kind.replace("_", " ").capitalize())


def describe_finding(finding: Finding) -> str:
    """One line for the list, starting with which images (findings of one kind read alike)."""
    if not finding.files:
        return finding.detail
    names = [Path(f).name for f in finding.files[:NAMES_SHOWN]]
    more = f" and {len(finding.files) - NAMES_SHOWN} more" if len(finding.files) > NAMES_SHOWN else ""
    return f"{', '.join(names)}{more}: {finding.detail}"


class _FindingsTree(QTreeWidget):
    """A tree whose rows wrap their text at the tree's width (see _WrappingDelegate)."""

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self.doItemsLayout()  # the rows take the heights of their text wrapped at the new width


class _WrappingDelegate(QStyledItemDelegate):
    """Rows as tall as their wrapped text (the default size hint is one line however narrow the
    column, so wrapped text was cut off); a kind's row is its title in bold over its meaning."""

    def __init__(self, tree: QTreeWidget) -> None:
        super().__init__(tree)
        self.tree = tree

    def _width(self, index: QModelIndex) -> int:
        depth, parent = 1, index.parent()
        while parent.isValid():
            depth, parent = depth + 1, parent.parent()
        return max(80, self.tree.viewport().width() - self.tree.indentation() * depth - 2 * PAD)

    @staticmethod
    def _height(font: QFont, width: int, text: str) -> int:
        return QFontMetrics(font).boundingRect(QRect(0, 0, width, 10_000), Qt.TextFlag.TextWordWrap, text).height()

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex) -> QSize:
        width = self._width(index)
        text, meaning = index.data(Qt.ItemDataRole.DisplayRole) or "", index.data(MEANING_ROLE)
        font = index.data(Qt.ItemDataRole.FontRole) or option.font
        height = self._height(font, width, text) + (self._height(option.font, width, meaning) if meaning else 0)
        return QSize(width, height + 2 * PAD)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        meaning = index.data(MEANING_ROLE)
        if not meaning:
            super().paint(painter, option, index)
            return
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        title_font, text = QFont(opt.font), opt.text
        opt.text = ""  # the style draws the row's background and selection; the texts are drawn here
        self.tree.style().drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, self.tree)
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        painter.save()
        painter.setPen(opt.palette.color(QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text))
        rect = opt.rect.adjusted(PAD, PAD, -PAD, -PAD)
        painter.setFont(title_font)
        painter.drawText(rect, Qt.TextFlag.TextWordWrap, text)
        painter.setFont(option.font)
        below = rect.adjusted(0, self._height(title_font, rect.width(), text), 0, 0)
        painter.drawText(below, Qt.TextFlag.TextWordWrap, meaning)
        painter.restore()


class AuditView(QWidget):
    checkRequested = Signal()
    moveRequested = Signal(str, str)  # path, class name or QUARANTINE
    undoRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("auditView")
        self.result: Audited | None = None
        self.findings: list[Finding] = []  # as listed: by kind, worst first
        self.moved: set[str] = set()
        self.busy = False
        self._summary = ""
        self._shown: tuple[str, object] | None = None  # ("kind", name) or ("finding", index)

        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        self.check_button = QPushButton("Check data")
        self.check_button.setObjectName("auditButton")
        self.check_button.setToolTip("Look for copies, leaks, wrong labels and odd classes or images")
        self.check_button.clicked.connect(self.checkRequested)
        row.addWidget(self.check_button)
        row.addStretch(1)
        layout.addLayout(row)
        self.summary = QLabel(NO_DATA)
        self.summary.setObjectName("auditSummary")
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.PlainText)
        layout.addWidget(self.summary)

        split = QSplitter(Qt.Orientation.Horizontal)
        self.tree = _FindingsTree()
        self.tree.setObjectName("findingsTree")
        self.tree.setHeaderHidden(True)
        self.tree.setWordWrap(True)
        self.tree.setUniformRowHeights(False)
        self.tree.setTextElideMode(Qt.TextElideMode.ElideNone)
        self.tree.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.tree.setItemDelegate(_WrappingDelegate(self.tree))
        self.tree.currentItemChanged.connect(lambda item, _: self._show_item(item))
        split.addWidget(self.tree)

        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        self.gallery_title = QLabel()
        self.gallery_title.setObjectName("auditGalleryTitle")
        self.gallery_title.setWordWrap(True)
        right_layout.addWidget(self.gallery_title)
        self.files = FileGallery("audit", caption_lines=2)
        self.files.moveRequested.connect(self.moveRequested)
        self.files.undoRequested.connect(self.undoRequested)
        right_layout.addWidget(self.files, 1)
        split.addWidget(right)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 1)
        split.setSizes([460, 540])
        layout.addWidget(split, 1)

    # ----- showing a check ----------------------------------------------------------------

    def set_result(self, result: Audited | None) -> None:
        """Show a check's findings (None: nothing checked for the open dataset)."""
        self.result = result
        self.moved = set()
        self._shown = None
        self.findings = []
        self.tree.clear()
        self._clear_gallery(PICK if result is not None else "")
        self.files.set_classes(result.classes if result is not None else ())
        if result is None:
            self._summary = ""
            self.summary.setText(NOTHING_YET)
            return
        from guiclassifier.core.audit import KINDS

        report = result.report
        kinds = list(KINDS) + sorted({f.kind for f in report.findings} - set(KINDS))
        bold = QFont(self.tree.font())
        bold.setBold(True)
        for kind in kinds:
            found = sorted(report.of_kind(kind), key=lambda f: -f.score)
            if not found:
                continue
            top = QTreeWidgetItem([f"{title(kind)} ({len(found)})"])
            top.setFont(0, bold)
            top.setData(0, PATH_ROLE, ("kind", kind))
            top.setData(0, MEANING_ROLE, KINDS.get(kind, ""))
            top.setToolTip(0, KINDS.get(kind, ""))
            for finding in found[:FINDINGS_PER_KIND]:
                child = QTreeWidgetItem([describe_finding(finding)])
                child.setData(0, PATH_ROLE, ("finding", len(self.findings)))
                child.setToolTip(0, "\n".join([finding.detail, *finding.files[:10]]))
                self.findings.append(finding)
                top.addChild(child)
            if len(found) > FINDINGS_PER_KIND:
                more = QTreeWidgetItem([f"... and {len(found) - FINDINGS_PER_KIND} more"])
                more.setFlags(Qt.ItemFlag.NoItemFlags)
                top.addChild(more)
            self.tree.addTopLevelItem(top)
            top.setExpanded(True)
        if not report.findings:
            empty = QTreeWidgetItem(["Nothing found." if not report.cancelled else "Nothing found before the stop."])
            empty.setFlags(Qt.ItemFlag.NoItemFlags)
            self.tree.addTopLevelItem(empty)
        self._summary = self._describe(result)
        self.summary.setText(self._summary)

    @staticmethod
    def _describe(result: Audited) -> str:
        from guiclassifier.core.audit import KINDS

        report = result.report
        found_kinds = {f.kind for f in report.findings}
        counts = [f"{title(k).lower()} {len(report.of_kind(k))}"
                  for k in [*KINDS, *sorted(found_kinds - set(KINDS))] if k in found_kinds]
        found = f"{plural(len(report.findings), 'finding')}" + (f" ({', '.join(counts)})" if counts else "")
        lines = [f"{plural(report.n_images, 'image')} checked in {result.seconds:.1f} s: {found}. "
                 f"Compared with {result.features}."]
        if report.cancelled:
            steps = [step for key, step in STEPS if key not in report.seconds]
            before = ", ".join(steps[:-1]) + (" and " if len(steps) > 1 else "") + steps[-1] if steps else "the end"
            lines = [f"Stopped after {result.seconds:.1f} s, before {before}: {found} until then. "
                     f"Compared with {result.features}."]
        unreadable = result.skipped + len(report.unreadable)
        if unreadable:
            where = []
            if result.skipped:
                where.append(f"{result.skipped} skipped by the scan, listed on the Data tab")
            if report.unreadable:
                where.append(f"{len(report.unreadable)} unreadable now")
            lines.append(f"Could not be read, so not checked: {plural(unreadable, 'file')} ({'; '.join(where)}).")
        if result.random_features:
            lines.append("The network's weights are random: near copies and wrong labels are found less well. "
                         "Choose ImageNet weights in the Model box for a better check.")
        return "\n".join(lines)

    def finding_texts(self) -> list[str]:
        """Every listed finding's line, in order."""
        return [describe_finding(f) for f in self.findings]

    def _show_item(self, item: QTreeWidgetItem | None) -> None:
        what = item.data(0, PATH_ROLE) if item is not None else None
        if what is None:
            return
        kind, key = what
        if kind == "kind":
            self.show_kind(key)
        else:
            self.show_finding(key)

    def show_finding(self, index: int) -> None:
        """The finding's images in the gallery (a finding about classes has none)."""
        finding = self.findings[index]
        self._shown = ("finding", index)
        files = list(zip(finding.files, finding.classes, finding.splits))
        heading = f"{title(finding.kind)}: {finding.detail}"
        if not files:
            self._clear_gallery(f"{heading}\nThis is about whole classes: the Data tab shows their counts.")
            return
        self._fill_gallery(files, heading)
        if len(self.files.paths()) == 1:  # one picture: ready for Open folder or Move to...
            self.files.grid.setCurrentRow(0)

    def show_kind(self, kind: str) -> None:
        """Every image of one kind's findings, worst finding first."""
        self._shown = ("kind", kind)
        files: dict[str, tuple[str, str, str]] = {}
        for finding in self.findings:
            if finding.kind == kind:
                for entry in zip(finding.files, finding.classes, finding.splits):
                    files.setdefault(entry[0], entry)
        from guiclassifier.core.audit import KINDS

        heading = f"{title(kind)}: {KINDS.get(kind, '')}"
        if not files:
            self._clear_gallery(f"{heading}\nThis is about whole classes: the Data tab shows their counts.")
            return
        self._fill_gallery(list(files.values()), heading)

    def _clear_gallery(self, text: str) -> None:
        self.files.show_images([])
        self.gallery_title.setText(text)

    def _fill_gallery(self, files: list[tuple[str, str, str]], heading: str) -> None:
        shown = [f for f in files if f[0] not in self.moved]
        gone = len(files) - len(shown)
        notes = []
        if gone:
            notes.append(f"{plural(gone, 'file')} moved since this check")
        if len(shown) > GALLERY_LIMIT:
            notes.append(f"showing the first {GALLERY_LIMIT} of {len(shown)}")
        self.gallery_title.setText(heading + (f" ({'; '.join(notes)})" if notes else ""))
        self.files.show_images([GalleryImage(path, f"{Path(path).name}\n{cls} \u00b7 {split}",
                                             f"{path}\nclass {cls}, {split} set", cls)
                                for path, cls, split in shown[:GALLERY_LIMIT]])

    def gallery_paths(self) -> list[str]:
        """The paths shown in the gallery, in order."""
        return self.files.paths()

    # ----- acting on a file ------------------------------------------------------------------

    def file_moved(self, move: FileMove) -> None:
        self.set_moved(self.moved | {move.source})

    def file_restored(self, move: FileMove) -> None:
        self.set_moved(self.moved - {move.source})

    def set_moved(self, paths: set[str]) -> None:
        """Files moved since the check (from this tab or another) leave the gallery and the
        counts; the findings stay as checked until the next check."""
        if self.result is None or paths == self.moved:
            return
        self.moved = set(paths)
        self._mark_moved()
        if self._shown is not None:
            kind, key = self._shown
            self.show_kind(key) if kind == "kind" else self.show_finding(key)
        note = f"[{plural(len(self.moved), 'file')} moved since this check: analyse again to update]"
        self.summary.setText(self._summary + (f"\n{note}" if self.moved else ""))

    def _mark_moved(self) -> None:
        """A finding whose files were all moved is greyed; one with some moved says how many."""
        grey = self.palette().color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text)
        normal = self.palette().color(QPalette.ColorRole.Text)
        for i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(i)
            for j in range(top.childCount()):
                child = top.child(j)
                what = child.data(0, PATH_ROLE)
                if what is None:
                    continue
                finding = self.findings[what[1]]
                gone = sum(f in self.moved for f in finding.files)
                text = describe_finding(finding)
                if gone:
                    text += f"  [{gone} of {len(finding.files)} moved]" if gone < len(finding.files) else "  [moved]"
                child.setText(0, text)
                child.setForeground(0, grey if finding.files and gone == len(finding.files) else normal)

    def set_state(self, busy: bool, can_check: bool, can_undo: bool) -> None:
        """Files are not moved while a job runs: a rescan or a training run reads them."""
        self.busy = busy
        self.check_button.setEnabled(can_check and not busy)
        if self.result is None:
            self.summary.setText(NOTHING_YET if can_check else NO_DATA)
        self.files.set_state(busy, can_undo)
