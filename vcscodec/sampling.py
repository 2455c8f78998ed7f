"""The encoder half in numpy: pad a plane, cut it into B×B blocks, measure each block y = Φ·vec(block).

This is the whole sensor-side computation: one matrix product per block. It never imports torch, and it is
bit-compatible with the network's own sampling convolution (``HITVCSNet.measure_key``/``measure_non``), which a
test checks. Scan order: blocks row-major over the padded plane; within a block, pixels row-major.
"""

from __future__ import annotations

import numpy as np


def pad_plane(plane: np.ndarray, block: int) -> np.ndarray:
    """Pad (h, w) up to multiples of ``block`` by replicating the last row and column (no false edges)."""
    h, w = plane.shape
    return np.pad(plane, ((0, -h % block), (0, -w % block)), mode="edge")


def blocks_of(plane: np.ndarray, block: int) -> np.ndarray:
    """(hp, wp) padded plane → (hb·wb, B²) block vectors, both scans row-major."""
    hp, wp = plane.shape
    hb, wb = hp // block, wp // block
    return plane.reshape(hb, block, wb, block).transpose(0, 2, 1, 3).reshape(hb * wb, block * block)


def measure_plane(plane: np.ndarray, phi: np.ndarray, shift: int = 0) -> np.ndarray:
    """An 8-bit plane (h, w) → measurements (M, hb, wb) of its padded blocks, pixels scaled to [0, 1].

    ``shift``: the block grid is moved that many pixels down and right, cyclically over the padded plane (the
    keyframes of odd GOPs of a stream with a key_grid_shift, docs/format.md). Computed in float64, so that a
    BLAS's order of summation moves y by far less than the quantizer's rounding can see (docs/format.md §5).
    """
    block = int(round(np.sqrt(phi.shape[1])))
    padded = pad_plane(plane, block).astype(np.float64) / 255.0
    if shift:
        padded = np.roll(padded, (shift, shift), (0, 1))
    hb, wb = padded.shape[0] // block, padded.shape[1] // block
    y = blocks_of(padded, block) @ phi.T  # (hb·wb, M)
    return y.T.reshape(phi.shape[0], hb, wb)


def crop_plane(plane: np.ndarray, height: int, width: int) -> np.ndarray:
    """Undo ``pad_plane``."""
    return plane[:height, :width]
