"""Board tops. Without a way in, yosys removes the whole accelerator, so ``AccelTop`` puts
the UART-to-Wishbone bridge on the board's FTDI UART: a PC loads the Program, writes the
input into the activation memory over the bus and starts the layers. The input DMA port is
tied off (dma_dat = 0): there is no host memory on the board to read from."""

from __future__ import annotations

from types import SimpleNamespace

from amaranth import ClockDomain, ClockSignal, Elaboratable, Instance, Module, Signal
from amaranth.lib import io
from amaranth.lib.cdc import ResetSynchronizer

from hannah_hw.accel.config import AccelConfig
from hannah_hw.hw.accel import Accelerator

from .uart import UartBridge

BAUD = 115_200


def pins(m: Module, platform, name: str, number: int = 0, **dirs: str) -> SimpleNamespace:
    """A resource's pins through I/O buffers (``dirs``: subsignal -> "i"/"o", or ``pin`` for
    a resource of one pin, an output by default): each comes back with the buffer's
    ``i``/``o``. Outputs not driven stay 0, which on an inverted pin (a flash's WP#, HOLD#)
    is the inactive level."""
    res = platform.request(name, number, dir="-")
    out = SimpleNamespace()
    for sub, d in (dirs or {"pin": "o"}).items():
        buf = io.Buffer(d, res if sub == "pin" else getattr(res, sub))
        m.submodules[f"{name}{number}_{sub}"] = buf
        setattr(out, sub, buf)
    return out.pin if "pin" in vars(out) else out


def ice40_pll(m: Module, platform, target_hz: float) -> None:
    """The sync domain from the 12 MHz pad through SB_PLL40_PAD (divider values as
    icepll computes them; the VCO runs at 533..1066 MHz), held in reset until LOCK.
    nextpnr derives the output's constraint from the pad's 12 MHz and the dividers."""
    divs = {24e6: (0, 63, 5), 30e6: (0, 79, 5), 36e6: (0, 47, 4), 18e6: (0, 47, 5),
            12e6 * 85 / 64: (0, 84, 6)}
    divr, divf, divq = divs[target_hz]
    clk = platform.request(platform.default_clk, dir="-")
    lock, pll_out = Signal(), Signal()
    m.domains.sync = ClockDomain("sync")
    m.d.comb += ClockSignal("sync").eq(pll_out)
    m.submodules.pll = Instance(
        "SB_PLL40_PAD", p_FEEDBACK_PATH="SIMPLE", p_DIVR=divr, p_DIVF=divf, p_DIVQ=divq,
        p_FILTER_RANGE=1, io_PACKAGEPIN=clk.io, i_RESETB=1, i_BYPASS=0,
        o_PLLOUTGLOBAL=pll_out, o_LOCK=lock)
    m.submodules.rst = ResetSynchronizer(~lock, domain="sync")


class AccelTop(Elaboratable):
    """The accelerator behind the UART bridge; ``irq`` on LED 0."""

    def __init__(self, cfg: AccelConfig, family: str, target_hz: float):
        self.cfg, self.family, self.target_hz = cfg, family, target_hz

    def elaborate(self, platform):
        m = Module()
        if self.family == "ice40":
            ice40_pll(m, platform, self.target_hz)
        m.submodules.accel = acc = Accelerator(self.cfg)
        m.submodules.bridge = br = UartBridge(round(self.target_hz / BAUD))
        uart = pins(m, platform, "uart", rx="i", tx="o")
        m.d.comb += [br.rx.eq(uart.rx.i), uart.tx.o.eq(br.tx),
                     acc.wb_adr.eq(br.wb_adr), acc.wb_dat_w.eq(br.wb_dat_w),
                     acc.wb_we.eq(br.wb_we), acc.wb_cyc.eq(br.wb_cyc), acc.wb_stb.eq(br.wb_stb),
                     br.wb_dat_r.eq(acc.wb_dat_r), br.wb_ack.eq(acc.wb_ack), acc.dma_dat.eq(0)]
        m.d.comb += pins(m, platform, "led", 0).o.eq(acc.irq)
        return m
