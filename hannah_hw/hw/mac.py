"""MAC lanes: ``pe_cols`` accumulators sharing one (broadcast) activation, each with its own
weight. ``load`` sets the accumulators to the biases, ``valid`` adds one product each."""

from __future__ import annotations

from amaranth import Module, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hannah_hw.accel.config import AccelConfig


class MacLanes(wiring.Component):
    def __init__(self, cfg: AccelConfig):
        self.cfg = cfg
        lanes = cfg.pe_cols
        super().__init__({
            "act": In(signed(cfg.act_bits + 2)),  # x - zero point
            "weights": In(data.ArrayLayout(signed(cfg.weight_bits), lanes)),
            "bias": In(data.ArrayLayout(signed(cfg.acc_bits), lanes)),
            "load": In(1),
            "valid": In(1),
            "acc": Out(data.ArrayLayout(signed(cfg.acc_bits), lanes)),
        })

    def elaborate(self, platform):
        m = Module()
        for i in range(self.cfg.pe_cols):
            with m.If(self.load):
                m.d.sync += self.acc[i].eq(self.bias[i])
            with m.Elif(self.valid):
                m.d.sync += self.acc[i].eq(self.acc[i] + self.act * self.weights[i])
        return m


def mac_model(bias, acts, weights):
    """Golden model: bias + sum over steps of act * weight, per lane."""
    out = list(bias)
    for a, ws in zip(acts, weights):
        out = [o + a * w for o, w in zip(out, ws)]
    return out
