"""The parameter loader: each lane block of a ``mac`` layer first asks for its lane
parameters (bias, multiplier, shift per lane; one parameter row, hwdesc.param_words), and
the sequencer waits for ``ack``. The row is fetched only while the lanes and the drain are
empty (``request``), so the lanes' parameters change only while no lane uses them: the
row the memory holds is the lanes' parameter registers."""

from __future__ import annotations

from amaranth import Module, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hannah_hw.accel.config import AccelConfig
from hannah_hw.accel.hwdesc import HwLayout

from .bus import region_port
from .memory import MemoryPlan


class ParamLoader(wiring.Component):
    def __init__(self, cfg: AccelConfig, plan: MemoryPlan):
        self.cfg, self.lay = cfg, HwLayout(cfg)
        lay = self.lay
        self.rows = plan.rows(lay.param_words, lay.param_stride, cfg.param_depth,
                              lay.region_bits, lay.paw, writable=True)
        lanes = lay.lanes
        super().__init__({
            "param": In(region_port(lay.region_bits)),
            "running": In(1),  # the accelerator owns the memory's read port
            "addr": In(lay.paw), "request": In(1), "ack": Out(1),
            "bias": Out(data.ArrayLayout(signed(cfg.acc_bits), lanes)),
            "m": Out(data.ArrayLayout(unsigned(lay.mult_w), lanes)),
            "sh": Out(data.ArrayLayout(unsigned(cfg.shift_bits), lanes)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, lay = self.cfg, self.lay
        m.submodules.rows = rows = self.rows
        wiring.connect(m, wiring.flipped(self.param), rows.bus)
        m.d.comb += [rows.running.eq(self.running), rows.raddr.eq(self.addr),
                     rows.load.eq(self.request & ~rows.loaded & ~rows.loading),
                     self.ack.eq(rows.loaded)]
        acc, mw = cfg.acc_bits, lay.mult_w
        for i in range(lay.lanes):
            base = i * lay.lane_param_w
            m.d.comb += [self.bias[i].eq(rows.row[base:base + acc]),
                         self.m[i].eq(rows.row[base + acc:base + acc + mw]),
                         self.sh[i].eq(rows.row[base + acc + mw:base + lay.lane_param_w])]
        return m


def lane_params_model(words: list[int], cfg: AccelConfig) -> list[tuple[int, int, int]]:
    """Golden model: (bias, multiplier, shift) of each lane from a row's bus words (the
    inverse of hwdesc.param_words' packing)."""
    lay = HwLayout(cfg)
    row = sum(w << (32 * k) for k, w in enumerate(words))
    out = []
    for i in range(lay.lanes):
        v = row >> (i * lay.lane_param_w)
        bias = v & ((1 << cfg.acc_bits) - 1)
        bias -= (bias >> (cfg.acc_bits - 1)) << cfg.acc_bits
        v >>= cfg.acc_bits
        out.append((bias, v & ((1 << lay.mult_w) - 1),
                    v >> lay.mult_w & ((1 << cfg.shift_bits) - 1)))
    return out
