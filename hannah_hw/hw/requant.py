"""Requantiser: ``y = clamp(((acc * M + 2**(sh-1)) >> sh) + zp, lo, hi)`` in hardware, with
half-to-even rounding when the configuration needs it. For power-of-two graphs there is no
multiplier: ``M = 2**lsh``. ``bypass`` only clamps (max pooling, ReLU).

``LATENCY`` cycles, pipelined (one result per cycle), so that no stage holds more than one
wide operation (an iCE40 at 24 MHz has ~40 ns a stage):

1. ``prod = acc * M`` (one DSP multiply), or for shifts only the net shift ``sh - 1 - lsh``:
   ``(acc * 2**l + 2**(s-1)) >> s`` is one shifter by ``s - l``, not two in series;
2. ``prod >> (sh - 1)`` in two stages, by the multiple of 8 and by the rest (one wide
   barrel shifter and its saturation in one stage was the iCE40's critical path, 42 ns);
3. ``q2``: the rest of the shift, saturated to ``act_w + 3`` bits (the rounding bit is
   ``q2[0]``): any value beyond clamps to ``lo``/``hi`` all the same, so the rounding, zero
   point and clamp that follow are narrow;
4. ``y = clamp(((q2 + 1) >> 1) + zp, lo, hi)`` (half even: no ``+ 1`` on an even tie).

``acc, m, sh`` are taken in the first stage, ``zp, lo, hi, half_even`` in the last and
``bypass`` in both: the accelerator holds them for a whole layer (descriptor fields)."""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hannah_hw.accel.config import AccelConfig
from hannah_hw.accel.hwdesc import RQ_LATENCY
from hannah_hw.ir import numerics as nx

LATENCY = RQ_LATENCY


def saturate(v, w: int):
    """``v`` clamped to a ``w``-bit signed value: the bits above must all equal the sign."""
    if len(v) <= w:
        return v.as_signed()
    top = v[w - 1:]
    fits = ~top.any() | top.all()
    return Mux(fits, v[:w], Cat((~v[-1]).replicate(w - 1), v[-1])).as_signed()


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
        act = cfg.act_bits + 1
        wq = act + 3  # q2 beyond +-2**(act+2) rounds to beyond +-2**(act+1): clamped anyway
        # stage 1: the value to shift right and by how much (x >> r == prod >> (sh - 1))
        if self.shifts_only:
            lft = wq  # acc << lft is out of range for any acc != 0: larger shifts saturate
            x = Signal(signed(cfg.acc_bits), name="x1")
            r = Signal(range((1 << cfg.shift_bits) + lft), name="r1")
            net = Signal(signed(len(r) + 1))
            m.d.comb += net.eq(self.sh + (lft - 1) - self.m)
            # bypass: q2 = 2 * acc, which rounds back to acc
            m.d.sync += [x.eq(self.acc), r.eq(Mux(self.bypass, lft - 1,
                                                   Mux(net < 0, 0, net[:len(r)])))]
            xs = x << lft
        else:
            x = Signal(signed(cfg.acc_bits + cfg.mult_bits + 1), name="x1")
            r = Signal(unsigned(cfg.shift_bits), name="r1")
            m.d.sync += [x.eq(Mux(self.bypass, self.acc, self.acc * self.m) << 1),
                         r.eq(Mux(self.bypass, 0, self.sh))]
            xs = x
        # stage 2: the shift by the multiple of 8 (arithmetic, so no bit is lost to the sign)
        xc, rf = Signal.like(xs, name="xc"), Signal(3, name="rf")
        m.d.sync += [xc.eq(xs >> Cat(Const(0, 3), r[3:])), rf.eq(r[:3])]
        # stage 3: the rest of the shift, saturated
        q2 = Signal(signed(wq), name="q2")
        m.d.sync += q2.eq(saturate(xc >> rf, wq))
        sticky = Signal(name="sticky")
        if cfg.half_even:  # any bit below the rounding bit: not a tie
            mask = (Const(1, 1) << r) - 1
            sticky_c = Signal(name="sticky_c")
            m.d.sync += [sticky_c.eq((xs.as_unsigned() & mask[:len(xs)]) != 0),
                         sticky.eq(sticky_c)]
        # stage 4: round, zero point, clamp (narrow)
        up = Const(1, 1)
        if cfg.half_even:
            up = ~(self.half_even & q2[0] & ~q2[1] & ~sticky)
        rounded = ((q2 + up) >> 1)
        v = rounded + Mux(self.bypass, 0, self.zp)
        m.d.sync += self.y.eq(Mux(v < self.lo, self.lo, Mux(v > self.hi, self.hi, v)))
        return m


def requant_model(acc, m, sh, zp, lo, hi, half_even=False, shifts_only=False, bypass=False):
    """Golden model: the numerics twin, taking the multiplier as the hardware does."""
    if bypass:
        return int(min(max(acc, lo), hi))
    mult = 1 << m if shifts_only else m
    fn = nx.round_shift_even if half_even else nx.round_shift
    return int(min(max(int(fn(acc, mult, sh)) + zp, lo), hi))
