"""The Qt side of the window (PySide6 + pyqtgraph): widgets, controls, theme and the
main window. Everything Qt-free lives one folder up, in :mod:`dvsstream.gui`."""
