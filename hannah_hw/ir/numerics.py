"""The one integer semantics of hannah-hw (numpy, int64). The QAT fake-quantisers, the RTL and
the C kernels implement exactly these functions; tests hold them to it.

Requantisation: ``y = clamp(((acc * M + (1 << (sh - 1))) >> sh) + zp_out, lo, hi)`` with an
arithmetic shift (round half up) and ``sh >= 1``. A residual add rescales both branches with
one shift and rounds once: ``((a - zp_a) * M_a + (b - zp_b) * M_b + (1 << (sh - 1))) >> sh``.
Graphs imported from ONNX round half to even instead (node attribute ``rounding``), as ONNX
does; hannah-hw's own graphs always round half up. A power-of-two rescale by ``2**-s`` is
``M = 1, sh = s`` for ``s >= 1`` and ``M = 2**(1 - s), sh = 1`` otherwise.
"""

from __future__ import annotations

import math

import numpy as np

MAX_SHIFT = 62  # sh in [1, 62]: the rounding term 2**(sh-1) fits int64
MAX_MULT = (1 << 31) - 1  # multipliers: 31 bits (a 32-bit descriptor word, ONNX's fixed point)
ACC_LIMIT = 1 << 62  # |acc * M| below it: with the rounding term, inside int64
FLOAT_EXACT = 1 << 53  # conv/linear accumulate in float64, exact below it


def int_range(bits: int, signed: bool) -> tuple[int, int]:
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


def pow2_multiplier(s: int) -> tuple[int, int]:
    """(M, sh) multiplying by exactly ``2**-s``."""
    return (1, s) if s >= 1 else (1 << (1 - s), 1)


def fixed_multiplier(ratio: float, mbits: int = 15) -> tuple[int, int]:
    """(M, sh) with ``M / 2**sh`` closest to ``ratio`` and ``M < 2**mbits``."""
    if not ratio > 0 or not math.isfinite(ratio):
        raise ValueError(f"rescale ratio must be positive and finite, got {ratio}")
    sh = mbits - 1 - math.floor(math.log2(ratio))
    m = round(ratio * 2.0 ** sh)
    if m >= 1 << mbits:  # rounding reached the next power of two
        m, sh = m >> 1, sh - 1
    if sh < 1:
        raise ValueError(f"rescale ratio {ratio} too large for {mbits}-bit multipliers")
    if sh > MAX_SHIFT:
        raise ValueError(f"rescale ratio {ratio} too small to represent")
    return int(m), int(sh)


def common_multipliers(ratios: list[float], mbits: int = 15) -> tuple[list[int], int]:
    """Multipliers ``m_i`` and one shift with ``m_i / 2**sh`` close to each ratio (exact for
    powers of two), for sums rounded once, like a residual add."""
    exps = [math.log2(r) for r in ratios]
    if all(e == int(e) for e in exps):
        sh = max(1, *(-int(e) for e in exps))
        return [1 << (sh + int(e)) for e in exps], sh
    sh = mbits - 1 - math.floor(max(exps))
    if sh < 1 or sh > MAX_SHIFT:
        raise ValueError(f"rescale ratios {ratios} cannot share a shift")
    return [int(round(r * 2.0 ** sh)) for r in ratios], sh


def round_shift(acc: np.ndarray, m, sh) -> np.ndarray:
    """``(acc * m + 2**(sh-1)) >> sh`` elementwise, broadcasting per-channel m and sh."""
    acc = np.asarray(acc, np.int64)
    m = np.asarray(m, np.int64)
    sh = np.asarray(sh, np.int64)
    return (acc * m + (np.int64(1) << (sh - 1))) >> sh


def round_shift_even(acc: np.ndarray, m, sh) -> np.ndarray:
    """``acc * m / 2**sh`` rounded half to even (ONNX's rounding, for imported graphs)."""
    prod = np.asarray(acc, np.int64) * np.asarray(m, np.int64)
    sh = np.asarray(sh, np.int64)
    q = prod >> sh
    rem = prod - (q << sh)
    half = np.int64(1) << (sh - 1)
    return q + ((rem > half) | ((rem == half) & (q & 1).astype(bool)))


