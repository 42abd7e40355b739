"""The headless run (``dvsstream run``): classify a live stream or a recording, as it comes.

A file is replayed as fast as the pipeline allows (the source waits for the classifier,
so no window is skipped and the result is deterministic) unless ``speed`` is given; live
sources (camera, network, synthetic) and paced replays skip stale windows under overload
and count them. The report (``--json-out``) holds every prediction and the accounting.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from dvsstream.errors import DvsstreamError
from dvsstream.fileio import check_file_target, replace_atomically
from dvsstream.binning.geometry import binning_geometry, binning_mismatch, check_window

__all__ = ["DEFAULT_RECORDING", "REPLAY_PACKET_US", "RunConfig", "classify_stream", "default_recording",
           "format_prediction", "format_summary", "run_memory_bytes", "source_or_default", "window_memory_bytes",
           "write_json"]

#: the embedded default of ``dvsstream run`` and ``dvsstream gui``
DEFAULT_RECORDING = "gestures_waves_and_clap.h5"
#: replayed recordings are re-cut into packets of at most this many µs: windows close
#: as the events come, as from a camera, and paced replay is smooth
REPLAY_PACKET_US = 1_000


def default_recording() -> Optional[Path]:
    """The shipped gesture recording next to the package (a source checkout or an
    editable install), or None when it is not there."""
    path = Path(__file__).resolve().parents[2] / "recordings" / DEFAULT_RECORDING  # the repository's
    return path if path.is_file() else None


def format_prediction(pred, class_names, t0_us: int = 0, k: int = 3) -> str:
    """One line: stream time of the window's end, the top ``k`` classes, the true label."""
    tops = "  ".join(f"{class_names[i]} {p:.2f}" for i, p in pred.top_k(k))
    line = f"t = {(pred.t_end - t0_us) / 1e6:8.3f} s  {tops}"
    if pred.label is not None:
        truth = class_names[pred.label] if 0 <= pred.label < len(class_names) else str(pred.label)
        mark = "ok" if pred.top == pred.label else "WRONG"
        line += f"  [true: {truth}, {mark}]"
    return line + f"  ({pred.latency_ms:.1f} ms)"


@dataclass(frozen=True)
class RunConfig:
    """What a headless run runs and how. ``checkpoint``: our checkpoint (None: the
    shipped gesture model), on ``device`` (``"cpu"``, ``"cuda"``; None: CUDA when
    present). ``window_ms`` / ``hop_ms`` / ``bins``: the live binning's window, hop (ms)
    and time bins T (None: the checkpoint's). ``mode``: ``"step"`` or ``"window"``
    (:class:`~dvsstream.stream.pipeline.Pipeline`). ``speed``: a recording's replay pace
    (1 = real time; None: as fast as the pipeline allows, deterministic).
    ``duration_s``: stop after this many seconds of stream time, like ``record
    --duration`` (see :func:`_run_until`; None: at the end). ``start_s``: a recording
    starts this many seconds after its first event (past the end: a one-line error).
    ``roi`` ``(x0, y0, w, h)`` / ``resize`` ``(w, h)``: the region of the sensor the
    model sees and its size (default: :func:`~dvsstream.binning.geometry.geometry_for`).
    ``sensor_size`` ``(w, h)``: the sensor of a Prophesee or ``.npy`` recording whose
    header states none (``--sensor-size``). ``event_filter``: the noise filters
    (``--filter`` text or :class:`~dvsstream.filters.FilterSpec`; None: none) before the
    binning."""

    checkpoint: Optional[str] = None
    device: Optional[str] = None
    window_ms: Optional[float] = None
    hop_ms: Optional[float] = None
    bins: Optional[int] = None
    mode: str = "step"
    speed: Optional[float] = None
    duration_s: Optional[float] = None
    start_s: Optional[float] = None
    roi: Optional[tuple[int, int, int, int]] = None
    resize: Optional[tuple[int, int]] = None
    sensor_size: Optional[tuple[int, int]] = None
    event_filter: Any = None


