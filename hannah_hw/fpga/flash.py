"""Boot from SPI flash: the iCE40UP5K's SPRAM cannot be initialised by the bitstream, so
:class:`FlashLoader` copies the firmware (``iceprog -o 1M image.bin``) from the board's
flash into RAM while it holds the CPU in reset. :class:`SpiFlashModel` is its golden model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from amaranth import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

if TYPE_CHECKING:
    from amaranth.sim import SimulatorContext

CMD_WAKE, CMD_READ = 0xAB, 0x03  # release from deep power-down; read (<= 50 MHz)


class FlashLoader(wiring.Component):
    """Copies ``words`` little-endian 32-bit words from flash byte ``offset`` to RAM.

    The iCE40 leaves the flash in deep power-down after configuration, hence 0xAB first, then
    ``wake_cycles`` (>= 3 us tRES1 x f_sys) with CS high, then one 0x03 READ streaming all words.
    SPI mode 0 at f_sys/2 (<= 50 MHz up to 100 MHz): copi changes with sclk's fall, and cipo
    is sampled at the end of sclk's high phase, two sys cycles after the fall that made the
    flash drive it: the round trip (pad + tCLQV) gets ~2 sys periods. 64 cycles per word.
    ``cs`` is active high (the board top inverts it).
    ``load_en`` (= ~done) holds the CPU in reset and gives the loader the RAM write port;
    ``load_we`` strobes for one cycle per word with ``load_adr``/``load_dat`` valid.
    """

    def __init__(self, words: int, offset: int, wake_cycles: int = 100):
        assert words >= 1 and 0 <= offset and offset + 4 * words <= 1 << 24 and wake_cycles >= 1
        self.words, self.offset, self.wake_cycles = words, offset, wake_cycles
        super().__init__({
            "cs": Out(1), "sclk": Out(1), "copi": Out(1), "cipo": In(1),
            "load_en": Out(1), "load_adr": Out(max(1, (words - 1).bit_length())),
            "load_dat": Out(32), "load_we": Out(1), "done": Out(1),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        sr = Signal(32, init=CMD_WAKE << 24)  # out at the top (copi), in at the bottom (cipo)
        bit = Signal(5, init=7)  # bits left - 1; wraps 0 -> 31 for the next 32-bit frame
        wait = Signal(range(self.wake_cycles), init=self.wake_cycles - 1)
        last = self.sclk & (bit == 0)  # this cycle ends a frame's last bit
        m.d.comb += [self.copi.eq(sr[31]), self.load_en.eq(~self.done),
                     self.load_dat.eq(Cat(sr[24:32], sr[16:24], sr[8:16], sr[0:8]))]
        m.d.sync += self.load_we.eq(0)

        def shift() -> None:
            m.d.sync += self.sclk.eq(~self.sclk)
            with m.If(self.sclk):  # end of the high phase: sample, and next bit on the fall
                m.d.sync += [sr.eq(Cat(self.cipo, sr[:31])), bit.eq(bit - 1)]

        with m.FSM():
            with m.State("START"):
                m.d.sync += self.cs.eq(1)
                m.next = "WAKE"
            with m.State("WAKE"):
                shift()
                with m.If(last):
                    m.d.sync += self.cs.eq(0)
                    m.next = "WAIT"
            with m.State("WAIT"):
                m.d.sync += wait.eq(wait - 1)
                with m.If(wait == 0):
                    m.d.sync += [self.cs.eq(1), sr.eq(CMD_READ << 24 | self.offset)]
                    m.next = "COMMAND"
            with m.State("COMMAND"):
                shift()
                with m.If(last):
                    m.next = "DATA"
            with m.State("DATA"):
                shift()
                with m.If(self.load_we):
                    m.d.sync += self.load_adr.eq(self.load_adr + 1)
                with m.If(last):
                    m.d.sync += self.load_we.eq(1)
                    with m.If(self.load_adr == self.words - 1):
                        m.d.sync += self.cs.eq(0)
                        m.next = "END"
            with m.State("END"):
                m.d.sync += self.done.eq(1)
        return m


class SpiFlashModel:
    """A SPI NOR flash in mode 0 that starts in deep power-down: it answers only 0xAB, then,
    ``tres_cycles`` later, 0x03 READ (24-bit address, data MSB first, wrapping at the end).
    So a loader that skips the wake-up, or reads too soon, reads zeros."""

    def __init__(self, data: bytes, tres_cycles: int = 0):
        self.data, self.tres_cycles = bytes(data), tres_cycles
        self.woke: bool = False
        self.commands: list[int] = []  # each transaction's first byte, in order
        self.bytes_read = 0

    async def run(self, ctx: SimulatorContext, cs: Signal, sclk: Signal, copi: Signal,
                  cipo: Signal) -> None:
        """Watch the pins after every clock tick (add as a background testbench)."""
        cycle, woke_at, cs_at, prev_cs, prev_sclk = 0, None, 0, 0, 0
        rx, adr, k, reading = 0, 0, 0, False  # rx: bits received in this transaction; k: bit
        while True:
            await ctx.tick()
            cycle += 1
            s_cs, s_sclk = ctx.get(cs), ctx.get(sclk)
            if s_cs and not prev_cs:
                assert not s_sclk, "mode 0: sclk must idle low when CS is asserted"
                rx, k, reading, cs_at = 0, 0, False, cycle
            elif prev_cs and not s_cs:
                if k == 8 and rx == CMD_WAKE:
                    self.woke, woke_at = True, cycle
                ctx.set(cipo, 0)
            elif s_cs and s_sclk and not prev_sclk and not reading:  # rising: sample copi
                rx, k = rx << 1 | ctx.get(copi), k + 1
                if k == 8:
                    self.commands.append(rx)
                awake = woke_at is not None and cs_at - woke_at >= self.tres_cycles
                if k == 32 and rx >> 24 == CMD_READ and awake:
                    adr, k, reading = rx & 0xFFFFFF, 0, True
            elif s_cs and prev_sclk and not s_sclk and reading:  # falling: drive the next bit
                ctx.set(cipo, self.data[adr % len(self.data)] >> (7 - k) & 1)
                k += 1
                if k == 8:
                    adr, k, self.bytes_read = adr + 1, 0, self.bytes_read + 1
            prev_cs, prev_sclk = s_cs, s_sclk
