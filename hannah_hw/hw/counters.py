"""Performance counters (hwdesc.HW_COUNTERS) and the statistics memory they are stored in:
at the end of each layer (``snap``) all counters go into stats row ``row``, as running
totals, and the host reads them over the bus. A row stored over several cycles (WordRows)
holds the counters until its last word, so every count is what a one-cycle store gives."""

from __future__ import annotations

from amaranth import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hannah_hw.accel.config import AccelConfig
from hannah_hw.accel.hwdesc import HW_COUNTERS, HwLayout

from .bus import region_port
from .memory import MemoryPlan

EVENTS = ("fire", "act_read", "weight_read", "param_read", "act_write")


class Counters(wiring.Component):
    def __init__(self, cfg: AccelConfig, plan: MemoryPlan):
        lay = HwLayout(cfg)
        row = range(cfg.desc_depth + 1)
        self.rows = plan.rows(len(HW_COUNTERS), lay.stats_stride, cfg.desc_depth,
                              lay.region_bits, len(Signal(row)), writable=False)
        super().__init__({
            "stats": In(region_port(lay.region_bits)),
            "clear": In(1),  # all counters to 0
            "restart": In(1),  # to 0, cycles to 1 (the start command's cycle counts)
            "count": In(1),  # count this cycle's events
            **{e: In(1) for e in EVENTS},
            "macs": In(range(lay.lanes + 1)),
            "desc_read": In(1),  # counted whether or not ``count``
            "snap": In(1), "row": In(row), "storing": Out(1),
            "cycles": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.rows = rows = self.rows
        cnt = {c: Signal(32, name=f"cnt_{c}") for c in HW_COUNTERS}
        wiring.connect(m, wiring.flipped(self.stats), rows.bus)
        m.d.comb += [self.cycles.eq(cnt["cycles"]), rows.store.eq(self.snap),
                     rows.waddr.eq(self.row), rows.wrow.eq(Cat(*cnt.values())),
                     self.storing.eq(rows.storing)]
        with m.If(self.clear):
            m.d.sync += [c.eq(0) for c in cnt.values()]
        with m.If(self.restart):
            m.d.sync += [c.eq(int(n == "cycles")) for n, c in cnt.items()]
        with m.If(self.desc_read):
            m.d.sync += cnt["desc_reads"].eq(cnt["desc_reads"] + 1)
        with m.If(self.count & ~rows.storing):
            m.d.sync += [cnt["cycles"].eq(cnt["cycles"] + 1),
                         cnt["busy"].eq(cnt["busy"] + self.fire),
                         cnt["macs"].eq(cnt["macs"] + self.macs),
                         cnt["act_reads"].eq(cnt["act_reads"] + self.act_read),
                         cnt["weight_reads"].eq(cnt["weight_reads"] + self.weight_read),
                         cnt["param_reads"].eq(cnt["param_reads"] + self.param_read),
                         cnt["act_writes"].eq(cnt["act_writes"] + self.act_write)]
        return m


class CountersModel:
    """Golden model: the counters, one ``step`` per cycle with that cycle's inputs."""

    def __init__(self):
        self.cnt = dict.fromkeys(HW_COUNTERS, 0)

    def step(self, clear=0, restart=0, count=0, desc_read=0, macs=0, storing=0, **events):
        nxt = dict(self.cnt)
        if clear or restart:
            nxt = {c: int(restart and c == "cycles") for c in HW_COUNTERS}
        if desc_read:
            nxt["desc_reads"] = self.cnt["desc_reads"] + 1
        if count and not storing:
            inc = {"cycles": 1, "busy": events.get("fire", 0), "macs": macs,
                   **{c: events.get(e, 0) for c, e in (("act_reads", "act_read"),
                                                       ("weight_reads", "weight_read"),
                                                       ("param_reads", "param_read"),
                                                       ("act_writes", "act_write"))}}
            nxt.update({c: (self.cnt[c] + v) % (1 << 32) for c, v in inc.items()})
        self.cnt = nxt

    def row(self) -> list[int]:
        return [self.cnt[c] for c in HW_COUNTERS]
