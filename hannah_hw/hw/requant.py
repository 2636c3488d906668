"""Requantiser: ``y = clamp(((acc * M + 2**(sh-1)) >> sh) + zp, lo, hi)`` in hardware, with
half-to-even rounding when the configuration needs it. For power-of-two graphs there is no
multiplier: ``M = 2**lsh`` is a left shift. ``bypass`` only clamps (max pooling, ReLU).
One cycle of latency."""

from __future__ import annotations

from amaranth import Const, Module, Mux, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hannah_hw.accel.config import AccelConfig
from hannah_hw.ir import numerics as nx


class Requantizer(wiring.Component):
    def __init__(self, cfg: AccelConfig):
        self.cfg = cfg
        self.shifts_only = cfg.mult_bits == 1
        act = cfg.act_bits + 1  # room for zero points of unsigned tensors
        sig = {
            "acc": In(signed(cfg.acc_bits)),
            "m": In(unsigned(cfg.shift_bits if self.shifts_only else cfg.mult_bits)),
            "sh": In(unsigned(cfg.shift_bits)),
            "zp": In(signed(act)),
            "lo": In(signed(act)),
            "hi": In(signed(act)),
            "bypass": In(1),
            "y": Out(signed(act)),
        }
        if cfg.half_even:
            sig["half_even"] = In(1)
        super().__init__(sig)

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        if self.shifts_only:
            prod = self.acc << self.m  # m holds log2(M)
        else:
            prod = self.acc * self.m
        sh_1 = (self.sh - 1).as_unsigned()[:len(self.sh)]
        half = Const(1, 1) << sh_1
        rounded = (prod + half) >> self.sh
        if cfg.half_even:
            q = prod >> self.sh
            rem = prod - (q << self.sh)
            tie = (rem == half) & ~q[0]
            rounded = Mux(self.half_even & tie, q, rounded)
        v = Mux(self.bypass, self.acc, rounded + self.zp)
        m.d.sync += self.y.eq(Mux(v < self.lo, self.lo, Mux(v > self.hi, self.hi, v)))
        return m


def requant_model(acc, m, sh, zp, lo, hi, half_even=False, shifts_only=False, bypass=False):
    """Golden model: the numerics twin, taking the multiplier as the hardware does."""
    if bypass:
        return int(min(max(acc, lo), hi))
    mult = 1 << m if shifts_only else m
    fn = nx.round_shift_even if half_even else nx.round_shift
    return int(min(max(int(fn(acc, mult, sh)) + zp, lo), hi))
