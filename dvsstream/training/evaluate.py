"""``dvsstream eval``: a checkpoint on CIFAR10-DVS or DVS128 Gesture from a local folder.

Writes to ``--out``:

* ``report.json`` -- ``accuracy``, ``per_class_accuracy`` (class name -> accuracy, null
  for a class with no sample), ``confusion_matrix`` (rows = true class, columns =
  predicted), ``samples`` (evaluated), ``samples_per_s`` (whole loop: data + model),
  ``timing``, ``firing_rates`` (mean spikes per neuron per step of every LIF layer over
  the whole evaluation), ``energy`` (the papers' estimate from
  :func:`dvsstream.models.energy_report` on the **first batch** of rank 0, per sample),
  ``skipped`` (``{"count", "samples": [{"path", "reason"}]}``), and the model,
  checkpoint, dataset, split, frame spec, device and world size, and ``files`` (the
  other files written, by what they hold);
* ``samples.csv`` -- ``index, path, label, prediction, confidence, correct`` (+ class names);
* three figures drawn with matplotlib (:mod:`dvsstream.training.plots`): ``confusion.png`` (the
  matrix with class names, counts and row-normalised shares), ``per_class_accuracy.png``
  (a bar per class with its accuracy and sample count) and ``confidence.png`` (histograms
  of the max softmax probability of the correct and of the wrong predictions).

Every file is written under a temporary name and renamed into place, so an interrupted
run never leaves half a file; the numbers are written before the figures.

Checkpoints: ours (:func:`dvsstream.models.save_checkpoint`: the model is rebuilt from
the file; a ``frame_spec`` entry in its ``meta`` sets the binning) or a release state
dict (``--model NAME`` says the architecture; the class count comes from the dataset).
Without a ``frame_spec`` the frames follow the model: ``T`` equal-count bins (the
papers' preprocessing) down-sampled from 128x128 to the model's input size, in the
releases' (spikingjelly's) orientation and polarity unless ``--convention native``.

Label order: a file saved by a release's own ``train.py`` is recognised and its outputs
are read in spikingjelly's ``DatasetFolder`` order (on DVS128 Gesture: outputs 0..10 are
classes 0, 1, 10, 2, ..., 9; the head is permuted to the dataset's order); a bare state
dict's in ``--label-order`` (default ``dataset``, with a one-line warning on Gesture).
``--export CKPT`` saves the model so mapped, with class names and frame spec, as one of
our checkpoints for ``dvsstream run`` and the window. ``report.json`` also records
``layout`` (and ``layout_note``), ``convention``, ``label_order`` (``order``, ``why``,
``checkpoint_outputs``), ``split_rule`` and, for a release-trained file, ``release_args``.

Several processes (``torchrun``): every rank evaluates its contiguous block of the split
(no padding, so nothing is counted twice), results are gathered to rank 0, which
writes the one report. The process group is gloo on CPU and CUDA alike: the only
collective is that gather (small Python objects), and gloo, unlike nccl, also allows more
ranks than GPUs.
"""

from __future__ import annotations

import csv
import json
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch

from dvsstream.errors import DvsstreamError
from dvsstream.fileio import json_safe, replace_atomically
from dvsstream.heap import keep_freed_memory
from dvsstream.training.distributed import (
    DistInfo,
    close_distributed,
    gather_objects,
    init_distributed,
)

__all__ = ["EvalConfig", "evaluate", "evaluate_dataset", "load_eval_model"]


# ------------------------------------------------------------------ what to evaluate
@dataclass
class EvalConfig:
    """What :func:`evaluate_dataset` evaluates, and where its files go (the options of
    ``dvsstream eval``). ``dataset``: ``"cifar10dvs"``, ``"dvsgesture"`` or ``"tonic:NAME"``
    under the folder ``root``; ``checkpoint``: ours or a release state dict (``model``: its
    architecture, None: from the checkpoint); ``split``: ``"test"``, ``"train"`` or
    ``"all"``; ``device``: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` (None: CUDA when
    available); ``limit``: at most that many samples; ``workers``: loader processes;
    ``cache_dir``: the frame cache (None: ``ROOT/.dvsstream-cache``); ``convention``,
    ``label_order``, ``roi`` / ``resize``: see the module docstring; ``export``: also
    save the model as our checkpoint there; ``out``: the folder for the report;
    ``noise_filter``: the ``--filter`` the samples' events go through (None: the
    checkpoint's frame spec's, none without one)."""

    dataset: str
    root: str
    checkpoint: str
    out: str
    model: Optional[str] = None
    split: str = "test"
    device: Optional[str] = None
    batch_size: int = 16
    limit: Optional[int] = None
    workers: int = 0
    cache_dir: Optional[str] = None
    convention: Optional[str] = None
    label_order: Optional[str] = None
    export: Optional[str] = None
    roi: Optional[Sequence[int]] = None
    resize: Optional[Sequence[int]] = None
    noise_filter: str | None = None