ROUNDING = {"half_up": round_shift, "half_even": round_shift_even}


def requantize(acc, m, sh, lo: int, hi: int, zp_out: int = 0,
               rounding: str = "half_up") -> np.ndarray:
    return np.clip(ROUNDING[rounding](acc, m, sh) + zp_out, lo, hi)


def quantize(x: np.ndarray, scale: float, zp: int, lo: int, hi: int) -> np.ndarray:
    """Float to integer with round half up: ``clamp(floor(x / scale + 0.5) + zp)``."""
    q = np.floor(np.asarray(x, np.float64) / scale + 0.5)
    return np.clip(q + zp, lo, hi).astype(np.int64)


def dequantize(q: np.ndarray, scale: float, zp: int) -> np.ndarray:
    return ((np.asarray(q, np.int64) - zp) * scale).astype(np.float32)


def _windows(x: np.ndarray, kernel, stride, dilation) -> np.ndarray:
    """View (N, C, *out, *kernel) of the (already padded) input."""
    dims = len(kernel)
    n, c = x.shape[:2]
    out = [(x.shape[2 + d] - dilation[d] * (kernel[d] - 1) - 1) // stride[d] + 1
           for d in range(dims)]
    st = x.strides
    shape = (n, c, *out, *kernel)
    strides = (st[0], st[1], *(st[2 + d] * stride[d] for d in range(dims)),
               *(st[2 + d] * dilation[d] for d in range(dims)))
    return np.lib.stride_tricks.as_strided(x, shape, strides, writeable=False)


def pad(x: np.ndarray, padding, value: int) -> np.ndarray:
    width = [(0, 0), (0, 0), *((p, p) for p in padding)]
    return np.pad(x, width, constant_values=value)


def conv(x, w, bias, stride, padding, dilation, groups: int, zp_in: int = 0) -> np.ndarray:
    """Integer convolution (1-D or 2-D) to int64 accumulators, bias added.

    Padding holds the input's zero point, so it contributes nothing after ``x - zp_in``.
    Computed in float64, which is exact for |acc| < 2**53 (the checker bounds bit widths).
    """
    dims = w.ndim - 2
    xp = pad(np.asarray(x, np.int64) - zp_in, padding, 0).astype(np.float64)
    win = _windows(xp, w.shape[2:], stride, dilation)  # N, C, *out, *k
    n, c = xp.shape[:2]
    out_sp = win.shape[2:2 + dims]
    o = w.shape[0]
    cg, og = c // groups, o // groups
    result = np.empty((n, o, *out_sp), np.int64)
    wf = w.astype(np.float64)
    for g in range(groups):
        xs = win[:, g * cg:(g + 1) * cg]  # N, cg, *out, *k
        xs = np.moveaxis(xs, 1, 1 + dims)  # N, *out, cg, *k
        cols = xs.reshape(n, *out_sp, -1)
        wg = wf[g * og:(g + 1) * og].reshape(og, -1)
        acc = cols @ wg.T  # N, *out, og
        result[:, g * og:(g + 1) * og] = np.moveaxis(np.rint(acc).astype(np.int64), -1, 1)
    return result + np.asarray(bias, np.int64).reshape(1, o, *([1] * dims))


def linear(x, w, bias, zp_in: int = 0) -> np.ndarray:
    """``w`` is (out, in); x is flattened per sample."""
    xf = (np.asarray(x, np.int64).reshape(len(x), -1) - zp_in).astype(np.float64)
    acc = np.rint(xf @ w.astype(np.float64).T).astype(np.int64)
    return acc + np.asarray(bias, np.int64)


def window_sum(x, kernel, stride, padding, zp_in: int = 0) -> np.ndarray:
    xp = pad(np.asarray(x, np.int64) - zp_in, padding, 0)
    win = _windows(xp, kernel, stride, [1] * len(kernel))
    return win.sum(axis=tuple(range(-len(kernel), 0)))


def window_max(x, kernel, stride, padding, dilation, lo: int) -> np.ndarray:
    xp = pad(np.asarray(x, np.int64), padding, lo)
    win = _windows(xp, kernel, stride, dilation)
    return win.max(axis=tuple(range(-len(kernel), 0)))
