"""What ``dvsstream pretrain`` runs: :func:`pretrain_on_data` reads unlabelled windows
(a folder of recordings, or the train split of a dataset with its labels ignored),
builds the model's :class:`~dvsstream.models.masked.MaskedAutoencoder` and trains it with
:class:`~dvsstream.training.pretrain.PretrainTrainer`.

From a folder (``--dataset folder``) every readable recording under ``--root`` is cut
with the live binning (:mod:`dvsstream.datasets.recordings`): a random share of the
sliding windows (hop one bin) of the first 90 % of each recording, in time, is learnt
from; windows of the last 10 % give the held-out loss. From a dataset, 5 % of the train
split (a seeded random choice) gives the held-out loss; the test split is never read.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence, Union

import torch

from dvsstream.errors import DvsstreamError
from dvsstream.models.masked import DecoderConfig
from dvsstream.training.config import TrainConfig, TrainResult, resolve_amp
from dvsstream.training.distributed import close_distributed, init_distributed, resolve_device

__all__ = ["PretrainData", "pretrain_on_data", "decoder_for"]

#: windows kept per window length of recording (a random share of the hop-one-bin windows)
WINDOW_DENSITY = 4
#: the share of each recording (its end, in time) / of a dataset's train split held out
HELD_OUT = 0.1
DATASET_HELD_OUT = 0.05


@dataclass
class PretrainData:
    """Where the unlabelled windows come from: ``dataset`` ``"folder"`` (recordings under
    ``root``) or a dataset name ``train`` takes; the live binning (``window_ms``, ``bins``;
    None: the model's T bins of 50 ms); ``roi`` / ``resize`` / ``sensor_size``: the geometry
    options; ``noise_filter``: ``--filter`` (a :class:`~dvsstream.filters.FilterSpec`,
    applied before the binning); ``skip_unreadable``: leave unreadable recordings out (else an error naming
    them); ``frames``, ``cache_dir``, ``limit``: a dataset's binning mode, frame cache and
    sample limit; ``min_events``: quieter windows are left out."""

    dataset: str
    root: Union[str, os.PathLike]
    window_ms: Optional[float] = None
    bins: Optional[int] = None
    roi: Optional[Sequence[int]] = None
    resize: Optional[Sequence[int]] = None
    sensor_size: Optional[Sequence[int]] = None
    skip_unreadable: bool = False
    frames: str = "time"
    cache_dir: Optional[str] = None
    limit: Optional[int] = None
    min_events: int = 16
    noise_filter: Any = None


def decoder_for(encoder_dim: int, mask_ratio: float = 0.75, target: str = "window",
                dim: Optional[int] = None, depth: Optional[int] = None) -> DecoderConfig:
    """The decoder for an encoder of width ``encoder_dim``: Spike-driven Transformer V3's
    4 blocks of width 256 for full-size encoders (256 wide and more); 2 blocks of twice the
    encoder's width for narrower ones, so the decoder does not outweigh the encoder's step
    (``pretrain`` stays within 1.3x of ``train``'s samples/s). ``dim`` / ``depth`` override."""
    big = encoder_dim >= 256
    width = dim or (256 if big else min(256, 2 * encoder_dim))
    return DecoderConfig(dim=width, depth=depth or (4 if big else 2), heads=4 if width % 4 == 0 else 1,
                         mask_ratio=mask_ratio, target=target)


def _folder_windows(data: PretrainData, mcfg: Any, say: Callable[[str], Any]):
    """Training and held-out windows of every recording under ``data.root``."""
    from dvsstream.binning.geometry import BinningConfig, check_window
    from dvsstream.datasets.recordings import WindowSource, find_recordings, recording_windows

    files = find_recordings(data.root)
    if not files:
        raise DvsstreamError(f"--root {data.root}: no readable recording in it or its sub-folders "
                             "(AEDAT 2/3.1/4, HDF5, .npy, Prophesee RAW/DAT)")
    bins = data.bins or mcfg.T
    window_ms = data.window_ms if data.window_ms is not None else 50.0 * bins
    check_window(window_ms, bins, window_ms / bins, round)  # whole-µs bins; the hop is one bin
    window_us = int(round(window_ms * 1000))
    base = BinningConfig(window_us, bins, window_us // bins)
    size = tuple(mcfg.img_size[::-1])  # (width, height)
    kw = dict(roi=data.roi, resize=data.resize, sensor_size=data.sensor_size, min_events=data.min_events,
              skip_unreadable=data.skip_unreadable, noise_filter=data.noise_filter, say=say)
    keep = min(1.0, WINDOW_DENSITY / bins)
    train = recording_windows([WindowSource(p, 0, (0.0, 1.0 - HELD_OUT)) for p in files], [], base, size,
                              keep_fraction=keep, **kw)
    test = recording_windows([WindowSource(p, 0, (1.0 - HELD_OUT, 1.0)) for p in files], [], base, size,
                             say=lambda s: None, **{k: v for k, v in kw.items() if k != "say"})
    for path, why in train.skipped:
        say(f"warning: skipped {path}: {why}")
    n_files = len(files) - len(train.skipped)
    if len(train) == 0:
        raise DvsstreamError(f"--root {data.root}: {n_files} recording(s) but no window of {window_us / 1000:g} ms "
                             f"with at least {data.min_events} events; use a shorter --window-ms")
    say(f"{len(train):,} training and {len(test):,} held-out windows of {window_us / 1000:g} ms ({bins} bins) "
        f"from {n_files} recording(s) under {data.root}")
    meta = {"dataset": "folder", "root": str(data.root), "recordings": n_files,
            "noise_filter": str(data.noise_filter) if data.noise_filter else None,
            "live_binning": base.to_dict(), "binnings": train.binnings}
    return train, test, meta


def _dataset_windows(data: PretrainData, mcfg: Any, seed: int, say: Callable[[str], Any]):
    """A dataset's train split (labels ignored): 95 % to learn from, 5 % held out."""
    from dvsstream.datasets.load import load_dataset
    from dvsstream.training.train import frame_spec_for

    from dvsstream.datasets.names import dataset_sensor_size

    spec = frame_spec_for(mcfg, data.frames, "spikingjelly", data.roi, data.resize, dataset_sensor_size(data.dataset))
    if data.noise_filter:
        spec = dataclasses.replace(spec, noise_filter=str(data.noise_filter))
    full = load_dataset(data.dataset, data.root, split="train", spec=spec, cache_dir=data.cache_dir, limit=data.limit)
    order = torch.randperm(len(full), generator=torch.Generator().manual_seed(seed)).tolist()
    n_test = max(1, int(round(DATASET_HELD_OUT * len(full)))) if len(full) > 1 else 0
    test = torch.utils.data.Subset(full, sorted(order[:n_test]))
    train = torch.utils.data.Subset(full, sorted(order[n_test:]))
    say(f"{len(train):,} training and {len(test):,} held-out samples of {data.dataset}'s train split "
        f"(labels ignored)")
    meta = {"dataset": data.dataset, "root": str(data.root), "frame_spec": dataclasses.asdict(spec)}
    meta["frame_spec"]["sensor_size"] = list(spec.sensor_size)
    return train, test, meta


def pretrain_on_data(data: PretrainData, model_name: str, decoder: DecoderConfig, config: TrainConfig,
                     out_dir: Union[str, os.PathLike], *, device: Optional[str] = None,
                     say: Callable[[str], Any] = print) -> TrainResult:
    """Pre-train ``model_name``'s encoder on ``data`` with ``decoder`` and ``config``
    (see the module docstring); files go to ``out_dir``. Under ``torchrun`` the process
    group is initialised here and torn down at the end."""
    from dvsstream.models import create_model, get_config
    from dvsstream.models.masked import MaskedAutoencoder
    from dvsstream.training.pretrain import PretrainTrainer

    mcfg = get_config(model_name)
    resolve_amp(config.amp, resolve_device(device))
    info, dev, initialised = init_distributed(device)
    quiet = say if info.is_main else (lambda s: None)
    try:
        if data.dataset == "folder":
            train_set, test_set, meta = _folder_windows(data, mcfg, quiet)
        else:
            train_set, test_set, meta = _dataset_windows(data, mcfg, config.seed, quiet)
        torch.manual_seed(config.seed)
        mae = MaskedAutoencoder(create_model(model_name, num_classes=0), decoder)
        trainer = PretrainTrainer(mae, train_set, test_set, config, out_dir, dev, quiet, [], meta)
        return trainer.run()
    finally:
        close_distributed(initialised)