def _start_processes(device: Optional[str]) -> tuple[DistInfo, torch.device, bool]:
    """:func:`~dvsstream.training.distributed.init_distributed` with gloo on CPU and CUDA
    alike: the only collective is gathering the per-sample results (small Python
    objects), which gloo does on CPU whatever the device, and unlike nccl it allows more
    ranks than GPUs (nccl refuses two ranks on one GPU). Rank 0 speaks for all (the
    other ranks' dataset warnings are silenced: skips reach the report by gathering);
    CPU ranks share the machine's cores."""
    ranks, dev, here = init_distributed(device, backend="gloo")
    if ranks.distributed:
        if not ranks.is_main:
            import logging

            logging.getLogger("dvsstream.datasets").setLevel(logging.ERROR)
        if dev.type == "cpu":
            local = int(os.environ.get("LOCAL_WORLD_SIZE", str(ranks.world)))
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // local))
    return ranks, dev, here


# ------------------------------------------------------------------ the model
def _read_checkpoint(path: str) -> Optional[Mapping]:
    """The unpickled checkpoint (``--trust-checkpoint`` honoured); a one-line
    :class:`CheckpointError` in our words when it is missing, a folder or unreadable."""
    from dvsstream.models.checkpoints import _read

    return _read(path)[0]


def _head_classes(obj: Mapping) -> Optional[int]:
    """Rows of the classifier head in a (possibly wrapped) release state dict."""
    stack = [obj]
    while stack:
        d = stack.pop()
        for k, v in d.items():
            if isinstance(v, torch.Tensor) and (k == "head.weight" or k.endswith(".head.weight")) and v.dim() == 2:
                return int(v.shape[0])
            if isinstance(v, Mapping):
                stack.append(v)
    return None


def load_eval_model(checkpoint: str, model_name: Optional[str], num_classes: int, dataset: str,
                    label_order: Optional[str] = None):
    """-> ``(model, info)``: our checkpoint (rebuilt from its config) or a release state dict
    (``model_name`` required). A model for another class count or another architecture
    raises one line naming both.

    ``label_order`` (``"dataset"``, ``"spikingjelly"`` or None = the checkpoint's own,
    see :func:`dvsstream.datasets.release.label_order_for`): a release checkpoint whose
    outputs follow spikingjelly's ``DatasetFolder`` order has its head permuted so that
    output ``c`` is the dataset's class ``c`` (DVS128 Gesture; CIFAR10-DVS's order is the
    same). ``info["label_order"]`` records what was done and why."""
    from dvsstream.models import CheckpointError, Spikformer, SpikformerConfig, create_model, load_checkpoint
    from dvsstream.models.checkpoints import FORMAT

    obj = _read_checkpoint(checkpoint)
    if obj.get("format") == FORMAT:
        name = obj.get("model_name") or obj.get("config", {}).get("variant", "?")
        n = obj.get("num_classes")
        if model_name and model_name != name:
            raise CheckpointError(
                f"{checkpoint} holds a {name} model but --model {model_name} was given; "
                f"leave --model out to use the checkpoint's own architecture"
            )
        if n is not None and int(n) == 0:
            raise CheckpointError(
                f"{checkpoint}: a pre-trained encoder without a classifier (from dvsstream pretrain); fine-tune it "
                f"on {dataset} first (dvsstream train --dataset {dataset} ... --init {checkpoint})")
        if n is not None and int(n) != num_classes:
            raise CheckpointError(
                f"{checkpoint} is a {name} for {n} classes but {dataset} has {num_classes} classes; "
                f"use a checkpoint trained on {dataset}"
            )
        model = Spikformer(SpikformerConfig.from_dict(dict(obj["config"])))
        report = load_checkpoint(model, obj)
        meta = dict(obj.get("meta") or {})
        fmt = "dvsstream"
    else:
        if not model_name:
            raise CheckpointError(
                f"{checkpoint} is not a dvsstream checkpoint (a release state dict?); pass --model NAME "
                f"(e.g. spikformer_dvs) to say which architecture it holds"
            )
        n = _head_classes(obj)
        if n is not None and n != num_classes:
            raise CheckpointError(
                f"{checkpoint} has a classifier head for {n} classes but {dataset} has {num_classes} "
                f"classes ({model_name}); use a checkpoint trained on {dataset}"
            )
        model = create_model(model_name, num_classes=num_classes, **_release_T(obj, model_name, checkpoint))
        try:
            report = load_checkpoint(model, obj)
        except CheckpointError as exc:
            reason = str(exc).replace("<state dict>: ", "").replace("<state dict>", "the checkpoint")
            raise CheckpointError(f"{checkpoint} does not fit --model {model_name}: {reason}") from None
        name, meta, fmt = model_name, {}, "release"
    report.source = checkpoint
    info = {"model": name, "checkpoint": str(checkpoint), "checkpoint_format": fmt, "load_report": str(report),
            "meta": {k: v for k, v in meta.items() if isinstance(v, (str, int, float, bool, list, dict, type(None)))},
            "label_order": _apply_label_order(model, report, fmt, dataset, label_order, checkpoint)}
    if report.release_trained:
        info["release_args"] = report.release_args
    return model, info


