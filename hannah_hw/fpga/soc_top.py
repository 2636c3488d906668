"""The SoC on a board: the core + accelerator, and the simulation host port mapped onto the
board: console writes go out on the UART TX (through a FIFO, so the core is not held up by
the baud rate; characters beyond the FIFO's depth are dropped), ``exit`` lights LED 0
(LED 1 for a non-zero code), input reads return 0 (no inputs: the firmware runs its
start-up and exits). The firmware image is the RAM's initial contents on the ECP5; on the
iCE40 the RAM is SPRAM, which a bitstream cannot initialise, so a boot loader copies the
image from the SPI flash (at ``FLASH_OFFSET``, after the bitstream) before the core starts.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from amaranth import ClockDomain, ClockSignal, Elaboratable, Module, ResetSignal, Signal
from amaranth.lib.fifo import SyncFIFOBuffered

from hannah_hw.accel.config import ConfigError
from hannah_hw.fw.build import soc_config
from hannah_hw.hw.memory import spram_blocks
from hannah_hw.soc.cores import cpu_sources
from hannah_hw.soc.soc import BOARD_RAM, HOST, SoC

from .boards import Board
from .flash import FlashLoader
from .top import BAUD, ice40_pll, pins
from .uart import UartTx

CONSOLE_FIFO = {"ecp5": 512, "ice40": 16}  # the iCE40's block RAMs are the accelerator's
FLASH_OFFSET = 0x100000  # 1 MiB, after the bitstream: `iceprog -o 1M soc_flash.bin`


def soc_ram_blocks(ram_words: int, b: Board) -> dict[str, int]:
    """Memory blocks of the SoC's RAM (32 bits wide): block RAMs, or the iCE40's SPRAMs.
    The core's register file and the console FIFO (1-4 block RAMs) are left to nextpnr: the
    accelerator's estimate already runs 1-2 blocks above what yosys maps (fit.memory_blocks),
    and the precheck must not refuse a design that fits."""
    if b.family == "ice40":
        return {"bram": 0, "spram": spram_blocks(32, ram_words)}
    return {"bram": math.ceil(ram_words * 32 / b.bram_bits), "spram": 0}


class SocTop(Elaboratable):
    def __init__(self, soc: SoC, b: Board, image_words: int = 0):
        self.soc, self.board, self.image_words = soc, b, image_words

    @classmethod
    def from_fwdir(cls, fwdir: Path, b: Board) -> SocTop:
        cfg, ram, isa, cpu = soc_config(fwdir)
        image = (Path(fwdir) / "hh_fw.bin").read_bytes()
        if len(image) > ram:
            raise ConfigError(f"{fwdir}/hh_fw.bin ({len(image):,} B) exceeds the RAM ({ram:,} B)")
        if b.family == "ice40":
            return cls(SoC(cfg, ram // 4, isa=isa, ram="spram", cpu=cpu), b,
                       -(-len(image) // 4))
        words = np.frombuffer(image + bytes(-len(image) % 4), "<u4")
        return cls(SoC(cfg, ram // 4, [int(w) for w in words], isa, BOARD_RAM[b.family], cpu),
                   b)

    def elaborate(self, platform):
        m = Module()
        soc = self.soc
        if self.board.family == "ice40":
            ice40_pll(m, platform, self.board.target_hz)
            # the flash wakes from deep power-down within 3 us (tRES1); wait 10 us
            wake = math.ceil(10e-6 * self.board.target_hz)
            m.submodules.boot = boot = FlashLoader(self.image_words, FLASH_OFFSET, wake)
            flash = pins(m, platform, "spi_flash_1x", cs="o", clk="o", copi="o", cipo="i",
                         wp="o", hold="o")
            m.d.comb += [flash.cs.o.eq(boot.cs), flash.clk.o.eq(boot.sclk),
                         flash.copi.o.eq(boot.copi), boot.cipo.eq(flash.cipo.i),
                         soc.load_en.eq(boot.load_en), soc.load_we.eq(boot.load_we),
                         soc.load_adr.eq(boot.load_adr), soc.load_dat.eq(boot.load_dat)]
        else:  # the core needs a reset: a power-on reset counter on the oscillator
            clk = pins(m, platform, platform.default_clk, pin="i")
            m.domains.sync = ClockDomain("sync")
            m.domains.por = ClockDomain("por", reset_less=True)
            por = Signal(8, init=255)
            m.d.comb += [ClockSignal("sync").eq(clk.i), ClockSignal("por").eq(clk.i),
                         ResetSignal("sync").eq(por != 0)]
            with m.If(por != 0):
                m.d.por += por.eq(por - 1)
        for f in cpu_sources(soc.cpu):
            platform.add_file(f.name, f.read_text())
        m.submodules.soc = soc
        m.submodules.fifo = fifo = SyncFIFOBuffered(width=8,
                                                    depth=CONSOLE_FIFO[self.board.family])
        m.submodules.tx = tx = UartTx(round(self.board.target_hz / BAUD))
        uart = pins(m, platform, "uart", tx="o")
        w = soc.host_valid & soc.host_we
        m.d.comb += [fifo.w_data.eq(soc.host_wdata[:8]),
                     fifo.w_en.eq(w & (soc.host_adr == HOST["console"])),
                     tx.data.eq(fifo.r_data), tx.start.eq(fifo.r_rdy),
                     fifo.r_en.eq(tx.ready), uart.tx.o.eq(tx.tx), soc.host_rdata.eq(0)]
        done, fail = Signal(), Signal()
        with m.If(w & (soc.host_adr == HOST["exit"])):
            m.d.sync += [done.eq(1), fail.eq(soc.host_wdata != 0)]
        m.d.comb += [pins(m, platform, "led", 0).o.eq(done),
                     pins(m, platform, "led", 1).o.eq(fail | soc.trap)]
        return m
