"""The input DMA: before a Program's first layer, ``len`` bytes (four per 32-bit word from
the host memory's word address ``src``) are written as activations from address ``dst``,
one per cycle; bit 31 of ``len`` (hwdesc.DMA_UNSIGNED) marks unsigned bytes. The host's
memory answers a cycle after the address, so each value is written a cycle after its
read; ``done`` once the last write is out. ``cycles`` counts the transfer for the host
(0 for a run without one)."""

from __future__ import annotations

from amaranth import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hannah_hw.accel.hwdesc import DMA_UNSIGNED, HwLayout

from .bus import DMA_PORT


class InputDma(wiring.Component):
    def __init__(self, lay: HwLayout):
        self.lay = lay
        super().__init__({
            "host": Out(DMA_PORT),
            "launch": In(1),  # a run starts: with ``enable`` a transfer, else none
            "enable": In(1),
            "run": In(1),  # the transfer's cycles (the controller waits for ``done``)
            "done": Out(1),
            "src": In(30), "dst": In(lay.aw), "len": In(32),
            "cycles": Out(lay.aw + 2),
            "we": Out(1), "addr": Out(lay.aw), "data": Out(signed(lay.act_w)),
        })

    def elaborate(self, platform):
        m = Module()
        lay = self.lay
        i, n = Signal(lay.aw + 1), self.len[:lay.aw + 1]  # the next value to read
        sel = Signal(2)  # the byte of the word that arrives
        m.d.comb += [self.host.adr.eq(self.src + (i >> 2)), self.host.busy.eq(self.run),
                     self.done.eq((i == n) & ~self.we)]
        with m.If(self.launch):
            with m.If(self.enable):
                m.d.sync += [i.eq(0), self.cycles.eq(1)]
            with m.Else():
                m.d.sync += self.cycles.eq(0)
        with m.If(self.run):
            m.d.sync += [self.cycles.eq(self.cycles + 1), self.we.eq(i != n),
                         sel.eq(i[:2]), self.addr.eq(self.dst + i)]
            with m.If(i != n):
                m.d.sync += i.eq(i + 1)
        byte = self.host.dat.word_select(sel, 8)
        m.d.comb += self.data.eq(Mux(self.len & DMA_UNSIGNED, byte.as_unsigned(),
                                     byte.as_signed()))
        return m


def dma_model(host: list[int], src: int, dst: int, length: int, lay: HwLayout
              ) -> tuple[list[tuple[int, int]], int]:
    """Golden model: the (address, value) activation writes of a transfer (values wrap to
    the activation width) and its ``cycles`` at the end (the launch cycle, each value's,
    one for the last write's latency and the last, ``done``, cycle)."""
    n, w = length & ((1 << (lay.aw + 1)) - 1), lay.act_w
    writes = []
    for k in range(n):
        byte = host[src + (k >> 2)] >> (8 * (k & 3)) & 0xFF
        if not length & DMA_UNSIGNED and byte >> 7:
            byte -= 256
        value = (byte + (1 << (w - 1))) % (1 << w) - (1 << (w - 1))
        writes.append(((dst + k) % (1 << lay.aw), value))
    return writes, 1 + n + (2 if n else 1)
