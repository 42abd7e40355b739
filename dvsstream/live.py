"""``dvsstream run``: classify a live stream or a recording headless, as it comes.

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
from pathlib import Path
from typing import Any, Callable, Optional

from dvsstream.errors import DvsstreamError
from dvsstream.fileio import check_output_file, replace_atomically

__all__ = ["DEFAULT_RECORDING", "REPLAY_PACKET_US", "default_recording", "classify_stream", "format_prediction",
           "run_live"]

#: the embedded default of ``dvsstream run`` and ``dvsstream gui``
DEFAULT_RECORDING = "gestures_waves_and_clap.h5"
#: replayed recordings are re-cut into packets of at most this many µs: windows close
#: as the events come, as from a camera, and paced replay is smooth
REPLAY_PACKET_US = 1_000


def default_recording() -> Optional[Path]:
    """The shipped gesture recording next to the package (a source checkout or an
    editable install), or None when it is not there."""
    path = Path(__file__).resolve().parent.parent / "recordings" / DEFAULT_RECORDING
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


def classify_stream(
    source_uri: str,
    checkpoint: Optional[str] = None,
    *,
    window_ms: Optional[float] = None,
    hop_ms: Optional[float] = None,
    bins: Optional[int] = None,
    mode: str = "step",
    speed: Optional[float] = None,
    device: Optional[str] = None,
    duration_s: Optional[float] = None,
    on_prediction: Optional[Callable] = None,
    roi: Optional[tuple[int, int, int, int]] = None,
    resize: Optional[tuple[int, int]] = None,
    on_start: Optional[Callable[[str], None]] = None,
) -> dict[str, Any]:
    """Run the pipeline on ``source_uri`` until the stream ends (or ``duration_s`` of
    wall time) and return the report dict (keys: see the module and ``dvsstream run``).
    ``on_prediction(prediction, class_names)`` is called for each prediction as it comes
    (in the classifier thread). ``roi`` ``(x0, y0, w, h)`` / ``resize`` ``(w, h)``: the
    region of the sensor the model sees and its size (default:
    :func:`~dvsstream.pipeline.geometry_for`). ``on_start(line)`` gets one line saying
    which source, model and binning run, before the first event."""
    from dvsstream.pipeline import Pipeline, live_binning, load_classifier_model
    from dvsstream.sources import open_source

    options: dict[str, Any] = {}
    is_file = os.path.exists(source_uri)
    if is_file:
        options.update(speed=speed, packet_us=REPLAY_PACKET_US)
    if not is_file and speed:
        raise DvsstreamError(f"--speed applies to recordings only, not to {source_uri}")
    source = open_source(source_uri, **options)
    try:
        loaded = load_classifier_model(checkpoint, device=device)
        try:
            binning = live_binning(loaded, source.sensor_size, window_ms=window_ms, hop_ms=hop_ms, n_bins=bins,
                                   roi=roi, resize=resize)
        except ValueError as exc:
            raise DvsstreamError(f"{source_uri}: {exc}") from None
        deterministic = source.kind == "file" and not speed
        try:
            names = loaded.class_names
            pipe = Pipeline(source, loaded, binning=binning, mode=mode, drop_stale=not deterministic,
                            energy_every_s=1.0,
                            on_prediction=(lambda p: on_prediction(p, names)) if on_prediction else None)
        except ValueError as exc:
            raise DvsstreamError(f"{source_uri}: {exc}") from None
    except BaseException:
        source.close()
        raise

    if on_start is not None:
        on_start(_what_runs(source, loaded, binning))
    pipe.start()
    deadline = time.perf_counter() + duration_s if duration_s else None
    interrupted = False
    try:
        while not pipe.wait(0.05):
            if deadline is not None and time.perf_counter() >= deadline:
                break
    except KeyboardInterrupt:
        interrupted = True
    finally:
        pipe.stop()
    if pipe.error is not None:
        raise pipe.error
    return _report(source_uri, source, loaded, pipe, mode, deterministic, interrupted)


def _report(source_uri: str, source, loaded, pipe, mode: str, deterministic: bool,
            interrupted: bool) -> dict[str, Any]:
    """The JSON report of a finished :func:`classify_stream` run."""
    binning = pipe.binning
    stats = pipe.snapshot_stats()
    preds = list(pipe.predictions)
    names = pipe.class_names
    labelled = [p for p in preds if p.label is not None]
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
        "predictions": [p.to_json(names) for p in preds],
        "events_read": stats.events_read,
        "events_binned": stats.events_binned,
        "events_out_of_bounds": stats.events_out_of_bounds,
        "events_late": stats.events_late,
        "events_outside_roi": stats.events_outside_roi,
        "events_shed": stats.events_shed,
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
    if labelled:
        report["accuracy"] = sum(p.top == p.label for p in labelled) / len(labelled)
        report["labelled_windows"] = len(labelled)
    return report


def binning_geometry(binning, sensor_size) -> str:
    """The region of ``sensor_size`` a binning feeds the model, in words."""
    from dvsstream.binning import Geometry

    return Geometry(binning.roi, tuple(binning.frame_size(sensor_size))).describe(sensor_size)


def _what_runs(source, loaded, binning) -> str:
    """One line: the source, the model and the binning in use."""
    cfg = loaded.model.config
    info = source.describe()
    return (f"source {info.get('path') or info.get('uri') or source.kind}"
            f" ({getattr(source, 'camera', None) or source.kind}); model {cfg.name or cfg.variant} "
            f"{cfg.img_size[1]}x{cfg.img_size[0]} T={binning.n_bins} on {loaded.device}; "
            f"{binning.window_us / 1000:g} ms window, a prediction every {binning.hop_us / 1000:g} ms; "
            f"{binning_geometry(binning, source.sensor_size)}")


def write_json(report: dict[str, Any], path: str) -> None:
    """Write atomically (a crash never leaves half a report, nor a temporary file)."""
    def dump(tmp: Path) -> None:
        with open(tmp, "w") as f:
            json.dump(report, f, indent=1, default=float)

    try:
        replace_atomically(check_output_file(path, "report"), dump)
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


def run_live(args) -> int:
    """CLI body of ``dvsstream run``."""
    source = source_or_default(args.source)
    if args.json_out:
        check_output_file(args.json_out, "report")  # before the run, not after it
    t0_box: list = []

    def show(pred, class_names) -> None:
        if not t0_box:
            t0_box.append(pred.t_start)
        print(format_prediction(pred, class_names, t0_box[0]), flush=True)

    report = classify_stream(
        source, args.checkpoint, window_ms=args.window_ms, hop_ms=args.hop_ms, bins=args.bins,
        mode=args.mode, speed=args.speed, device=args.device, duration_s=args.duration,
        on_prediction=None if args.quiet else show, roi=getattr(args, "roi", None),
        resize=getattr(args, "resize", None),
        on_start=lambda line: print(line, file=sys.stderr if args.quiet else sys.stdout, flush=True),
    )
    if args.json_out:
        write_json(report, args.json_out)
    lat = report["latency_ms"]
    summary = (f"{report['windows_classified']:,} predictions ({report['predictions_per_s']:.1f}/s), "
               f"{report['events_read']:,} events read = {report['events_binned']:,} binned + "
               f"{report['events_out_of_bounds']:,} out of bounds + "
               + (f"{report['events_outside_roi']:,} outside the region + " if report["events_outside_roi"] else "")
               + f"{report['events_late']:,} late"
               + (f" + {report['events_shed']:,} shed (behind the source)" if report["events_shed"] else "") + "; "
               f"{report['windows_skipped']:,} windows skipped")
    if lat:
        summary += f"; latency p50 {lat['p50']:.1f} ms, p95 {lat['p95']:.1f} ms"
    if "accuracy" in report:
        summary += f"; {100 * report['accuracy']:.1f} % of {report['labelled_windows']} labelled windows right"
    print(summary, file=sys.stderr if args.quiet else sys.stdout)
    if args.json_out:
        print(f"report: {args.json_out}", file=sys.stderr if args.quiet else sys.stdout)
    for w in report["warnings"]:
        print(f"warning: {w}", file=sys.stderr)
    return 0
