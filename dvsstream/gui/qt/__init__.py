"""The Qt side of the window (PySide6 + pyqtgraph): widgets, controls, theme and the
main window. Everything Qt-free lives one folder up, in :mod:`dvsstream.gui`.

* ``plots`` -- what the pyqtgraph views share (global options, palette, grid lines)
* ``event_view``, ``attention``, ``panels`` -- the views and the panels they sit in
* ``controls``, ``theme`` -- the control column; the look
* ``window`` -- ``MainWindow``: construction and layout, composed of one mixin per
  concern: ``window_messages``, ``window_source``, ``window_playback``,
  ``window_model``, ``window_clips``
"""