def classify_stream(
    source_uri: str,
    config: Optional[RunConfig] = None,
    *,
    on_prediction: Optional[Callable] = None,
    on_start: Optional[Callable[[str], None]] = None,
    predictions_file: Optional[os.PathLike | str] = None,
    keep_predictions: bool = True,
) -> dict[str, Any]:
    """Run the pipeline on ``source_uri`` as ``config`` says (None: :class:`RunConfig`'s
    defaults) until the stream ends (or ``config.duration_s`` seconds of stream time)
    and return the report dict (keys: see the module and ``dvsstream run``).
    ``on_prediction(prediction, class_names)`` is called for each prediction as it comes
    (in the classifier thread). ``predictions_file``: append each prediction to this
    JSON Lines file as it comes and keep none in memory (the report then has no
    ``predictions`` key; :func:`write_json` takes them from the file), so that an
    hours-long run holds bounded memory; ``keep_predictions=False`` keeps none either
    (``dvsstream run`` without ``--json-out``). ``on_start(line)`` gets one line saying
    which source, model and binning run, before the first event."""
    from dvsstream.stream.pipeline import Pipeline, load_classifier_model
    from dvsstream.io.base import start_source_at

    config = config if config is not None else RunConfig()
    source = _open_run_source(source_uri, config)
    try:
        start_source_at(source, config.start_s, source_uri)
        loaded = load_classifier_model(config.checkpoint, device=config.device)
        binning = _run_binning(loaded, source.sensor_size, config, source_uri)
        deterministic = source.kind == "file" and not config.speed
        spill = open(predictions_file, "a") if predictions_file is not None else None
        try:
            names = loaded.class_names
            pipe = Pipeline(source, loaded, binning=binning, mode=config.mode, drop_stale=not deterministic,
                            energy_every_s=1.0, history=None if spill is None and keep_predictions else 16,
                            event_filter=config.event_filter,
                            on_prediction=_prediction_sink(on_prediction, spill, names))
        except BaseException:
            if spill is not None:
                spill.close()
            raise
    except ValueError as exc:
        source.close()
        raise DvsstreamError(f"{source_uri}: {exc}") from None
    except BaseException:
        source.close()
        raise

    if on_start is not None:
        on_start(_what_runs(source, loaded, binning))
    try:
        interrupted = _run_until(pipe, config.duration_s)
    finally:
        if spill is not None:
            spill.close()
    if pipe.error is not None:
        raise pipe.error
    return _report(source_uri, source, loaded, pipe, config.mode, deterministic, interrupted,
                   spilled=spill is not None or not keep_predictions)


def _open_run_source(source_uri: str, config: RunConfig):
    """The open source of a run: a recording re-cut into packets of
    :data:`REPLAY_PACKET_US` at ``config.speed``, or a live source (which takes no
    speed: a one-line :class:`DvsstreamError`)."""
    from dvsstream.io import open_source

    options: dict[str, Any] = {}
    is_file = os.path.exists(source_uri)
    if is_file:
        options.update(speed=config.speed, packet_us=REPLAY_PACKET_US)
    if config.sensor_size is not None:  # --sensor-size: a recording whose header states none
        options["sensor_size"] = config.sensor_size
    if not is_file and config.speed:
        raise DvsstreamError(f"--speed applies to recordings only, not to {source_uri}")
    return open_source(source_uri, **options)


def _run_binning(loaded, sensor_size, config: RunConfig, source_uri: str):
    """The :class:`~dvsstream.binning.geometry.BinningConfig` of a run: the checkpoint's
    live binning with ``config``'s window / hop / T and region on a ``sensor_size``
    ``(w, h)`` sensor, checked (a one-line :class:`DvsstreamError` when the parts do
    not fit; a warning line per difference from the checkpoint's; the memory it needs)."""
    from dvsstream.stream.pipeline import pipeline_binning

    trained = loaded.binning  # options left out keep the checkpoint's; the mix must fit
    check_window(trained.window_us / 1000 if config.window_ms is None else config.window_ms,
                 trained.n_bins if config.bins is None else config.bins,
                 trained.hop_us / 1000 if config.hop_ms is None else config.hop_ms, to_us=round)
    try:
        binning = pipeline_binning(loaded, sensor_size, window_ms=config.window_ms, hop_ms=config.hop_ms,
                                   n_bins=config.bins, roi=config.roi, resize=config.resize)
    except ValueError as exc:
        raise DvsstreamError(f"{source_uri}: {exc}") from None
    check_binning(loaded, binning, sensor_size)
    return binning


