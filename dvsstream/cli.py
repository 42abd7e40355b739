"""The ``dvsstream`` command.

Subcommands import what they need lazily, so that ``dvsstream info`` starts in
well under two seconds (no torch, no tonic). A :class:`DvsstreamError` becomes a
one-line message and exit status 2, Ctrl-C exit status 130; anything else is a
bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Sequence

from dvsstream import __version__
from dvsstream.errors import DvsstreamError
from dvsstream.validate import (at_most, check_memory, device_name, finite_float, nonneg_float, nonneg_int,
                                positive_float, positive_int)


#: the one clock of ``record --duration`` and ``run --duration``, for their help
STREAM_CLOCK = ("from the first event: the wall clock for a camera, a network stream or synthetic:; "
                "for a recording replayed at --speed X, X times the wall clock; unpaced, as fast as it reads")


# ------------------------------------------------------------------ helpers
def _progress(total: int | None, unit: str = "ev", desc: str = ""):
    """A tqdm bar on stderr, shown on terminals only."""
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, unit_scale=True, desc=desc, disable=None,
                file=sys.stderr, dynamic_ncols=True, leave=False)


def _fmt_rate(rate: float) -> str:
    return f"{rate / 1e6:.3f} M ev/s" if rate >= 1e5 else f"{rate / 1e3:.1f} k ev/s"


def _print_warnings(stats) -> None:
    for message in stats.warnings:
        print(f"warning: {message}", file=sys.stderr)


# ------------------------------------------------------------------ info
def cmd_info(args: argparse.Namespace) -> int:
    from dvsstream.events import EventRateMeter
    from dvsstream.sources import open_source

    meter = EventRateMeter(bin_us=args.peak_bin_us)
    with open_source(args.file, sensor_size=args.sensor_size) as source:
        info = source.describe()
        print(f"file:        {args.file}")
        print(f"format:      {info['format']}")
        print(f"camera:      {info['camera'] or '(not recorded)'}")
        print(f"resolution:  {info['width']} x {info['height']}")
        _print_model_view((info["width"], info["height"]), args)
        sys.stdout.flush()
        with _progress(getattr(source, "n_events", None), desc="reading") as bar:
            for packet in source:
                meter.update(packet)
                bar.update(packet.size)
        stats = source.stats
        labels = getattr(source, "labels", None)
    print(f"events:      {meter.events:,}")
    if meter.t_first is not None:
        print(f"time:        {meter.t_first} .. {meter.t_last} µs")
    print(f"duration:    {meter.duration_s:.3f} s")
    print(f"mean rate:   {_fmt_rate(meter.mean_rate)}")
    print(f"peak rate:   {_fmt_rate(meter.peak_rate)} (busiest {args.peak_bin_us / 1000:g} ms)")
    if labels is not None:
        print(f"labels:      {len(labels)} labelled segment(s)")
    if stats.out_of_bounds or stats.out_of_order:
        print(f"repaired:    {stats.out_of_bounds:,} out of bounds (dropped), "
              f"{stats.out_of_order:,} out of order (re-sorted)")
    _print_warnings(stats)
    return 0


def _print_model_view(sensor_size, args: argparse.Namespace) -> None:
    """The region of the sensor a model of ``--model-size`` (default: the shipped model's
    64x64) would see, and how it is scaled; or why that region cannot be used."""
    from dvsstream.binning import geometry_for

    size = args.model_size
    try:
        geometry = geometry_for(size, sensor_size, args.roi, args.resize)
        text = geometry.describe(sensor_size)
    except ValueError as exc:
        if args.roi is not None or args.resize is not None:  # what the user asked for cannot be
            raise DvsstreamError(f"{args.file}: {exc}") from None
        text = f"nothing: {exc}"  # the file is still described
    print(f"model sees:  {text} (a {size[0]}x{size[1]} model; --roi / --resize to change)")


# ------------------------------------------------------------------ record / convert
def _record(source_uri: str, out: str, duration: float | None, desc: str, force: bool,
            start_s: float | None = None, **options) -> int:
    from dvsstream.recording import record
    from dvsstream.sources import open_source, start_source_at

    with open_source(source_uri, **options) as source:
        start_source_at(source, start_s, source_uri)
        with _progress(getattr(source, "n_events", None), desc=desc) as bar:
            try:
                summary = record(source, out, duration_s=duration, overwrite=force,
                                 progress=lambda s: bar.update(s["events"] - bar.n))
            except ValueError as exc:
                raise DvsstreamError(f"{source_uri}: {exc}") from None
        stats = source.stats
    print(f"wrote {summary['events']:,} events ({summary['duration_s']:.3f} s of stream) to {out}")
    if summary["events"] == 0:
        print(f"warning: no events arrived in {summary['wall_s']:.1f} s (a still scene or a covered lens?); "
              f"{out} holds none", file=sys.stderr)
    if summary.get("interrupted"):
        print("stopped by Ctrl-C; the file holds everything received until then")
    _print_warnings(stats)
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    """Every event kept: the sensor grows to hold events outside the declared one
    (:func:`dvsstream.recording.convert`); written beside OUTPUT, renamed when complete."""
    from dvsstream.recording import convert

    roi = args.roi
    with _progress(None, desc="converting") as bar:
        try:
            summary = convert(args.input, args.output, overwrite=args.force, roi=roi, sensor_size=args.sensor_size,
                              progress=lambda s: bar.update(s["events"] + s["outside_roi"] - bar.n))
        except ValueError as exc:
            raise DvsstreamError(f"{args.input}: {exc}") from None
    cropped = (f" (the {roi[2]}x{roi[3]} region at ({roi[0]}, {roi[1]}); {summary['outside_roi']:,} events "
               "outside it not written)" if roi is not None else "")
    print(f"wrote {summary['events']:,} events ({summary['duration_s']:.3f} s of stream){cropped} to {args.output}")
    if "sensor_grown_from" in summary:
        (w0, h0), (w, h) = summary["sensor_grown_from"], summary["sensor"]
        print(f"note: {summary['outside_declared']:,} events lie outside the {w0}x{h0} sensor the input declares; "
              f"the recording's sensor is {w}x{h} so that every event is kept (--roi 0,0,{w0},{h0} keeps the "
              "declared sensor only)", file=sys.stderr)
    for message in summary["warnings"]:
        print(f"warning: {message}", file=sys.stderr)
    return 0


def cmd_record(args: argparse.Namespace) -> int:
    options = {}
    if args.speed is not None:
        options["speed"] = args.speed
    return _record(args.source, args.out, args.duration, "recording", args.force, start_s=args.start, **options)


# ------------------------------------------------------------------ replay
def cmd_replay(args: argparse.Namespace) -> int:
    from dvsstream.binning import StreamingBinner
    from dvsstream.events import EventRateMeter
    from dvsstream.sources import open_file, start_source_at

    meter = EventRateMeter()
    windows = 0
    start = time.perf_counter()
    last_print = start
    with open_file(args.file, speed=args.speed, loop=False,  # paced: 10 ms packets
                   sensor_size=args.sensor_size) as source:
        start_source_at(source, args.start, args.file)
        w, h = source.sensor_size
        check_memory(4.0 * 2 * args.bins * 2 * (w // args.downsample or 1) * (h // args.downsample or 1),
                     f"--bins {args.bins}", "use fewer --bins")  # a window of float32 frames, twice
        try:
            binner = StreamingBinner(source.sensor_size, int(args.window_ms * 1000), args.bins,
                                     int(args.hop_ms * 1000), downsample=args.downsample)
        except ValueError as exc:
            raise DvsstreamError(f"replay: {exc}") from None
        total = getattr(source, "n_events", None)
        for packet in source:
            meter.update(packet)
            windows += len(binner.push(packet))
            now = time.perf_counter()
            if now - last_print >= args.progress_s:
                last_print = now
                share = f" ({100 * meter.events / total:5.1f} %)" if total else ""
                print(f"  t = {meter.duration_s:8.3f} s  {meter.events:>12,} events{share}  "
                      f"wall {now - start:7.2f} s", flush=True)
        windows += len(binner.flush())
        stats = source.stats
    wall = time.perf_counter() - start
    speed = meter.duration_s / wall if wall > 0 else float("inf")
    print(f"replayed {meter.events:,} events, {meter.duration_s:.3f} s of recording in {wall:.3f} s "
          f"(x{speed:.2f} real time; {_fmt_rate(meter.events / wall if wall else 0)})")
    b = binner.stats
    print(f"binned into {windows:,} windows of {list(binner.frame_shape)} every {args.hop_ms:g} ms: "
          f"{b.binned:,} events binned, {b.out_of_bounds + stats.out_of_bounds:,} out of bounds, "
          f"{b.out_of_window:,} late")
    _print_warnings(stats)
    return 0


# ------------------------------------------------------------------ datasets, models
def cmd_eval(args: argparse.Namespace) -> int:
    from dvsstream.evaluate import run_eval

    return run_eval(args)


def cmd_train(args: argparse.Namespace) -> int:
    from dvsstream.train import run_train

    return run_train(args)


def cmd_synth(args: argparse.Namespace) -> int:
    from dvsstream.synth import run_synth

    return run_synth(args)


# ------------------------------------------------------------------ live
def cmd_run(args: argparse.Namespace) -> int:
    from dvsstream.live import run_live

    return run_live(args)


def cmd_render(args: argparse.Namespace) -> int:
    """A clip (MP4 or GIF) of a recording: events, attention, top class, one frame per
    1/fps of stream time (dvsstream.gui.clip.render_recording; torch and PyAV load there)."""
    from dvsstream.gui.clip import DEFAULT_FPS, render_recording

    from dvsstream.live import source_or_default

    source = source_or_default(args.source, "SOURCE (a recording)")
    with _progress(None, unit="frame", desc="rendering") as bar:
        summary = render_recording(source, args.out, checkpoint=args.checkpoint, start_s=args.start,
                                   duration_s=args.duration, fps=DEFAULT_FPS if args.fps is None else args.fps,
                                   overwrite=args.force, device=args.device,
                                   progress=lambda n: bar.update(n - bar.n))
    size = summary.bytes / 1e6
    print(f"wrote {summary.frames} frames ({summary.duration_s:.2f} s of stream from {summary.start_s:g} s, "
          f"{summary.fps:g} fps, {summary.size[0]}x{summary.size[1]}, "
          f"{size:.2f} MB) to {summary.path} in {summary.wall_s:.1f} s")
    for w in summary.warnings:
        print(f"warning: {w}", file=sys.stderr)
    return 0


def cmd_gui(args: argparse.Namespace) -> int:
    try:
        from dvsstream.gui.app import run_gui_from_args
    except ImportError as exc:
        raise DvsstreamError(f"the GUI needs PySide6 and pyqtgraph ({exc}); pip install PySide6-Essentials pyqtgraph") from None
    return run_gui_from_args(args)


# ------------------------------------------------------------------ parser
def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="dvsstream",
        description="Event-camera (DVS) streams: inspect, convert, record, replay, classify.",
    )
    parser.add_argument("--version", action="version", version=f"dvsstream {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    from dvsstream.events import parse_roi, parse_size

    p = sub.add_parser("info", help="format, camera, resolution, events, duration and rates of a recording")
    p.add_argument("file")
    p.add_argument("--peak-bin-us", type=positive_int, default=10_000, help="bin for the peak rate (µs, default 10 ms)")
    p.add_argument("--model-size", type=_argument_type(parse_size), default=(64, 64), metavar="WxH",
                   help="the input of the model whose view to show (default 64x64: the shipped model)")
    add_geometry_arguments(p)
    add_sensor_size_argument(p)
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("convert", help="convert any readable recording to dvsstream HDF5")
    p.add_argument("input")
    p.add_argument("output", help="the .h5 file to write")
    p.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")
    p.add_argument("--roi", type=_argument_type(parse_roi), default=None, metavar="X,Y,W,H",
                   help="keep only this region of the sensor (a WxH recording; the events outside are counted)")
    add_sensor_size_argument(p)
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("record", help="record a camera, network stream or file to HDF5")
    p.add_argument("--source", required=True, help="camera:, camera:SERIAL, tcp://host:port, unix://path or a file")
    p.add_argument("--out", required=True, help="the .h5 file to write")
    p.add_argument("--duration", type=positive_float, default=None,
                   help=f"seconds of stream time to record {STREAM_CLOCK} (default: until the end / Ctrl-C)")
    p.add_argument("--start", type=nonneg_float, default=None, metavar="S",
                   help="a recording: start S seconds after its first event (default 0)")
    p.add_argument("--speed", type=positive_float, default=None, help="for a file source: replay pace (1 = real time)")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.set_defaults(func=cmd_record)

    p = sub.add_parser("replay", help="replay a recording headless, printing progress and a summary")
    p.add_argument("file")
    p.add_argument("--speed", type=positive_float, default=None, help="1 = real time, 2 = twice as fast; default: as fast as possible")
    p.add_argument("--start", type=nonneg_float, default=None, metavar="S",
                   help="start S seconds after the recording's first event (default 0)")
    p.add_argument("--progress-s", type=positive_float, default=1.0, help="seconds between progress lines")
    p.add_argument("--window-ms", type=positive_float, default=160.0, help="sliding window length (ms)")
    p.add_argument("--bins", type=positive_int, default=16, help="time bins T per window")
    p.add_argument("--hop-ms", type=positive_float, default=10.0, help="hop between windows (ms; a multiple of window/bins)")
    p.add_argument("--downsample", type=positive_int, default=1, help="spatial down-sampling factor (2: 128 -> 64)")
    add_sensor_size_argument(p)
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("run", help="classify a live stream or a recording headless, printing predictions as they come")
    p.add_argument("--source", default=None,
                   help="recording path, camera:[SERIAL], tcp://HOST:PORT, unix://PATH or synthetic:... "
                        "(default: the shipped recording recordings/gestures_waves_and_clap.h5)")
    p.add_argument("--checkpoint", default=None, help="our checkpoint (default: the shipped gesture model)")
    add_trust_argument(p)
    p.add_argument("--window-ms", type=positive_float, default=None, help="window length (default: the checkpoint's)")
    p.add_argument("--hop-ms", type=positive_float, default=None, help="a prediction every HOP ms (default: the checkpoint's)")
    p.add_argument("--bins", type=positive_int, default=None, help="time bins T per window (default: the checkpoint's)")
    p.add_argument("--mode", default="step", choices=("step", "window"),
                   help="step: one new bin per hop with carried state (cheap); window: recompute all T bins")
    p.add_argument("--speed", type=positive_float, default=None,
                   help="recordings: replay pace (1 = real time); default: as fast as the pipeline allows")
    p.add_argument("--duration", type=positive_float, default=None,
                   help=f"stop after this many seconds of stream time {STREAM_CLOCK} (default: at the end)")
    p.add_argument("--start", type=nonneg_float, default=None, metavar="S",
                   help="a recording: start S seconds after its first event (default 0)")
    p.add_argument("--device", type=device_name, default=None, help="cpu, cuda (default: cuda when available)")
    p.add_argument("--json-out", default=None, help="write predictions and accounting to this JSON file")
    p.add_argument("--force", action="store_true", help="--json-out may replace an existing file")
    p.add_argument("--quiet", action="store_true", help="print only the summary")
    add_geometry_arguments(p)
    add_sensor_size_argument(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("render", help="a clip (MP4 or GIF) of a recording: events, attention, top class")
    p.add_argument("source", nargs="?", default=None, metavar="SOURCE",
                   help="a recording (default: the shipped recording recordings/gestures_waves_and_clap.h5)")
    p.add_argument("--out", required=True, help="the clip to write: .mp4 (H.264) or .gif")
    p.add_argument("--checkpoint", default=None, help="our checkpoint (default: the shipped gesture model)")
    add_trust_argument(p)
    p.add_argument("--start", type=nonneg_float, default=0.0, help="from this many seconds after the first event (default 0)")
    p.add_argument("--duration", type=positive_float, default=None, help="seconds of stream (default: to the end)")
    p.add_argument("--fps", type=at_most(positive_float, 1000), default=None,
                   help="frames per second of stream time (default 20, at most 1000)")
    p.add_argument("--device", type=device_name, default=None, help="cpu, cuda (default: cuda when available)")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("gui", help="the desktop window: events, predictions and every head's spiking attention")
    from dvsstream.gui.app import add_gui_arguments  # no Qt, no torch at import

    add_gui_arguments(p)
    p.set_defaults(func=cmd_gui)

    datasets = ("cifar10dvs", "dvsgesture")
    p = sub.add_parser("eval", help="evaluate a checkpoint on CIFAR10-DVS or DVS128 Gesture from a local folder")
    p.add_argument("--dataset", required=True, choices=datasets)
    p.add_argument("--root", required=True, help="folder holding the dataset (see README)")
    p.add_argument("--checkpoint", required=True, help="our checkpoint or the original release's state dict")
    add_trust_argument(p)
    p.add_argument("--model", default=None, help="model name (default: from the checkpoint)")
    p.add_argument("--split", default="test", choices=("test", "train", "all"))
    p.add_argument("--device", type=device_name, default=None, help="cpu, cuda, cuda:1 (default: cuda when available)")
    p.add_argument("--batch-size", type=positive_int, default=16)
    p.add_argument("--limit", type=positive_int, default=None, help="evaluate at most N samples")
    p.add_argument("--workers", type=nonneg_int, default=0, help="data-loading worker processes")
    p.add_argument("--cache-dir", default=None, help="where binned frames are cached (default: ROOT/.dvsstream-cache)")
    p.add_argument("--convention", default=None, choices=("spikingjelly", "native"),
                   help="orientation and polarity of the frames: the releases' (spikingjelly, default) or "
                        "dvsstream's readers' (native)")
    p.add_argument("--label-order", default=None, choices=("spikingjelly", "dataset"),
                   help="class order of a release checkpoint's outputs (default: spikingjelly's for a file saved by "
                        "a release's train.py, the dataset's for a bare state dict)")
    p.add_argument("--export", default=None, metavar="CKPT",
                   help="also save the model as a dvsstream checkpoint (outputs in the dataset's order, class "
                        "names, frame spec) for dvsstream run / gui")
    p.add_argument("--force", action="store_true", help="--export may replace an existing file")
    p.add_argument("--out", required=True, help="folder for report.json, confusion.png, samples.csv")
    add_geometry_arguments(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("train", help="train a model with the papers' recipe (torchrun for several GPUs)")
    p.add_argument("--dataset", required=True, choices=datasets)
    p.add_argument("--root", required=True)
    p.add_argument("--model", default="spikformer_dvs")
    p.add_argument("--epochs", type=positive_int, default=None, help="default: the recipe's (106 CIFAR10-DVS, 202 Gesture)")
    p.add_argument("--batch-size", type=positive_int, default=16)
    p.add_argument("--lr", type=positive_float, default=1e-3)
    p.add_argument("--weight-decay", type=nonneg_float, default=0.06)
    p.add_argument("--warmup-epochs", type=nonneg_int, default=10)
    p.add_argument("--mixup-until", type=nonneg_int, default=75, help="last epoch with mixup")
    p.add_argument("--no-hflip", action="store_true", help="never mirror left/right (right for Gesture's left/right classes)")
    p.add_argument("--frames", default="count", choices=("count", "time"),
                   help="T bins of equal event count (the papers') or of equal time (as a live window)")
    p.add_argument("--device", type=device_name, default=None)
    p.add_argument("--workers", type=nonneg_int, default=0,
                   help="data loader processes (default 0: batches are read in the training process)")
    p.add_argument("--prefetch", type=positive_int, default=2, help="batches each loader process prepares ahead")
    p.add_argument("--cache-frames", default="auto", choices=("auto", "on", "off"),
                   help="hold the binned frames in memory (no file I/O after the first read); "
                        "auto: when they fit --memory-budget-mb")
    p.add_argument("--memory-budget-mb", type=nonneg_float, default=2048.0,
                   help="memory for --cache-frames auto, per process (default 2048 MiB)")
    p.add_argument("--amp", default="auto", choices=("auto", "off", "fp16", "bf16"),
                   help="mixed precision: auto = fp16 with a grad scaler on CUDA, none on CPU; bf16 on CUDA or CPU")
    p.add_argument("--channels-last", action="store_true", help="conv weights and frames channels-last")
    p.add_argument("--recompute", action="store_true",
                   help="keep less for the backward (each batch norm + LIF recomputed): about 40%% less "
                        "activation memory for about 13%% more time on a CPU; the same numbers")
    p.add_argument("--limit", type=positive_int, default=None, help="use at most N training samples")
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--init", default=None, metavar="CKPT",
                   help="fine-tune: start from this checkpoint's weights (same model and classes)")
    add_trust_argument(p)
    p.add_argument("--convention", default="spikingjelly", choices=("spikingjelly", "native"),
                   help="orientation and polarity of the frames (default: the releases', spikingjelly's)")
    p.add_argument("--label-order", default=None, choices=("spikingjelly", "dataset"),
                   help="class order of an --init release checkpoint's outputs (its head is permuted to the dataset's)")
    p.add_argument("--seed", type=nonneg_int, default=0)
    p.add_argument("--out", required=True, help="folder for checkpoints and the training log")
    add_geometry_arguments(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("synth", help="generate the synthetic gesture set with the DVS emulator")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--samples-per-class", type=positive_int, default=20)
    p.add_argument("--duration", type=positive_float, default=0.4,
                   help="seconds per sample (default 0.4: the clips the shipped model was trained on)")
    p.add_argument("--seed", type=nonneg_int, default=0)
    p.add_argument("--format", default="both", choices=("hdf5", "tonic", "both"))
    p.add_argument("--workers", type=positive_int, default=1, help="processes")
    p.set_defaults(func=cmd_synth)
    return parser


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line (what, why, where to read more)
    and exit status 2, without the usage text; its subparsers are of the same class."""

    def error(self, message: str):
        name = self.prog.split()[0]  # "dvsstream" for its subcommands, an app's own name for apps/
        self.exit(2, f"{name}: error: {message.strip().splitlines()[0]} (see {self.prog} --help)\n")


