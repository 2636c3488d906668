"""Quantised layers for QAT. Each layer emulates one QGraph node exactly (in float64) and
lowers itself to that node.

Modes: ``float`` runs the plain float layer (training before QAT, and calibration, which
records the activation range); ``quant`` fake-quantises. Activations are ``q * 2**-f`` with a
per-tensor ``f`` fixed by calibration; weights have per-channel power-of-two scales, or float
scales with fixed-point requantisation multipliers (``pow2=False``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from hannah_hw.ir.numerics import common_multipliers, int_range

from .quant import (
    clamp_ste,
    fake_quant,
    quantize_weight,
    requant_params,
    round_half_up,
    round_shift,
    weight_exponents,
    weight_scales,
)


def calibration_range(y: torch.Tensor, bits: int) -> float:
    """A high quantile of |y| rather than the maximum: the fewer the bits, the more it pays to
    clip rare outliers (quantile 1 - 2**-(bits + 6): 99.994 % at 8 bits, 99.9 % at 4)."""
    a = y.detach().abs().flatten().float()
    if a.numel() > 1 << 20:
        a = a[torch.randperm(a.numel(), generator=torch.Generator().manual_seed(0))[:1 << 20]]
    return float(torch.quantile(a, 1.0 - 2.0 ** -(bits + 6)))


class QLayer(nn.Module):
    op = ""

    def __init__(self, name: str, inputs: list[str], bits: int, signed: bool, relu: bool = False):
        super().__init__()
        self.name, self.inputs = name, list(inputs)
        self.bits, self.signed, self.relu = bits, signed, relu
        self.mode = "float"
        self.f_in: list[int] = []  # exponents of the inputs, set when the net is calibrated
        self.f_out = 0
        self.amax = 0.0
        self.out_shape: tuple[int, ...] = ()

    def out_range(self) -> tuple[int, int]:
        lo, hi = int_range(self.bits, self.signed)
        return (max(lo, 0) if self.relu else lo), hi

    def record(self, y: torch.Tensor) -> torch.Tensor:
        self.out_shape = tuple(y.shape[1:])
        if self.mode == "float" and not self.training:
            self.amax = max(self.amax, calibration_range(y, self.bits))
        return y

    def requant(self, acc, m, sh):
        lo, hi = self.out_range()
        return clamp_ste(round_shift(acc, m, sh), lo, hi) * 2.0 ** -self.f_out

    def inherits_scale(self) -> bool:
        """Pools and ReLU keep their input's scale; the others are calibrated."""
        return False


def _pow2_requant(s: torch.Tensor):
    """(M, sh) tensors for exact rescaling by 2**-s (twin of numerics.pow2_multiplier)."""
    m = torch.where(s >= 1, torch.ones_like(s), torch.pow(2.0, 1 - s))
    return m, torch.where(s >= 1, s, torch.ones_like(s))


class QWeighted(QLayer):
    """Convolution or linear layer with bias (BatchNorm folded in), optional fused ReLU."""

    def __init__(self, name, inputs, weight, bias, wbits, bits, relu, pow2=True, **conv):
        super().__init__(name, inputs, bits, signed=not relu, relu=relu)
        self.weight = nn.Parameter(weight.clone())
        self.bias = nn.Parameter(bias.clone())
        self.wbits, self.pow2, self.conv = wbits, pow2, conv

    def _op(self, x, w):
        if self.op == "linear":
            return F.linear(torch.flatten(x, 1), w)
        fn = F.conv1d if w.dim() == 3 else F.conv2d
        return fn(x, w, None, self.conv["stride"], self.conv["padding"], self.conv["dilation"],
                  self.conv["groups"])

    def _bshape(self, t, ndim: int):
        """Per-channel values shaped to broadcast over an ``ndim``-d activation."""
        return t.reshape(1, -1, *([1] * (ndim - 2)))

    def weight_int(self):
        """Integer weights (as floats), their per-channel scales, and the rescale (M, sh)."""
        w = self.weight
        if self.pow2:
            e = weight_exponents(w, self.wbits).to(w.dtype)
            scale = torch.pow(2.0, -e)
            m, sh = _pow2_requant(e + self.f_in[0] - self.f_out)
        else:
            scale = weight_scales(w, self.wbits).to(w.dtype)
            ms, shs = requant_params(scale * 2.0 ** (self.f_out - self.f_in[0]), pow2=False)
            m, sh = (torch.tensor(v, dtype=w.dtype, device=w.device) for v in (ms, shs))
        return quantize_weight(w, self.wbits, scale), scale, m, sh

    def bias_int(self, scale):
        return round_half_up(self.bias / (scale * 2.0 ** -self.f_in[0]))

    def forward(self, x):
        if self.mode == "float":
            y = self._op(x, self.weight)
            y = y + self._bshape(self.bias, y.dim())
            return self.record(F.relu(y) if self.relu else y)
        w_int, scale, m, sh = self.weight_int()
        acc = self._op(x * 2.0 ** self.f_in[0], w_int)
        nd = acc.dim()
        acc = acc + self._bshape(self.bias_int(scale), nd)
        return self.record(self.requant(acc, self._bshape(m, nd), self._bshape(sh, nd)))


