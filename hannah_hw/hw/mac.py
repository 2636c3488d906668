"""MAC lanes: ``pe_cols`` accumulators sharing one (broadcast) activation, each with its own
weight. A step with ``first`` starts from the bias, so a new output needs no load cycle;
``acc_next`` is what the accumulators take at the clock edge (the drain captures it)."""

from __future__ import annotations

from amaranth import Module, Mux, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hannah_hw.accel.config import AccelConfig


class MacLanes(wiring.Component):
    def __init__(self, cfg: AccelConfig):
        self.cfg = cfg
        lanes = cfg.pe_cols
        acc = data.ArrayLayout(signed(cfg.acc_bits), lanes)
        super().__init__({
            "act": In(signed(cfg.act_bits + 2)),  # x - zero point
            "weights": In(data.ArrayLayout(signed(cfg.weight_bits), lanes)),
            "bias": In(acc),
            "first": In(1),
            "valid": In(1),
            "acc": Out(acc),
            "acc_next": Out(acc),
        })

    def elaborate(self, platform):
        m = Module()
        for i in range(self.cfg.pe_cols):
            base = Mux(self.first, self.bias[i], self.acc[i])
            m.d.comb += self.acc_next[i].eq(Mux(self.valid, base + self.act * self.weights[i],
                                                self.acc[i]))
            m.d.sync += self.acc[i].eq(self.acc_next[i])
        return m


def mac_model(bias, acts, weights):
    """Golden model: bias + sum over steps of act * weight, per lane."""
    out = list(bias)
    for a, ws in zip(acts, weights):
        out = [o + a * w for o, w in zip(out, ws)]
    return out