def add_trust_argument(parser: argparse.ArgumentParser) -> None:
    """``--trust-checkpoint``: full unpickling of a checkpoint file the user trusts."""
    parser.add_argument("--trust-checkpoint", action="store_true",
                        help="unpickle the checkpoint fully (it may run code: only for a file you trust); "
                             "by default only tensors and plain values are read")


def _argument_type(parse):
    """An argparse ``type=`` from a parser raising ``ValueError`` with a one-line reason."""
    def convert(text: str):
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    convert.__name__ = parse.__name__
    return convert


def add_geometry_arguments(parser: argparse.ArgumentParser) -> None:
    """``--roi x,y,w,h`` and ``--resize WxH``: the region of the sensor a model sees."""
    from dvsstream.events import parse_roi, parse_size

    parser.add_argument("--roi", type=_argument_type(parse_roi), default=None, metavar="X,Y,W,H",
                        help="the region of the sensor the model sees (default: the whole sensor when it "
                             "pools exactly to the model's input, else the largest centred region of its shape)")
    parser.add_argument("--resize", type=_argument_type(parse_size), default=None, metavar="WxH",
                        help="the model's input size the region is pooled or resized to (default: the model's)")


def add_sensor_size_argument(parser: argparse.ArgumentParser) -> None:
    """``--sensor-size WxH``: the sensor of a recording whose header states none."""
    from dvsstream.events import parse_size

    parser.add_argument("--sensor-size", type=_argument_type(parse_size), default=None, metavar="WxH",
                        help="the sensor of a Prophesee, .npy or jAER AEDAT 2.0 recording whose header states none "
                             "(default: Prophesee: from the data, with a warning; .npy and AEDAT 2.0: 128x128, "
                             "the DVS128)")


def trust_named_checkpoints(args: argparse.Namespace) -> None:
    """``--trust-checkpoint``: the checkpoints the command names (``--checkpoint``,
    ``--init``, ``--resume``'s ``OUT/last.pt``) may be unpickled fully."""
    if not getattr(args, "trust_checkpoint", False):
        return
    from dvsstream.models.checkpoints import trust_file

    last = os.path.join(args.out, "last.pt") if getattr(args, "resume", False) else None
    for path in (getattr(args, "checkpoint", None), getattr(args, "init", None), last):
        if path is not None:
            trust_file(path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version (0) or a bad argument (2, one line printed)
        return exc.code if isinstance(exc.code, int) else 2
    try:
        from dvsstream.validate import check_arguments

        check_arguments(args)  # before any work: one line and exit 2 on bad input
        trust_named_checkpoints(args)
        return args.func(args)
    except DvsstreamError as exc:
        print(f"dvsstream: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dvsstream: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
