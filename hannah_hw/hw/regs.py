"""The bus slave: decodes the host's Wishbone accesses into the control registers and one
region port per memory (hw/bus.py; the bus map is accel.hwdesc's). Every access is
acknowledged a cycle after its request; a read answers in that cycle, from a register or
the region's memory. The Program's memories (descriptors, parameters, weights) take
writes only while the accelerator is idle; the activations always (their owner muxes)."""

from __future__ import annotations

from amaranth import Const, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hannah_hw.accel.config import AccelConfig
from hannah_hw.accel.hwdesc import (
    CONST_BASE,
    CTRL_DMA,
    CTRL_IRQ_EN,
    CTRL_START,
    MAGIC,
    READABLE,
    REGIONS,
    REGS,
    STATUS_BUSY,
    STATUS_DONE,
    STATUS_ERROR,
    HwLayout,
)

from .bus import region_port, wishbone

LOCKED = ("desc", "param", "weight")  # written only while idle


class BusSlave(wiring.Component):
    def __init__(self, cfg: AccelConfig):
        self.lay = lay = HwLayout(cfg)
        super().__init__({
            "bus": In(wishbone(lay.bus_addr_w)),
            "running": In(1), "done": In(1), "error": In(1), "dma_cycles": In(lay.aw + 2),
            "irq": Out(1),
            "start": Out(1), "dma": Out(1),  # a start command, a cycle after its write
            "clear_done": Out(1),
            "n_layers": Out(range(cfg.desc_depth + 1)), "timeout": Out(32),
            "dma_src": Out(30), "dma_dst": Out(lay.aw), "dma_len": Out(32),
            **{r: Out(region_port(lay.region_bits)) for r in REGIONS[1:]},
        })

    def elaborate(self, platform):
        m = Module()
        lay, bus = self.lay, self.bus
        region, off = bus.adr[lay.region_bits:], bus.adr[:lay.region_bits]
        req = bus.cyc & bus.stb & ~bus.ack
        idle = ~self.running
        region_q, sub_q, reg_q = Signal(3), Signal(4), Signal(32)
        irq_en = Signal()
        m.d.sync += bus.ack.eq(req)
        m.d.comb += self.irq.eq(self.done & irq_en)

        readable = {"ctrl": irq_en * CTRL_IRQ_EN,
                    "status": (self.running * STATUS_BUSY | self.done * STATUS_DONE
                              | self.error * STATUS_ERROR),
                    "magic": Const(MAGIC, 32), "dma_cycles": self.dma_cycles}
        reg_values = {REGS[k]: readable[k] for k in READABLE}
        reg_values.update({CONST_BASE + i: Const(v, 32) for i, v in enumerate(lay.const_words())})
        with m.If(req & ~bus.we):
            m.d.sync += [region_q.eq(region), sub_q.eq(off[:4])]
            with m.Switch(off):
                for k, val in reg_values.items():
                    with m.Case(k):
                        m.d.sync += reg_q.eq(val)
                with m.Default():
                    m.d.sync += reg_q.eq(0)
        with m.Switch(region_q):
            with m.Case(REGIONS.index("regs")):
                m.d.comb += bus.dat_r.eq(reg_q)
            for name in REGIONS[1:]:
                with m.Case(REGIONS.index(name)):
                    m.d.comb += bus.dat_r.eq(getattr(self, name).rdata)

        wr = req & bus.we
        dat = bus.dat_w
        for name in REGIONS[1:]:
            port = getattr(self, name)
            we = wr & (region == REGIONS.index(name))
            m.d.comb += [port.addr.eq(off), port.sub.eq(sub_q), port.wdata.eq(dat),
                         port.we.eq(we & idle if name in LOCKED else we)]
        # a start command acts a cycle after its write: the bus address decode stays off
        # the path into the control state machine
        start_w, dma_w = Signal(), Signal()
        m.d.sync += [self.start.eq(start_w), self.dma.eq(dma_w)]
        with m.If(wr & (region == REGIONS.index("regs"))):
            with m.Switch(off):
                with m.Case(REGS["ctrl"]):
                    m.d.sync += irq_en.eq((dat & CTRL_IRQ_EN) != 0)
                    m.d.comb += [start_w.eq(idle & ((dat & CTRL_START) != 0)),
                                 dma_w.eq((dat & CTRL_DMA) != 0)]
                with m.Case(REGS["status"]):
                    m.d.comb += self.clear_done.eq((dat & STATUS_DONE) != 0)
                for name in ("n_layers", "timeout", "dma_src", "dma_dst", "dma_len"):
                    with m.Case(REGS[name]):
                        m.d.sync += getattr(self, name).eq(dat)
        return m


class BusSlaveModel:
    """Golden model: the register file and the region decode as the host sees them.
    ``write`` returns the region written (or "regs") and the command it gives; ``read``
    the value a read returns, given the status and each region's memory."""

    def __init__(self, cfg: AccelConfig):
        self.lay = HwLayout(cfg)
        self.irq_en = 0
        self.regs = {"n_layers": 0, "timeout": 0, "dma_src": 0, "dma_dst": 0, "dma_len": 0}
        widths = {"n_layers": (cfg.desc_depth).bit_length(), "timeout": 32, "dma_src": 30,
                  "dma_dst": self.lay.aw, "dma_len": 32}
        self.masks = {k: (1 << w) - 1 for k, w in widths.items()}

    def decode(self, adr: int) -> tuple[str, int]:
        region, bits = adr >> self.lay.region_bits, self.lay.region_bits
        return (REGIONS[region] if region < len(REGIONS) else ""), adr & ((1 << bits) - 1)

    def write(self, adr: int, dat: int, running: bool) -> tuple[str, dict[str, int]]:
        region, off = self.decode(adr)
        cmd = {"start": 0, "dma": 0, "clear_done": 0}
        if region == "regs":
            if off == REGS["ctrl"]:
                self.irq_en = int(dat & CTRL_IRQ_EN != 0)
                cmd.update(start=int(not running and dat & CTRL_START != 0),
                           dma=int(dat & CTRL_DMA != 0))
            elif off == REGS["status"]:
                cmd["clear_done"] = int(dat & STATUS_DONE != 0)
            for k in self.regs:
                if off == REGS[k]:
                    self.regs[k] = dat & self.masks[k]
        elif region in LOCKED and running:
            region = ""
        return region, cmd

    def read(self, adr: int, status: tuple[int, int, int], dma_cycles: int,
             memories: dict[str, dict[int, int]]) -> int:
        region, off = self.decode(adr)
        if region != "regs":
            return memories.get(region, {}).get(off, 0)
        running, done, error = status
        values = {REGS["ctrl"]: self.irq_en * CTRL_IRQ_EN,
                  REGS["status"]: (running * STATUS_BUSY | done * STATUS_DONE
                                    | error * STATUS_ERROR),
                  REGS["magic"]: MAGIC, REGS["dma_cycles"]: dma_cycles}
        values.update({CONST_BASE + i: v for i, v in enumerate(self.lay.const_words())})
        return values.get(off, 0)
