"""The Teach panel's widgets: a folder of class recordings, a class name and a length,
Record, the classes recorded so far, Remove, Train, and a progress bar. Widgets only:
:class:`~dvsstream.gui.qt.window_teach.TeachMixin` connects them."""

from __future__ import annotations

from typing import Optional, Sequence

from PySide6 import QtCore, QtWidgets

from dvsstream.gui.qt.panels import ElidedLabel

__all__ = ["TeachPanel"]


class TeachPanel(QtWidgets.QGroupBox):
    """The "Teach" box of the control column."""

    def __init__(self, parent: Optional[QtWidgets.QWidget] = None) -> None:
        super().__init__("Teach", parent)
        self.setToolTip("Teach the model your own classes: record a few seconds of each from the current "
                        "source, then Train (the same as `dvsstream teach FOLDER`)")
        g = QtWidgets.QGridLayout(self)
        self.folder_label = ElidedLabel("")
        self.folder_label.setStyleSheet("color:#9aa4b2")
        self.folder_button = QtWidgets.QPushButton("Folder…")
        self.folder_button.setToolTip("Open or choose the folder of class recordings (one sub-folder per class)")
        g.addWidget(self.folder_label, 0, 0)
        g.addWidget(self.folder_button, 0, 1)
        self.name_edit = QtWidgets.QLineEdit()
        self.name_edit.setPlaceholderText("class name, e.g. wave")
        self.seconds_spin = QtWidgets.QSpinBox()
        self.seconds_spin.setRange(2, 120)
        self.seconds_spin.setValue(10)
        self.seconds_spin.setSuffix(" s")
        self.seconds_spin.setToolTip("How long each recording lasts")
        g.addWidget(self.name_edit, 1, 0)
        g.addWidget(self.seconds_spin, 1, 1)
        self.record_button = QtWidgets.QPushButton("Record")
        self.record_button.setCheckable(True)
        self.record_button.setToolTip("Record the current source for the chosen seconds into the class's folder")
        g.addWidget(self.record_button, 2, 0, 1, 2)
        self.class_list = QtWidgets.QListWidget()
        self.class_list.setMaximumHeight(110)
        self.class_list.setToolTip("The classes in the folder and their seconds of recordings")
        g.addWidget(self.class_list, 3, 0, 1, 2)
        self.remove_button = QtWidgets.QPushButton("Remove class")
        self.remove_button.setToolTip("Move the selected class's recordings aside (to .removed/ in the folder)")
        self.train_button = QtWidgets.QPushButton("Train")
        self.train_button.setToolTip("Teach a model these classes in the background; it replaces the current "
                                     "model when done")
        g.addWidget(self.remove_button, 4, 0)
        g.addWidget(self.train_button, 4, 1)
        self.progress = QtWidgets.QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.progress.setMaximumHeight(8)
        self.status = ElidedLabel("")
        self.status.setStyleSheet("color:#9aa4b2")
        g.addWidget(self.progress, 5, 0, 1, 2)
        g.addWidget(self.status, 6, 0, 1, 2)
        for button in self.findChildren(QtWidgets.QPushButton):
            button.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)

    def show_classes(self, rows: Sequence[tuple[str, int, float]]) -> None:
        """``(name, recordings, seconds)`` per class; the selection is kept by name."""
        keep = self.selected_class()
        self.class_list.clear()
        for name, n, seconds in rows:
            item = QtWidgets.QListWidgetItem(f"{name}  ·  {n} rec.  ·  {seconds:.1f} s")
            item.setData(QtCore.Qt.ItemDataRole.UserRole, name)
            self.class_list.addItem(item)
            if name == keep:
                item.setSelected(True)

    def selected_class(self) -> Optional[str]:
        items = self.class_list.selectedItems()
        return str(items[0].data(QtCore.Qt.ItemDataRole.UserRole)) if items else None

    def show_progress(self, fraction: Optional[float], text: str) -> None:
        """The bar (None: idle, empty) and the line under it."""
        self.progress.setValue(0 if fraction is None else int(round(1000 * fraction)))
        self.status.setText(text)