def _release_T(obj: Mapping, model_name: str, checkpoint: str) -> dict:
    """``{"T": args.T}`` when a release-trained file's arguments name another number of
    time steps than the ``model_name`` preset (Spikformer reports T=10 and T=16 runs of
    one architecture; its weights do not depend on T), else ``{}``."""
    from dvsstream.models import get_config
    from dvsstream.models.checkpoints import release_training_args

    args = release_training_args(obj) or {}
    T = args.get("T")
    if isinstance(T, int) and not isinstance(T, bool) and T > 0 and T != get_config(model_name).T:
        print(f"note: {checkpoint} was trained with T={T} (its args); {model_name} runs with T={T} "
              f"instead of {get_config(model_name).T}", file=sys.stderr)
        return {"T": T}
    return {}


def _apply_label_order(model, report, fmt: str, dataset: str, requested: Optional[str], source: str) -> dict:
    """Resolve and apply the checkpoint's output order (see :func:`load_eval_model`)."""
    from dvsstream.models.checkpoints import reorder_outputs
    from dvsstream.datasets.release import label_order_for, output_classes_for

    kind = "dvsstream" if fmt == "dvsstream" else "release-trained" if report.release_trained else "state-dict"
    order, why, warning = label_order_for(dataset, requested, kind, source)
    if warning and int(os.environ.get("RANK", "0")) == 0:
        print(f"warning: {warning}", file=sys.stderr)
    outputs = output_classes_for(dataset, order, model.num_classes)
    if outputs is not None:
        reorder_outputs(model, outputs)
    return {"order": order, "why": why, "checkpoint_outputs": outputs or list(range(model.num_classes))}


def export_checkpoint(model, path, classes, spec, info: Mapping, dataset: str) -> None:
    """Save the evaluated model -- its outputs already mapped to the dataset's class order
    -- as a dvsstream checkpoint carrying the class names and the frame spec, so that
    ``dvsstream run`` and the window (:func:`dvsstream.stream.pipeline.load_classifier_model`)
    read its outputs exactly as ``eval`` does. Written atomically."""
    from dvsstream.models import save_checkpoint

    path = Path(path)
    try:  # its folder must exist (checked before the run): folders are never made up
        replace_atomically(path, lambda tmp: save_checkpoint(
            model, tmp, classes=list(classes), frame_spec=spec.to_dict(), dataset=dataset,
            label_order=dict(info["label_order"]), exported_from=str(info["checkpoint"]),
            release_args=info.get("release_args")))
    except OSError as exc:
        raise DvsstreamError(f"cannot write {path} ({exc.strerror or exc})") from None
    print(f"exported {path} (classes in the dataset's order, frame spec {spec.tag()})", file=sys.stderr)


