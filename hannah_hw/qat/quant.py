"""Fake quantisation in torch: the float twin of ir/numerics.py.

Values travel between layers as ``q * 2**-f`` (exact in floating point). Inside a layer the
integer domain is emulated with straight-through rounding; in float64 (eval) every result
is the integer the reference interpreter computes, because all intermediates are integers
below 2**53 and scaling by powers of two is exact.
"""

from __future__ import annotations

import math

import torch

from hannah_hw.ir.numerics import fixed_multiplier, int_range, pow2_multiplier


class _FloorSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return torch.floor(x)

    @staticmethod
    def backward(ctx, g):
        return g


def round_half_up(x: torch.Tensor) -> torch.Tensor:
    """``floor(x + 0.5)`` with a straight-through gradient (never torch.round: half-to-even)."""
    return _FloorSTE.apply(x + 0.5)


def clamp_ste(x: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    """Clamp; gradient passes inside the range only."""
    return torch.clamp(x, lo, hi)


def round_shift(acc: torch.Tensor, m: torch.Tensor, sh: torch.Tensor) -> torch.Tensor:
    """``(acc * m + 2**(sh-1)) >> sh`` on integer-valued floats (twin of numerics.round_shift)."""
    scale = torch.pow(2.0, -sh.to(acc.dtype))
    return _FloorSTE.apply((acc * m.to(acc.dtype) + torch.pow(2.0, sh.to(acc.dtype) - 1)) * scale)


def weight_exponents(w: torch.Tensor, bits: int) -> torch.Tensor:
    """Per output channel, the largest e with max|w| * 2**e <= 2**(bits-1) - 1."""
    qmax = (1 << (bits - 1)) - 1
    amax = w.detach().abs().reshape(len(w), -1).amax(1).clamp_min(2.0 ** -24)
    return torch.floor(torch.log2(qmax / amax)).clamp(-30, 40)


def weight_scales(w: torch.Tensor, bits: int) -> torch.Tensor:
    """Per output channel float scale max|w| / qmax (the fixed-multiplier option)."""
    qmax = (1 << (bits - 1)) - 1
    return w.detach().abs().reshape(len(w), -1).amax(1).clamp_min(2.0 ** -24) / qmax


def quantize_weight(w: torch.Tensor, bits: int, scale: torch.Tensor) -> torch.Tensor:
    """Symmetric, narrow range: integers in [-(2**(b-1)-1), 2**(b-1)-1] (as floats)."""
    qmax = (1 << (bits - 1)) - 1
    shape = (-1, *([1] * (w.dim() - 1)))
    return clamp_ste(round_half_up(w / scale.reshape(shape)), -qmax, qmax)


def act_exponent(amax: float, bits: int, signed: bool) -> int:
    """Fraction bits f so that amax * 2**f fits the integer range."""
    _, hi = int_range(bits, signed)
    return int(math.floor(math.log2(hi / max(amax, 2.0 ** -20))))


def fake_quant(x: torch.Tensor, f: int, bits: int, signed: bool) -> torch.Tensor:
    lo, hi = int_range(bits, signed)
    return clamp_ste(round_half_up(x * 2.0 ** f), lo, hi) * 2.0 ** -f


def requant_params(ratio: torch.Tensor | float, pow2: bool) -> tuple[list[int], list[int]]:
    """(M, sh) per channel for rescale ratios; exact shifts for powers of two."""
    ratios = ratio.tolist() if isinstance(ratio, torch.Tensor) else [ratio]
    out = []
    for r in ratios:
        if pow2:
            s = -int(round(math.log2(r)))
            out.append(pow2_multiplier(s))
        else:
            out.append(fixed_multiplier(r))
    return [m for m, _ in out], [s for _, s in out]
