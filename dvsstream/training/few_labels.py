"""Few-label fine-tuning: :func:`choose_labelled` picks ``N`` labelled samples per class
from a training split, a fixed and reproducible choice (``--labels-per-class N
--label-seed S``) recorded in the checkpoint and ``result.json``."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from dvsstream.errors import DvsstreamError

__all__ = ["choose_labelled", "targets_of"]


def targets_of(dataset: Any) -> list[int]:
    """The label of every sample of ``dataset`` without reading its frames (its
    ``targets``), else by reading every sample."""
    targets = getattr(dataset, "targets", None)
    if targets is not None:
        return [int(t) for t in targets]
    if hasattr(dataset, "dataset") and hasattr(dataset, "indices"):  # a torch Subset
        inner = targets_of(dataset.dataset)
        return [inner[i] for i in dataset.indices]
    return [int(dataset[i][1]) for i in range(len(dataset))]


def choose_labelled(targets: Sequence[int], classes: Sequence[str], per_class: int, seed: int = 0,
                    allow_fewer: bool = False) -> dict[str, Any]:
    """``per_class`` samples of each class, drawn at random with ``seed`` from the indices
    of ``targets`` (the same seed and split give the same choice). Returns ``{"indices":
    sorted list, "per_class": {class name: count}, "labels_per_class": per_class,
    "label_seed": seed}``. A class with fewer samples is a :class:`DvsstreamError` naming
    it, unless ``allow_fewer`` (then all of its samples are taken)."""
    targets = np.asarray(list(targets), dtype=np.int64)
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    counts: dict[str, int] = {}
    for k, name in enumerate(classes):
        members = np.flatnonzero(targets == k)
        if members.size < per_class and not allow_fewer:
            raise DvsstreamError(
                f"--labels-per-class {per_class}: class {name!r} has only {members.size} training sample(s); "
                f"lower it, or pass --allow-fewer-labels to take all of the smaller classes")
        take = rng.permutation(members)[:per_class]
        chosen += take.tolist()
        counts[str(name)] = int(take.size)
    return {"indices": sorted(chosen), "per_class": counts, "labels_per_class": int(per_class),
            "label_seed": int(seed)}