def _frame_spec(model, meta: Mapping, convention: Optional[str] = None, roi=None, resize=None,
                sensor_size=(128, 128), noise_filter=None):
    """The FrameSpec for ``model``: from its checkpoint's ``frame_spec`` meta, else from its
    config on the dataset's ``sensor_size``; ``convention`` (``--convention``) overrides the
    orientation / polarity, ``roi`` / ``resize`` (``--roi`` / ``--resize``) the region of
    the dataset's sensor the model sees, ``noise_filter`` (``--filter``) the noise filter.
    A checkpoint binned on another sensor is re-fitted to this one's (a warning says so)."""
    import dataclasses

    from dvsstream.datasets.spec import FrameSpec

    sensor = tuple(int(v) for v in sensor_size)
    if isinstance(meta.get("frame_spec"), Mapping):
        spec = FrameSpec.from_dict(dict(meta["frame_spec"]))
        source = "checkpoint meta"
        if tuple(spec.sensor_size) != sensor:
            trained = "x".join(str(int(v)) for v in spec.sensor_size)
            h, w = (int(v) for v in model.config.img_size)
            spec = spec.on_sensor(sensor, (w, h), roi, resize)
            source += f", re-fitted from its {trained} sensor to the dataset's {sensor[0]}x{sensor[1]}"
            print(f"warning: the checkpoint's frames were binned on a {trained} sensor but this dataset's is "
                  f"{sensor[0]}x{sensor[1]}; they are fitted to the model's input by the default geometry "
                  f"(or --roi / --resize); accuracy may drop", file=sys.stderr)
            roi = resize = None
    else:
        spec = FrameSpec.for_model(model.config, sensor)
        source = f"model config (T count bins, the {sensor[0]}x{sensor[1]} sensor fitted to the input size)"
    if convention is not None and convention != spec.convention:
        spec = dataclasses.replace(spec, convention=convention)
        source += f"; --convention {convention}"
    if noise_filter is not None and noise_filter != spec.noise_filter:
        spec = dataclasses.replace(spec, noise_filter=noise_filter)
        source += f"; --filter {spec.noise_filter}"
    if roi is not None or resize is not None:
        h, w = (int(v) for v in model.config.img_size)
        spec = spec.with_geometry((w, h), roi, resize)
        source += f"; --roi / --resize: {spec.tag()}"
    want = tuple(int(s) for s in model.config.img_size)
    if tuple(spec.frame_shape[-2:]) != want:
        raise DvsstreamError(
            f"the checkpoint's frame spec makes {spec.frame_shape[-2]}x{spec.frame_shape[-1]} frames but the "
            f"model takes {want[0]}x{want[1]}"
        )
    return spec, source


# ------------------------------------------------------------------ data
class _Indexed(torch.utils.data.Dataset):
    def __init__(self, dataset, indices: list[int]) -> None:
        self.dataset = dataset
        self.indices = indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, k: int):
        i = self.indices[k]
        frames, label, reason = self.dataset.get(i)
        return (None if frames is None else torch.from_numpy(frames)), label, i, reason


def _collate(batch):
    ok = [b for b in batch if b[0] is not None]
    frames = torch.stack([b[0] for b in ok]) if ok else None
    labels = torch.tensor([b[1] for b in ok], dtype=torch.long)
    index = [b[2] for b in ok]
    skipped = [(b[2], b[3]) for b in batch if b[0] is None]
    return frames, labels, index, skipped, len(batch)


