"""The command line as a user runs it, for in-process CLI tests: :func:`as_a_user_in`."""

from __future__ import annotations

import sys
from pathlib import Path


def as_a_user_in(folder: Path, monkeypatch) -> None:
    """Work in ``folder`` with ``folder/home`` as HOME (its config and the window's
    settings there too) and no display, so that nothing outside ``folder`` is read or
    written and ``gui`` says it cannot open instead of opening."""
    monkeypatch.chdir(folder)
    monkeypatch.setenv("HOME", str(folder / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(folder / "home" / ".config"))
    monkeypatch.setenv("DVSSTREAM_GUI_SETTINGS", str(folder / "home" / "gui.json"))
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    widgets = sys.modules.get("PySide6.QtWidgets")
    if widgets is not None and widgets.QApplication.instance() is not None:
        # an earlier Qt test left its application: `gui` would open its window in it (and
        # wait for it to close) where a fresh process, as a user's, has none and says so
        monkeypatch.setattr(widgets.QApplication, "instance", staticmethod(lambda: None))


def write_user_inputs(root: Path, seed: int):
    """A user's folder of inputs for the command line: ``rec.h5`` (3,000 random events
    of a 128x128 sensor over 0.3 s), ``ev.npy`` (tonic's rows x, y, p, t in ms, x up to
    199: past a DVS128's edge), ``ck.pt`` (the shipped model), ``garbage.pt`` (no
    checkpoint), and previous outputs ``old.h5`` and ``old.mp4``. Returns the random
    generator (seeded ``seed``) for more."""
    import shutil

    import numpy as np

    from dvsstream.events import make_events
    from dvsstream.io.hdf5 import RecordingWriter
    from dvsstream.models.checkpoints import shipped_checkpoint

    rng = np.random.default_rng(seed)
    n = 3000
    ev = make_events(np.sort(rng.integers(0, 300_000, n)), rng.integers(0, 128, n), rng.integers(0, 128, n),
                     rng.integers(0, 2, n))
    with RecordingWriter(root / "rec.h5", (128, 128)) as w:
        w.write(ev)
    np.save(root / "ev.npy", np.stack([rng.integers(0, 200, n), rng.integers(0, 128, n), rng.integers(0, 2, n),
                                       np.sort(rng.integers(0, 300, n))], axis=1))
    shutil.copy(shipped_checkpoint("gesture_tiny"), root / "ck.pt")
    (root / "garbage.pt").write_bytes(b"not a checkpoint at all\n" * 10)
    (root / "old.h5").write_bytes(b"a previous output")
    (root / "old.mp4").write_bytes(b"a previous clip")
    return rng
