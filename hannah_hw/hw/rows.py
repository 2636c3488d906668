"""A memory of rows of ``words`` 32-bit words, seen by the bus one word at a time and by the
accelerator one row at a time, in the two geometries an FPGA family may need (chosen in
hw/memory.py's MemoryPlan): ``WideRows`` keep a row at one address (a row is read or
written in one cycle), ``WordRows`` keep one bus word per address (block RAMs at most 16
bits wide, the iCE40's: a row is loaded or stored over ``words`` cycles).

A row index's words are bus words ``row * stride + k``; ``stride`` is ``words`` rounded up
to a power of two, so the word index is the low address bits. Both share one signature:

- ``bus``: the region port (hw/bus.py) of the bus slave;
- ``running``: the accelerator owns the read port (it reads row ``raddr``), else the bus;
- ``load`` (while neither ``loading`` nor ``loaded``): fetch row ``raddr`` into ``row``,
  which holds it from the ``loaded`` cycle until the next load;
- ``store``: write ``wrow`` to row ``waddr``, held while ``storing`` (more words to go).
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .bus import region_port


def _signature(words: int, region_bits: int, row_aw: int) -> dict:
    return {"bus": In(region_port(region_bits)), "running": In(1), "raddr": In(row_aw),
            "load": In(1), "loading": Out(1), "loaded": Out(1), "row": Out(32 * words),
            "waddr": In(row_aw), "store": In(1), "wrow": In(32 * words), "storing": Out(1)}


class WideRows(wiring.Component):
    """One row per address of ``mem`` (32 * words bits wide; written by the bus only if
    ``writable``, a write port of 32-bit granularity). ``data`` is the read port's row,
    for a user that streams rows (the weights)."""

    def __init__(self, mem, words: int, stride: int, region_bits: int, row_aw: int,
                 writable: bool):
        self.mem, self.words, self.shift = mem, words, (stride - 1).bit_length()
        self._r = mem.read_port()
        self._w = mem.write_port(granularity=32) if writable else mem.write_port()
        super().__init__({**_signature(words, region_bits, row_aw), "data": Out(32 * words)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = self.mem
        r, w, bus, s = self._r, self._w, self.bus, self.shift
        sub = bus.sub[:s]
        m.d.comb += [r.addr.eq(Mux(self.running, self.raddr, bus.addr >> s)),
                     self.data.eq(r.data),
                     bus.rdata.eq(r.data[:32] if self.words == 1 else r.data.word_select(sub, 32)),
                     w.addr.eq(bus.addr >> s), w.data.eq(bus.wdata.replicate(self.words))]
        with m.If(bus.we):
            m.d.comb += w.en.eq(Const(1, 1) if self.words == 1 else
                                (Const(1, self.words) << bus.addr[:s])[:self.words])
        with m.If(self.store):
            m.d.comb += [w.addr.eq(self.waddr), w.data.eq(self.wrow), w.en.eq(-1)]
        m.d.sync += self.loaded.eq(self.load)  # the row's address was on the port: one cycle
        with m.If(self.loaded):
            m.d.sync += self.row.eq(r.data)
        return m


class WordRows(wiring.Component):
    """One bus word per address of ``mem`` (32 bits wide): a load reads the row's words one
    per cycle into ``row``, a store writes one per cycle."""

    def __init__(self, mem, words: int, stride: int, region_bits: int, row_aw: int):
        self.mem, self.words, self.shift = mem, words, (stride - 1).bit_length()
        self._r, self._w = mem.read_port(), mem.write_port()
        super().__init__(_signature(words, region_bits, row_aw))

    def _word_addr(self, k, row):
        return Cat(k[:self.shift], row) if self.shift else row

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = self.mem
        r, w, bus = self._r, self._w, self.bus
        k = Signal(range(self.words + 1))  # the load's next word (the data lags a cycle)
        m.d.comb += [r.addr.eq(Mux(self.running, self._word_addr(k, self.raddr), bus.addr)),
                     bus.rdata.eq(r.data), w.addr.eq(bus.addr), w.data.eq(bus.wdata),
                     w.en.eq(bus.we)]
        m.d.sync += self.loaded.eq(0)
        with m.If(self.load):
            m.d.sync += [self.loading.eq(1), k.eq(0)]
        with m.If(self.loading):
            m.d.sync += k.eq(k + 1)
            with m.If(k != 0):
                m.d.sync += self.row.word_select((k - 1)[:len(k)], 32).eq(r.data)
            with m.If(k == self.words):
                m.d.sync += [self.loading.eq(0), self.loaded.eq(1)]
        j = Signal(range(self.words))  # the store's word
        with m.If(self.store):
            m.d.comb += [w.addr.eq(self._word_addr(j, self.waddr)),
                         w.data.eq(self.wrow.word_select(j, 32)), w.en.eq(1),
                         self.storing.eq(j != self.words - 1)]
            m.d.sync += j.eq(Mux(self.storing, j + 1, 0))
        return m