def _run_until(pipe, duration_s: Optional[float]) -> bool:
    """Start ``pipe``, wait for the end of the stream or ``duration_s`` seconds of stream
    time (the source's clock: the wall time for a camera, a network stream or ``synthetic:``,
    ``--speed`` times the wall time for a paced replay, as fast as it reads unpaced; the
    clock of ``record --duration`` too); stop it. True when interrupted by Ctrl-C.
    A real-time source whose clock shows only through its events (a still scene sends
    none) also stops at its :func:`~dvsstream.io.base.wall_deadline`."""
    from dvsstream.io.base import wall_deadline

    deadline = wall_deadline(pipe.source, duration_s)
    if duration_s is not None:
        pipe.stop_after_us = round(duration_s * 1e6)
    pipe.start()
    try:
        while not pipe.wait(0.05):
            if deadline is not None and time.monotonic() >= deadline:
                break
    except KeyboardInterrupt:
        return True
    finally:
        pipe.stop()
    return False


def _prediction_sink(on_prediction: Optional[Callable], spill, names: list[str]) -> Optional[Callable]:
    """The pipeline's ``on_prediction``: the caller's callback, and a JSON line per
    prediction appended to ``spill`` (an open text file) when given."""
    if on_prediction is None and spill is None:
        return None

    def sink(pred) -> None:
        if spill is not None:
            spill.write(json.dumps(pred.to_json(names), default=float) + "\n")
        if on_prediction is not None:
            on_prediction(pred, names)
    return sink


def _report(source_uri: str, source, loaded, pipe, mode: str, deterministic: bool,
            interrupted: bool, spilled: bool = False) -> dict[str, Any]:
    """The JSON report of a finished :func:`classify_stream` run (without ``predictions``
    when they were ``spilled`` to a file; accuracy is then counted by the pipeline)."""
    binning = pipe.binning
    stats = pipe.snapshot_stats()
    names = pipe.class_names
    report: dict[str, Any] = {
        "source": source_uri,
        "source_info": source.describe(),
        "checkpoint": loaded.checkpoint,
        "model": loaded.model.config.to_dict(),
        "device": str(loaded.device),
        "binning": binning.to_dict(),
        "geometry": binning_geometry(binning, source.sensor_size),
        "mode": mode,
        "deterministic": deterministic,
        "interrupted": interrupted,
        "class_names": names,
        "events_read": stats.events_read,
        "events_binned": stats.events_binned,
        "events_out_of_bounds": stats.events_out_of_bounds,
        "events_late": stats.events_late,
        "events_outside_roi": stats.events_outside_roi,
        "events_shed": stats.events_shed,
        "events_filtered": stats.events_filtered,
        "filter": stats.filter,
        "windows": stats.windows,
        "windows_classified": stats.windows_classified,
        "windows_skipped": stats.windows_skipped,
        "empty_windows": stats.empty_windows,
        "latency_ms": stats.latency_ms,
        "inference_ms": stats.inference_ms,
        "stage_s": stats.stage_s,
        "predictions_per_s": stats.windows_classified / stats.wall_s if stats.wall_s else 0.0,
        "energy_mj_per_window": stats.energy_mj_per_window,
        "wall_s": stats.wall_s,
        "warnings": list(getattr(source.stats, "warnings", [])),
    }
    if not spilled:
        report["predictions"] = [p.to_json(names) for p in pipe.predictions]
    if pipe.labelled_windows:
        report["accuracy"] = pipe.correct_windows / pipe.labelled_windows
        report["labelled_windows"] = pipe.labelled_windows
    return report


def run_memory_bytes(config, binning, sensor_size) -> float:
    """Estimated bytes a run needs beyond the model's weights: the binner's frames (a
    window of ``T`` float32 ``[2, h, w]`` frames, held about 3 times: ring, window,
    model input) and the activations of one forward over ``T`` steps (input, the
    first SPS stage's ``dim/8`` maps twice, the blocks' tokens x dim x 4; measured on
    the shipped model: 0.15 MB a step against this estimate's 0.36 MB)."""
    w, h = binning.frame_size(sensor_size)
    return window_memory_bytes(config, (h, w), binning.n_bins)


