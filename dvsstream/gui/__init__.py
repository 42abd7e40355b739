"""The desktop GUI (PySide6 + pyqtgraph): events, predictions and every head's spiking
attention, live from a camera, a network stream or a replayed recording.

* :mod:`~dvsstream.gui.state` -- settings and display arrays, no Qt (tested alone)
* :mod:`~dvsstream.gui.controller` -- source + model + pipeline lifecycle, no Qt
* :mod:`~dvsstream.gui.qt.event_view`, :mod:`~dvsstream.gui.qt.attention`,
  :mod:`~dvsstream.gui.qt.panels` -- the pyqtgraph widgets (:mod:`~dvsstream.gui.qt.plots`:
  what they share)
* :mod:`~dvsstream.gui.qt.controls` -- the control column; :mod:`~dvsstream.gui.qt.theme` -- the look
* :mod:`~dvsstream.gui.qt.window` -- the main window: construction and layout, composed of
  one mixin per concern (``window_messages``, ``window_source``, ``window_playback``,
  ``window_model``, ``window_clips``)
* :mod:`~dvsstream.gui.app` -- :func:`run_gui`, ``python -m dvsstream.gui.app``

Importing this package does not import Qt; :func:`run_gui` does.
"""

from __future__ import annotations


def run_gui(*args, **kwargs) -> int:
    """See :func:`dvsstream.gui.app.run_gui`."""
    from dvsstream.gui.app import run_gui as _run

    return _run(*args, **kwargs)


__all__ = ["run_gui"]
