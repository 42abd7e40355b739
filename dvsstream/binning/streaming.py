"""Live binning: :class:`StreamingBinner` cuts a packet stream into causal sliding
windows (:class:`Window`, ``float32 [T, C, H, W]`` counts, oldest bin first), from a ring
of T bins whose memory does not grow with the stream; the model's region and resize are
applied per event. Times in µs; the counting is :mod:`~dvsstream.binning.kernels`'.
No torch, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np

from dvsstream.binning.frames import BinStats, as_event_array
from dvsstream.binning.kernels import _emit_kernel, _stream_kernel
from dvsstream.binning.region import check_region, output_size, spans_sensor
from dvsstream.events import sensor_size_of

__all__ = ["StreamingBinner", "Window"]


@dataclass
class Window:
    """One sliding window emitted by :class:`StreamingBinner`.

    ``frames``: ``float32 [T, C, H, W]``, oldest bin first (a private copy);
    with ``emit="new"`` only the ``new_bins`` newest bins ``[new_bins, C, H, W]``.
    ``t_start``/``t_end``: the window covers events with ``t_start <= t < t_end`` (µs).
    ``new_bins``: how many of the last bins are new since the previous window
    (``hop / bin_us``; all T for the first window) -- what a step-mode model feeds.
    ``events``: events counted in the window (in bounds, inside the ROI).
    ``gap_before``: empty windows skipped just before this one (a silent sensor).
    """

    frames: np.ndarray
    t_start: int
    t_end: int
    new_bins: int
    events: int
    gap_before: int = 0


class StreamingBinner:
    """Causal sliding-window binning for live streams.

    The window is ``window_us`` long, cut into ``n_bins`` bins of
    ``bin_us = window_us / n_bins`` (must divide exactly); a window is emitted
    every ``hop_us`` (a multiple of ``bin_us``). Bins are aligned to a time
    origin (``t_origin``, default the first event's timestamp). A window ending
    at ``t_end`` holds exactly the events with ``t_end - window_us <= t < t_end``
    and is emitted as soon as an event with ``t >= t_end`` arrives (or
    :meth:`advance` is called with a later time), so it never uses the future.

    State is a ring of ``n_bins`` count images; memory does not grow with the
    stream. Events older than the current window (out of order by more than
    the window) are counted as ``late`` and not binned.

    Options: ``downsample`` (integer factor: 128 -> 64 with 2), ``roi``
    (``x0, y0, width, height`` in sensor pixels, applied before downsampling),
    ``size`` (``(width, height)`` of the frames: the region resized to it, each
    region pixel ``(x, y)`` landing in frame pixel ``(x * width // roi_w,
    y * height // roi_h)`` -- sum-pooling for integer ratios, the exact nearest-bin
    resize otherwise; instead of ``downsample``; never larger than the region, except
    along an axis where the region is the whole sensor: a small sensor enlarged),
    ``merge_polarity`` (one channel), ``clip`` (cap each bin's count per pixel
    in the emitted frames, e.g. 1 for binary frames), ``emit``: ``"window"``
    (each :class:`Window` carries all T bins) or ``"new"`` (only its
    ``new_bins`` newest bins -- what a step-mode model consumes; a fraction of
    the copying at high window rates).
    """

    def __init__(
        self,
        sensor_size,
        window_us: int,
        n_bins: int,
        hop_us: int | None = None,
        *,
        downsample: int = 1,
        roi: tuple[int, int, int, int] | None = None,
        size: tuple[int, int] | None = None,
        merge_polarity: bool = False,
        clip: float | None = None,
        t_origin: int | None = None,
        emit_partial: bool = False,
        emit: str = "window",
    ) -> None:
        self.sensor_size = sensor_size_of(sensor_size)
        if n_bins < 1 or window_us < n_bins or window_us % n_bins:
            raise ValueError(
                f"window_us ({window_us}) must be a positive multiple of n_bins ({n_bins})"
            )
        self.n_bins = int(n_bins)
        self.window_us = int(window_us)
        self.bin_us = self.window_us // self.n_bins
        self.hop_us = int(hop_us if hop_us is not None else self.bin_us)
        if self.hop_us <= 0 or self.hop_us % self.bin_us:
            raise ValueError(
                f"hop_us ({self.hop_us}) must be a positive multiple of the bin length "
                f"window_us / n_bins = {self.bin_us} µs"
            )
        self.hop_bins = self.hop_us // self.bin_us
        if self.hop_bins > self.n_bins:
            raise ValueError(f"hop_us ({self.hop_us}) must not exceed window_us ({self.window_us})")
        if downsample < 1:
            raise ValueError(f"downsample must be >= 1, got {downsample}")
        w, h = self.sensor_size
        x0, y0, rw, rh = check_region(roi if roi is not None else (0, 0, w, h), (w, h), padded=True)
        out_w, out_h = output_size(rw, rh, downsample, size, spans_sensor((x0, y0, rw, rh), (w, h)))
        self.roi = (x0, y0, rw, rh)
        self.size = (out_w, out_h)
        self.merge_polarity = bool(merge_polarity)
        self.clip = clip
        self.emit_partial = emit_partial
        if emit not in ("window", "new"):
            raise ValueError(f"emit must be 'window' or 'new', got {emit!r}")
        self.emit = emit
        channels = 1 if merge_polarity else 2
        self.frame_shape = (self.n_bins, channels, out_h, out_w)
        self._geom = np.array([w, h, x0, y0, rw, rh, int(merge_polarity)], np.int64)
        self._col_of = (np.arange(rw, dtype=np.int64) * out_w) // rw
        self._row_of = (np.arange(rh, dtype=np.int64) * out_h) // rh
        self._ring = np.zeros(self.frame_shape, np.float32)
        self._bin_counts = np.zeros(self.n_bins, np.int64)
        self._state = np.zeros(10, np.int64)
        self._origin = t_origin
        self._started = False
        self.events_in = 0
        self.windows_emitted = 0
        self.empty_windows_skipped = 0
        self._pending_gap = 0
        if t_origin is not None:
            self._start(int(t_origin))

    # ------------------------------------------------------------- counters
    @property
    def stats(self) -> BinStats:
        """Accounting so far: ``events = binned + out_of_bounds + out_of_window``
        (out of window = outside the ROI, or too late to bin)."""
        s = self._state
        return BinStats(
            events=self.events_in,
            binned=int(s[4]),
            out_of_bounds=int(s[5]),
            out_of_window=int(s[6] + s[7]),
        )

    @property
    def late_events(self) -> int:
        return int(self._state[7])

    @property
    def outside_roi(self) -> int:
        return int(self._state[6])

    @property
    def next_window_end(self) -> int | None:
        """End time (µs) of the window that will be emitted next."""
        if not self._started:
            return None
        return self._origin + (int(self._state[3]) + 1) * self.bin_us

    # ----------------------------------------------------------------- feed
    def _start(self, origin: int) -> None:
        self._origin = origin
        s = self._state
        s[0] = 0
        s[1] = origin
        s[2] = self.bin_us
        # first window: bins 0 .. n_bins-1, or 0 .. hop_bins-1 when emitting partial windows
        s[3] = (self.hop_bins if self.emit_partial else self.n_bins) - 1
        s[8] = s[3] - self.n_bins + 1
        s[9] = origin
        self._started = True

    def push(self, events: np.ndarray) -> list[Window]:
        """Feed one packet (time-sorted; small reorderings are tolerated) and
        return the windows it completed, oldest first."""
        ev = as_event_array(events)
        if ev.size == 0:
            return []
        if not self._started:
            self._start(int(ev["t"][0]))
        self.events_in += ev.size
        out: list[Window] = []
        i = 0
        while True:
            i = _stream_kernel(ev, i, self._ring, self._bin_counts, self._state, self._geom,
                               self._col_of, self._row_of)
            if i >= ev.size:
                return out
            out.append(self._emit())
            self._skip_gap(int(ev[i]["t"]))

    def advance(self, t_now: int) -> list[Window]:
        """Declare that no event earlier than ``t_now`` will come (e.g. a quiet
        sensor); emits every window that ends at or before ``t_now``."""
        out: list[Window] = []
        if not self._started:
            return out
        while self.next_window_end <= t_now:
            out.append(self._emit())
            self._skip_gap(t_now)
        return out

    def flush(self) -> list[Window]:
        """End of stream: emit the pending window if it holds any event (its
        later bins are simply empty), so the last events are not lost."""
        if not self._started or not self._bin_counts.any():
            return []
        return [self._emit()]

    def __call__(self, packets: Iterable[np.ndarray], flush: bool = True) -> Iterator[Window]:
        """Bin a whole packet stream, yielding windows as they complete (and
        the pending one at the end when ``flush``)."""
        for packet in packets:
            yield from self.push(packet)
        if flush:
            yield from self.flush()

    # ----------------------------------------------------------------- emit
    def _emit(self) -> Window:
        s = self._state
        last = int(s[3])
        first = last - self.n_bins + 1
        new_bins = self.n_bins if self.windows_emitted == 0 else self.hop_bins
        n_out = self.n_bins if self.emit == "window" else new_bins
        frames = np.empty((n_out,) + self.frame_shape[1:], np.float32)
        clip = -1.0 if self.clip is None else float(self.clip)
        events = _emit_kernel(self._ring, self._bin_counts, frames, first % self.n_bins,
                              max(-first, 0), last + 1, self.hop_bins, clip)
        win = Window(
            frames=frames,
            t_start=self._origin + first * self.bin_us,
            t_end=self._origin + (last + 1) * self.bin_us,
            new_bins=new_bins,
            events=int(events),
            gap_before=self._pending_gap,
        )
        self._pending_gap = 0
        s[3] = last + self.hop_bins
        s[8] = s[3] - self.n_bins + 1
        self.windows_emitted += 1
        return win

    def _skip_gap(self, t_next: int) -> None:
        """After a long silence, jump over the windows that would all be empty
        (the ring holds no event and ``t_next`` lies beyond the next window);
        they are counted in :attr:`empty_windows_skipped` and in the next
        window's ``gap_before``."""
        if t_next < self.next_window_end or self._bin_counts.any():
            return
        s = self._state
        last = int(s[3])
        k = (t_next - self._origin) // self.bin_us  # bin of the next event
        n_skip = -(-(k - last) // self.hop_bins)  # empty windows that end before bin k
        if n_skip <= 0:
            return
        s[3] = last + n_skip * self.hop_bins
        s[8] = s[3] - self.n_bins + 1
        self.empty_windows_skipped += n_skip
        self._pending_gap += n_skip