def window_memory_bytes(config, frame_hw: tuple[int, int], n_bins: int) -> float:
    """:func:`run_memory_bytes` of a window of ``n_bins`` frames of ``frame_hw`` = ``(h, w)``
    pixels through a model of ``config`` (bytes, float32; forward only)."""
    h, w = frame_hw
    frame = 2 * h * w
    tokens = (h >> sum(config.pools)) * (w >> sum(config.pools)) or 1
    step = frame + 2 * max(config.dim // 8, 1) * h * w + config.depth * tokens * config.dim * 4
    return 4.0 * n_bins * (3 * frame + step)


def check_binning(loaded, binning, sensor_size) -> None:
    """Before a run: one warning line per difference from the checkpoint's binning
    (stderr), and a one-line refusal when the run would need more memory than there is."""
    from dvsstream.heap import check_memory

    for line in binning_mismatch(loaded.binning, binning):
        print(f"warning: {line}", file=sys.stderr)
    need = run_memory_bytes(loaded.model.config, binning, sensor_size)
    check_memory(need, f"a window of {binning.n_bins} bins", "use fewer --bins (the checkpoint's: leave it out)")


def _what_runs(source, loaded, binning) -> str:
    """One line: the source, the model and the binning in use."""
    cfg = loaded.model.config
    info = source.describe()
    return (f"source {info.get('path') or info.get('uri') or source.kind}"
            f" ({getattr(source, 'camera', None) or source.kind}); model {cfg.name or cfg.variant} "
            f"{cfg.img_size[1]}x{cfg.img_size[0]} T={binning.n_bins} on {loaded.device}; "
            f"{binning.window_us / 1000:g} ms window, a prediction every {binning.hop_us / 1000:g} ms; "
            f"{binning_geometry(binning, source.sensor_size)}")


def write_json(report: dict[str, Any], path: str, predictions_file: Optional[os.PathLike | str] = None) -> None:
    """Write atomically (a crash never leaves half a report, nor a temporary file).
    ``predictions_file``: a JSON Lines file of predictions (from :func:`classify_stream`)
    copied line by line into the report's ``predictions`` list, never all in memory."""
    def dump(tmp: Path) -> None:
        with open(tmp, "w") as f:
            if predictions_file is None:
                json.dump(report, f, indent=1, default=float)
                return
            head = json.dumps({**report, "predictions": []}, indent=1, default=float)
            f.write(head[:head.rindex("[]")] + "[")
            with open(predictions_file) as lines:
                for i, line in enumerate(lines):
                    f.write(("\n  " if i == 0 else ",\n  ") + line.rstrip("\n"))
            f.write("\n ]\n}")

    try:
        replace_atomically(check_file_target(path, "report"), dump)
    except OSError as exc:
        raise DvsstreamError(f"{path}: cannot write the report ({exc.strerror or exc})") from None


def source_or_default(source: Optional[str], option: str = "--source URI") -> str:
    """``source``, else the shipped recording; a one-line :class:`DvsstreamError` naming
    ``option`` when neither is there (an installed package without ``recordings/``)."""
    if source is not None:
        return source
    rec = default_recording()
    if rec is None:
        raise DvsstreamError(f"no {option.split()[0]} given and the shipped recording "
                             f"recordings/{DEFAULT_RECORDING} is not here; pass {option}")
    return str(rec)


def _filtered_part(report: dict[str, Any]) -> str:
    """`` + N removed by --filter SPEC (X %)`` of the summary, or nothing without a filter."""
    if report.get("filter", "none") == "none":
        return ""
    share = 100 * report["events_filtered"] / report["events_read"] if report["events_read"] else 0.0
    return f" + {report['events_filtered']:,} removed by --filter {report['filter']} ({share:.1f} %)"


def format_summary(report: dict[str, Any]) -> str:
    """One line: the accounting of a :func:`classify_stream` report (predictions and
    their rate, the events read and where they went, the windows skipped, latency
    percentiles in ms and the accuracy on labelled windows when there are any)."""
    lat = report["latency_ms"]
    summary = (f"{report['windows_classified']:,} predictions ({report['predictions_per_s']:.1f}/s), "
               f"{report['events_read']:,} events read = {report['events_binned']:,} binned + "
               f"{report['events_out_of_bounds']:,} out of bounds + "
               + (f"{report['events_outside_roi']:,} outside the region + " if report["events_outside_roi"] else "")
               + f"{report['events_late']:,} late"
               + (f" + {report['events_shed']:,} shed (behind the source)" if report["events_shed"] else "")
               + _filtered_part(report) + "; "
               f"{report['windows_skipped']:,} windows skipped")
    if lat:
        summary += f"; latency p50 {lat['p50']:.1f} ms, p95 {lat['p95']:.1f} ms"
    if "accuracy" in report:
        summary += f"; {100 * report['accuracy']:.1f} % of {report['labelled_windows']} labelled windows right"
    return summary