class QConv(QWeighted):
    op = "conv"


class QLinear(QWeighted):
    op = "linear"


class QAdd(QLayer):
    op = "add"

    def add_multipliers(self) -> tuple[list[int], int]:
        return common_multipliers([2.0 ** (self.f_out - f) for f in self.f_in])

    def forward(self, a, b):
        if self.mode == "float":
            y = a + b
            return self.record(F.relu(y) if self.relu else y)
        (ma, mb), sh = self.add_multipliers()
        acc = a * 2.0 ** self.f_in[0] * ma + b * 2.0 ** self.f_in[1] * mb
        one = torch.ones((), dtype=a.dtype)
        return self.record(self.requant(acc, one, one * sh))


class QAvgPool(QLayer):
    """Average pooling as a window sum and a rescale by 1/window (exact for powers of two).
    ``kernel=None`` pools globally."""

    op = "avgpool"

    def __init__(self, name, inputs, bits, signed, kernel=None, stride=None, padding=None):
        super().__init__(name, inputs, bits, signed)
        self.kernel, self.stride, self.padding = kernel, stride, padding

    def inherits_scale(self):
        return True

    def window(self, x) -> tuple[list[int], list[int], list[int]]:
        if self.kernel is None:
            k = list(x.shape[2:])
            return k, k, [0] * len(k)
        return self.kernel, self.stride, self.padding

    def requant_mul(self) -> tuple[int, int]:
        """(M, sh) of the rescale by 1/window (set by the last forward)."""
        k = self.window_size
        pow2 = k & (k - 1) == 0
        ms, shs = requant_params(1.0 / k, pow2=pow2)
        return ms[0], shs[0]

    def forward(self, x):
        k, s, p = self.window(x)
        self.window_size = math.prod(k)
        if x.dim() == 3:  # 1-D pooling through the 2-D op (it has divisor_override)
            x4, k4, s4, p4 = x.unsqueeze(2), [1, *k], [1, *s], [0, *p]
        else:
            x4, k4, s4, p4 = x, k, s, p
        if self.mode == "float":
            y = F.avg_pool2d(x4, k4, s4, p4, count_include_pad=True)
            return self.record(y.squeeze(2) if x.dim() == 3 else y)
        total = F.avg_pool2d(x4 * 2.0 ** self.f_in[0], k4, s4, p4, divisor_override=1)
        total = total.squeeze(2) if x.dim() == 3 else total
        m, sh = self.requant_mul()
        one = torch.ones((), dtype=x.dtype)
        return self.record(self.requant(total, one * m, one * sh))


class QMaxPool(QLayer):
    op = "maxpool"

    def __init__(self, name, inputs, bits, signed, kernel, stride, padding, dilation):
        super().__init__(name, inputs, bits, signed)
        self.kernel, self.stride, self.padding, self.dilation = kernel, stride, padding, dilation

    def inherits_scale(self):
        return True

    def forward(self, x):
        fn = F.max_pool1d if x.dim() == 3 else F.max_pool2d
        return self.record(fn(x, self.kernel, self.stride, self.padding, self.dilation))


class QRelu(QLayer):
    op = "relu"

    def inherits_scale(self):
        return True

    def forward(self, x):
        return self.record(F.relu(x))


class QInput(QLayer):
    """Quantises the float input (signed, 8 bits by default)."""

    op = "input"

    def forward(self, x):
        self.record(x)
        return x if self.mode == "float" else fake_quant(x, self.f_out, self.bits, self.signed)
