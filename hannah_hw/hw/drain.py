"""The drain: the last step of an output position copies the lanes' accumulators into
shadow registers (``capture``), and the drain requantises them and writes them back, one
lane per cycle, to ``pos + lane * stride`` while the lanes compute the next position. The
selected lane's operands are registered: the lane mux and the requantiser's stages each
get a cycle; the lane parameters are free again a cycle after the drain's last select, so
a lane block's timing is as without pipeline. ``drained``: no write is in flight."""

from __future__ import annotations

from amaranth import Array, Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hannah_hw.accel.config import AccelConfig
from hannah_hw.accel.hwdesc import RQ_LATENCY, HwLayout

from .requant import Requantizer, requant_model


class Drain(wiring.Component):
    def __init__(self, cfg: AccelConfig):
        self.cfg, self.lay = cfg, HwLayout(cfg)
        lay = self.lay
        lanes, act = lay.lanes, signed(lay.act_w)
        sig = {
            "capture": In(1), "acc": In(data.ArrayLayout(signed(cfg.acc_bits), lanes)),
            "lanes": In(range(lanes + 1)), "pos": In(lay.aw), "stride": In(lay.aw),
            # mac: each lane's multiplier and shift, else the layer's
            "mac": In(1), "lane_m": In(data.ArrayLayout(unsigned(lay.mult_w), lanes)),
            "lane_sh": In(data.ArrayLayout(unsigned(cfg.shift_bits), lanes)),
            "m": In(unsigned(lay.mult_w)), "sh": In(unsigned(cfg.shift_bits)),
            "zp": In(act), "lo": In(act), "hi": In(act), "bypass": In(1),
            "left": Out(range(lanes + 1)),  # lanes still to select
            "pending": Out(1),  # a lane's operands are in the operand registers
            "drained": Out(1),
            "we": Out(1), "addr": Out(lay.aw), "y": Out(act),
        }
        if cfg.half_even:
            sig["half_even"] = In(1)
        super().__init__(sig)

    def elaborate(self, platform):
        m = Module()
        cfg, lay = self.cfg, self.lay
        lanes = lay.lanes
        m.submodules.rq = rq = Requantizer(cfg)
        idx, addr = Signal(range(lanes + 1)), Signal(lay.aw)
        shadow = Array(Signal(signed(cfg.acc_bits), name=f"shadow{i}") for i in range(lanes))
        lane_m = Array(self.lane_m[i] for i in range(lanes))
        lane_sh = Array(self.lane_sh[i] for i in range(lanes))
        left = self.left
        with m.If(left != 0):
            m.d.sync += [left.eq(left - 1), idx.eq(idx + 1), addr.eq(addr + self.stride)]
        with m.If(self.capture):
            m.d.sync += [shadow[i].eq(self.acc[i]) for i in range(lanes)]
            m.d.sync += [left.eq(self.lanes), idx.eq(0), addr.eq(self.pos)]
        a_acc, a_m, a_sh = Signal.like(rq.acc), Signal.like(rq.m), Signal.like(rq.sh)
        m.d.sync += [a_acc.eq(shadow[idx]), a_m.eq(Mux(self.mac, lane_m[idx], self.m)),
                     a_sh.eq(Mux(self.mac, lane_sh[idx], self.sh))]
        m.d.comb += [rq.acc.eq(a_acc), rq.m.eq(a_m), rq.sh.eq(a_sh), rq.zp.eq(self.zp),
                     rq.lo.eq(self.lo), rq.hi.eq(self.hi), rq.bypass.eq(self.bypass),
                     self.y.eq(rq.y)]
        if cfg.half_even:
            m.d.comb += rq.half_even.eq(self.half_even)
        # write valid and address along the pipeline: pipe[0] is the operand register's
        pipe_v = ([self.pending] + [Signal(name=f"pipe_v{i}") for i in range(1, RQ_LATENCY)]
                  + [self.we])
        pipe_a = [Signal(lay.aw, name=f"pipe_a{i}") for i in range(RQ_LATENCY)] + [self.addr]
        m.d.sync += [pipe_v[0].eq(left != 0), pipe_a[0].eq(addr)]
        m.d.sync += [pipe_v[i + 1].eq(pipe_v[i]) for i in range(RQ_LATENCY)]
        m.d.sync += [pipe_a[i + 1].eq(pipe_a[i]) for i in range(RQ_LATENCY)]
        m.d.comb += self.drained.eq(~Cat(*pipe_v[1:]).any())
        return m


def drain_model(acc, params, pos, stride, aw, rq_args, shifts_only=False
                ) -> list[tuple[int, int, int]]:
    """Golden model: (cycle after the capture, address, value) of each lane's write;
    ``params`` the (m, sh) of each lane, ``rq_args`` (zp, lo, hi, half_even, bypass)."""
    zp, lo, hi, half_even, bypass = rq_args
    return [(2 + RQ_LATENCY + k, (pos + k * stride) % (1 << aw),
             requant_model(a, mk, sk, zp, lo, hi, half_even, shifts_only, bypass))
            for k, (a, (mk, sk)) in enumerate(zip(acc, params))]
