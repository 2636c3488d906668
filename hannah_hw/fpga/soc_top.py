"""The SoC on a board: PicoRV32 + accelerator with the firmware image as the RAM's initial
contents, and the simulation host port mapped onto the board: console writes go out on the
UART TX (through a FIFO, so the core is not held up by the baud rate; characters beyond
the FIFO's depth are dropped), ``exit`` lights LED 0 (LED 1 for a non-zero code), input
reads return 0 (no inputs: the firmware runs its start-up and exits)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from amaranth import ClockDomain, ClockSignal, Elaboratable, Module, ResetSignal, Signal
from amaranth.lib.fifo import SyncFIFOBuffered

from hannah_hw.accel.config import ConfigError
from hannah_hw.fw.build import soc_config
from hannah_hw.soc.soc import HOST, SoC, picorv32_source

from .boards import Board
from .top import BAUD, ice40_pll
from .uart import UartTx

CONSOLE_FIFO = 512


def soc_ram_blocks(ram_words: int, b: Board) -> int:
    """Block RAMs of the SoC's RAM (32 bits wide); an iCE40 has no room for it at all."""
    if b.family == "ice40":
        have_bits = b.resources["bram"] * b.bram_bits + b.resources["spram"] * 16384 * 16
        if ram_words * 32 > have_bits:
            from .fit import FitError

            raise FitError(f"does not fit {b.device} ({b.name}): the SoC's RAM needs "
                           f"{ram_words * 4 // 1024:,} KiB, the device has "
                           f"{have_bits // 8192:,} KiB of block RAM and SPRAM in all "
                           f"(+{100 * (ram_words * 32 - have_bits) / have_bits:.0f} %)")
    return math.ceil(ram_words * 32 / b.bram_bits)


class SocTop(Elaboratable):
    def __init__(self, soc: SoC, b: Board):
        self.soc, self.board, self.ram_words = soc, b, soc.ram_words

    @classmethod
    def from_fwdir(cls, fwdir: Path, b: Board) -> SocTop:
        cfg, ram = soc_config(fwdir)
        image = (Path(fwdir) / "hh_fw.bin").read_bytes()
        if len(image) > ram:
            raise ConfigError(f"{fwdir}/hh_fw.bin ({len(image):,} B) exceeds the RAM ({ram:,} B)")
        words = np.frombuffer(image + bytes(-len(image) % 4), "<u4")
        return cls(SoC(cfg, ram // 4, [int(w) for w in words]), b)

    def elaborate(self, platform):
        m = Module()
        if self.board.family == "ice40":
            ice40_pll(m, platform, self.board.target_hz)
        else:  # the core needs a reset: a power-on reset counter on the oscillator
            clk = platform.request(platform.default_clk)
            m.domains.sync = ClockDomain("sync")
            m.domains.por = ClockDomain("por", reset_less=True)
            por = Signal(8, init=255)
            m.d.comb += [ClockSignal("sync").eq(clk.i), ClockSignal("por").eq(clk.i),
                         ResetSignal("sync").eq(por != 0)]
            with m.If(por != 0):
                m.d.por += por.eq(por - 1)
        platform.add_file("picorv32.v", picorv32_source().read_text())
        m.submodules.soc = soc = self.soc
        m.submodules.fifo = fifo = SyncFIFOBuffered(width=8, depth=CONSOLE_FIFO)
        m.submodules.tx = tx = UartTx(round(self.board.target_hz / BAUD))
        uart = platform.request("uart", 0)
        w = soc.host_valid & soc.host_we
        m.d.comb += [fifo.w_data.eq(soc.host_wdata[:8]),
                     fifo.w_en.eq(w & (soc.host_adr == HOST["console"])),
                     tx.data.eq(fifo.r_data), tx.start.eq(fifo.r_rdy),
                     fifo.r_en.eq(tx.ready), uart.tx.o.eq(tx.tx), soc.load_en.eq(0),
                     soc.host_rdata.eq(0)]
        done, fail = Signal(), Signal()
        with m.If(w & (soc.host_adr == HOST["exit"])):
            m.d.sync += [done.eq(1), fail.eq(soc.host_wdata != 0)]
        m.d.comb += [platform.request("led", 0).o.eq(done),
                     platform.request("led", 1).o.eq(fail | soc.trap)]
        return m