# ------------------------------------------------------------------ the loop
def evaluate(model, dataset, device, batch_size: int = 16, workers: int = 0, indices=None,
             progress: bool = True, energy_batch: bool = True) -> dict[str, Any]:
    """Run ``model`` over ``dataset`` (or ``indices`` of it) in this process. Returns
    per-sample rows ``(index, label, prediction, confidence)``, skipped ``(index, reason)``,
    firing rates, the energy report of the first batch, and timings."""
    from tqdm import tqdm

    from dvsstream.models import energy_report, record_firing_rates

    indices = list(range(len(dataset))) if indices is None else list(indices)
    loader = torch.utils.data.DataLoader(
        _Indexed(dataset, indices), batch_size=max(1, int(batch_size)), shuffle=False,
        num_workers=max(0, int(workers)), collate_fn=_collate, pin_memory=device.type == "cuda",
    )
    rows: list[tuple[int, int, int, float]] = []
    skipped: list[tuple[int, str]] = []
    energy = None
    t_model = t_data = 0.0
    bar = tqdm(total=len(indices), unit="sample", desc="evaluating", disable=None if progress else True,
               file=sys.stderr, dynamic_ncols=True, leave=False)
    start = time.perf_counter()
    it = iter(loader)
    rates: dict[str, float] = {}
    taps_cm = taps = None
    try:
        with torch.inference_mode():
            while True:
                t0 = time.perf_counter()
                try:
                    frames, labels, index, skip, n = next(it)
                except StopIteration:
                    break
                t_data += time.perf_counter() - t0
                skipped += skip
                if frames is not None:
                    x = frames.to(device, non_blocking=True)
                    if taps is None:
                        if energy_batch:
                            # its own forward with its own taps: before ours start, untimed
                            te = time.perf_counter()
                            energy = {"computed_on": f"the first batch ({x.shape[0]} samples) of rank 0; "
                                                     f"numbers per sample", **energy_report(model, x)}
                            start += time.perf_counter() - te
                        taps_cm = record_firing_rates(model)
                        taps = taps_cm.__enter__()
                    tm = time.perf_counter()
                    logits = model(x)
                    probs = torch.softmax(logits.float(), dim=-1)
                    conf, pred = probs.max(dim=-1)
                    conf, pred = conf.cpu().tolist(), pred.cpu().tolist()  # synchronises CUDA
                    t_model += time.perf_counter() - tm
                    rows += [(i, int(y), int(p), float(c)) for i, y, p, c in zip(index, labels.tolist(), pred, conf)]
                bar.update(n)
        if taps is not None:
            rates = taps.firing_rates
    finally:
        if taps_cm is not None:
            taps_cm.__exit__(None, None, None)
    wall = time.perf_counter() - start
    bar.close()
    return {"rows": rows, "skipped": skipped, "firing_rates": rates, "energy": energy,
            "wall_s": wall, "model_s": t_model, "data_s": t_data}


