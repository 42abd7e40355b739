"""The format of one frame-cache entry (an HDF5 file holding one sample's frames).

An entry holds the flat indices and counts of the non-zero pixels (uint8/uint16 when
exact, else float32), uncompressed: reading it needs no inflate (deflate was the
bottleneck of a warm cache); dense when over a third are non-zero. Where entries live
and how they are keyed: :mod:`dvsstream.datasets.frame_dataset`.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

__all__ = ["CACHE_VERSION", "smallest_exact", "encode_entry", "decode_entry"]

#: bump when the binning or the cache file layout changes (old entries are ignored)
CACHE_VERSION = 3


def smallest_exact(values: np.ndarray) -> np.ndarray:
    """Counts as uint8 / uint16 when that is exact, else float32."""
    if values.size == 0:
        return values.astype(np.uint8)
    lo, hi = float(values.min()), float(values.max())
    for dt in (np.uint8, np.uint16):
        if lo >= 0 and hi <= np.iinfo(dt).max:
            cast = values.astype(dt)
            if np.array_equal(cast, values):
                return cast
    return values.astype(np.float32)


def encode_entry(f, frames: np.ndarray) -> None:
    """Event frames are mostly zeros: store the flat indices and values of the non-zero
    counts (uncompressed: reading needs no inflate, which was the bottleneck of a warm
    cache); dense (uncompressed) when more than a third of the pixels are non-zero."""
    flat = frames.reshape(-1)
    nz = np.flatnonzero(flat)
    f.attrs["shape"] = list(frames.shape)
    if nz.size * 3 > flat.size:
        f.create_dataset("frames", data=smallest_exact(frames))
    else:
        f.create_dataset("index", data=nz.astype(np.uint32))
        f.create_dataset("values", data=smallest_exact(flat[nz]))


def decode_entry(f, shape: tuple[int, ...]) -> Optional[np.ndarray]:
    stored = tuple(int(s) for s in f.attrs.get("shape", ()))
    if stored != tuple(shape):
        return None
    if "frames" in f:
        return f["frames"][()].astype(np.float32, copy=False)
    out = np.zeros(int(np.prod(shape)), np.float32)
    out[f["index"][()]] = f["values"][()]
    return out.reshape(shape)