def _shard(n: int, rank: int, world: int) -> range:
    """Rank ``rank``'s contiguous block of ``range(n)``: every index exactly once over the
    ranks, no padding (so nothing is counted twice), neighbours together (the segments of
    one raw Gesture file stay on one rank, which then reads that file once)."""
    return range(rank * n // world, (rank + 1) * n // world)


def evaluate_dataset(config: EvalConfig) -> int:
    """What ``dvsstream eval`` does (see the module docstring): evaluate
    ``config.checkpoint`` on a dataset split, write the report, the CSV and the figures
    into ``config.out``; the exit status (0; 2 when no sample could be evaluated)."""
    from dvsstream.datasets.names import dataset_classes, dataset_sensor_size
    from dvsstream.datasets.load import load_dataset
    from dvsstream.models import prepare_for_inference

    if config.batch_size < 1:
        raise DvsstreamError(f"--batch-size must be >= 1, got {config.batch_size}")
    if config.limit is not None and config.limit < 1:
        raise DvsstreamError(f"--limit must be >= 1, got {config.limit}")
    classes = dataset_classes(config.dataset, config.root)
    model, info = load_eval_model(config.checkpoint, config.model, len(classes), config.dataset, config.label_order)
    spec, spec_source = _frame_spec(model, info["meta"], config.convention, config.roi, config.resize,
                                    dataset_sensor_size(config.dataset), config.noise_filter)
    if config.export and int(os.environ.get("RANK", "0")) == 0:
        export_checkpoint(model, config.export, classes, spec, info, config.dataset)
    ranks, device, initialised = _start_processes(config.device)
    try:
        dataset = load_dataset(config.dataset, config.root, config.split, spec,
                               cache_dir=config.cache_dir, limit=config.limit)
        if len(dataset) == 0:
            raise DvsstreamError(f"the {config.split} split of {config.dataset} under {config.root} holds no "
                                 f"samples ({dataset.info.get('message', '')})")
        from dvsstream.training.memory import fit_batch

        batch_size = fit_batch(config.batch_size, len(dataset), model.config, False, config.split,
                               (lambda s: print(s, file=sys.stderr)) if ranks.is_main else None)
        if ranks.is_main:
            _warn_clip_mismatch(dataset, spec, info["meta"])
        if ranks.is_main and config.limit is not None and dataset.info.get("limit_exceeds"):
            print(f"note: --limit {config.limit} is larger than the {config.split} split "
                  f"({dataset.info['split_size']} samples); evaluating all {len(dataset)}", file=sys.stderr)
        model = prepare_for_inference(model, device)
        keep_freed_memory(device)  # on a CPU, each batch's activations reuse the last batch's pages
        part = evaluate(model, dataset, device, batch_size, config.workers,
                        indices=_shard(len(dataset), ranks.rank, ranks.world), progress=ranks.is_main,
                        energy_batch=ranks.is_main)
        part["n"] = len(part["rows"])
        parts = gather_objects(part, ranks)
        if not ranks.is_main:
            return 0
        return _write_outputs(config, parts, dataset, classes, info, spec, spec_source, ranks, device)
    finally:
        close_distributed(initialised)


def checkpoint_clip_mismatch(clip_s: Optional[float], spec, meta: Mapping) -> Optional[str]:
    """One line when time-binned clips of ``clip_s`` seconds differ from the window the
    checkpoint was trained on (``meta["live_binning"]``; the rule:
    :func:`dvsstream.binning.clips.clip_mismatch`); None otherwise or when unknown."""
    from dvsstream.binning.clips import clip_mismatch

    live = meta.get("live_binning") if isinstance(meta.get("live_binning"), Mapping) else None
    if clip_s is None or live is None or spec.mode != "time" or not live.get("window_us"):
        return None
    window_s = float(live["window_us"]) / 1e6
    return clip_mismatch(clip_s, window_s, spec.n_bins, "the checkpoint",
                         f"dvsstream synth --duration {window_s:g} makes matching clips")


def _warn_clip_mismatch(dataset, spec, meta: Mapping) -> None:
    line = checkpoint_clip_mismatch(dataset.clip_seconds(), spec, meta)
    if line:
        print(f"warning: {line}", file=sys.stderr)


def _summarise(parts, dataset, classes) -> dict[str, Any]:
    """Merge the ranks' results: per-sample rows (unique by index, sorted), skipped
    samples, the confusion matrix ``[C, C]`` (rows = true class), accuracies and the
    sample-weighted mean firing rates."""
    n_cls = len(classes)
    rows = sorted({r[0]: r for p in parts for r in p["rows"]}.values())  # unique by index
    run_skips = sorted({i: reason for p in parts for i, reason in p["skipped"]}.items())
    skipped = [{"path": path, "reason": reason} for path, reason in dataset._listing_skipped]
    skipped += [{"path": dataset.samples[i][0], "reason": reason} for i, reason in run_skips]
    confusion = np.zeros((n_cls, n_cls), np.int64)
    for _, y, p, _ in rows:
        confusion[y, p] += 1
    n = int(confusion.sum())
    correct = int(np.trace(confusion))
    per_class = {}
    for k, name in enumerate(classes):
        total = int(confusion[k].sum())
        per_class[name] = confusion[k, k] / total if total else None
    n_total = sum(p["n"] for p in parts)
    rates: dict[str, float] = {}
    if n_total:
        for name in parts[0]["firing_rates"]:
            rates[name] = sum(p["firing_rates"].get(name, 0.0) * p["n"] for p in parts) / n_total
    return {"rows": rows, "skipped": skipped, "confusion": confusion, "n": n, "correct": correct,
            "accuracy": correct / n if n else None, "per_class": per_class, "firing_rates": rates}


def _report(config: EvalConfig, parts, summary, dataset, classes, info, spec, spec_source, ranks: DistInfo,
            device: torch.device) -> dict[str, Any]:
    """The ``report.json`` dictionary (see the module docstring)."""
    from dvsstream.training.plots import REPORT_PLOTS

    n = summary["n"]
    wall = max(p["wall_s"] for p in parts)
    model_s = max(p["model_s"] for p in parts)
    return {
        "accuracy": summary["accuracy"],
        "correct": summary["correct"],
        "per_class_accuracy": summary["per_class"],
        "confusion_matrix": summary["confusion"].tolist(),
        "classes": list(classes),
        "samples": n,
        "samples_per_s": n / wall if wall > 0 else None,
        "timing": {
            "wall_s": wall,
            "model_s": model_s,
            "data_wait_s": max(p["data_s"] for p in parts),
            "model_samples_per_s": n / model_s if n and model_s > 0 else None,
            "note": "wall_s: the slowest rank's loop (data + model); samples_per_s = samples / wall_s",
        },
        "firing_rates": summary["firing_rates"],
        "energy": parts[0]["energy"],
        "skipped": {"count": len(summary["skipped"]), "samples": summary["skipped"]},
        "model": info["model"],
        "checkpoint": info["checkpoint"],
        "checkpoint_format": info["checkpoint_format"],
        "load_report": info["load_report"],
        "dataset": dataset.name,
        "root": str(dataset.root),
        "layout": dataset.info.get("layout"),
        "layout_note": dataset.info.get("layout_note"),
        "convention": spec.convention,
        "label_order": info["label_order"],
        "split_rule": dataset.info.get("split_rule"),
        "release_args": info.get("release_args"),
        "split": dataset.split,
        "split_size": dataset.info.get("split_size"),
        "limit": config.limit,
        "frame_spec": {**spec.to_dict(), "source": spec_source},
        "device": str(device),
        "world_size": ranks.world,
        "batch_size": config.batch_size,
        "files": {"samples": "samples.csv", **REPORT_PLOTS},
    }


def _write_atomically(path: Path, write) -> None:
    """``write(file)`` on a temporary name beside ``path``, then ``os.replace``: an
    interrupted run leaves the previous file whole. An OSError becomes one line."""
    def to_file(tmp: Path) -> None:
        with open(tmp, "w", newline="") as f:
            write(f)

    try:
        replace_atomically(path, to_file)
    except OSError as exc:
        raise DvsstreamError(f"cannot write {path} ({exc.strerror or exc})") from None


def _write_samples_csv(f, rows, dataset, classes) -> None:
    w = csv.writer(f)
    w.writerow(["index", "path", "label", "prediction", "confidence", "correct", "label_name", "prediction_name"])
    for i, y, p, c in rows:
        w.writerow([i, dataset.samples[i][0], y, p, f"{c:.6f}", int(y == p), classes[y], classes[p]])


def _write_outputs(config: EvalConfig, parts, dataset, classes, info, spec, spec_source, ranks: DistInfo,
                   device: torch.device) -> int:
    """Rank 0: write report.json and samples.csv (the numbers first, so that they are
    safe), then the three figures of :func:`dvsstream.training.plots.write_report_plots`."""
    from dvsstream.training.plots import write_report_plots

    summary = _summarise(parts, dataset, classes)
    report = _report(config, parts, summary, dataset, classes, info, spec, spec_source, ranks, device)
    rows, n, correct, accuracy = summary["rows"], summary["n"], summary["correct"], summary["accuracy"]
    out = Path(config.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DvsstreamError(f"cannot create the output folder {out} ({exc.strerror})") from None
    _write_atomically(out / "report.json", lambda f: f.write(json.dumps(json_safe(report), indent=2) + "\n"))
    _write_atomically(out / "samples.csv", lambda f: _write_samples_csv(f, rows, dataset, classes))
    try:
        plots = write_report_plots(out, summary["confusion"], classes, [r[3] for r in rows],
                                   [r[1] == r[2] for r in rows],
                                   title=f"{dataset.name} {dataset.split} ({info['model']})")
    except OSError as exc:
        raise DvsstreamError(f"cannot write the figures into {out} ({exc.strerror or exc})") from None
    acc_txt = f"{100 * accuracy:.2f} %" if accuracy is not None else "n/a"
    wall = report["timing"]["wall_s"]
    skipped = summary["skipped"]
    print(f"{dataset.name} {dataset.split}: accuracy {acc_txt} ({correct}/{n}) with {info['model']} on "
          f"{device}{f' x{ranks.world} processes' if ranks.world > 1 else ''}; "
          f"{n / wall if wall > 0 else 0:.1f} samples/s; {len(skipped)} skipped")
    for s in skipped[:10]:
        print(f"  skipped {s['path']}: {s['reason']}", file=sys.stderr)
    if len(skipped) > 10:
        print(f"  ... and {len(skipped) - 10} more (see report.json)", file=sys.stderr)
    print(f"wrote {out / 'report.json'}, {out / 'samples.csv'}, " + ", ".join(str(p) for p in plots.values()))
    if n == 0:
        print("dvsstream: error: no sample could be evaluated (all skipped)", file=sys.stderr)
        return 2
    return 0
