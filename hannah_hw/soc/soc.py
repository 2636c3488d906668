"""The system: a PicoRV32 core, RAM holding the firmware, a cycle timer, a simulation host
port (console, input stream, results, exit) and the generated accelerator as a bus
peripheral whose input DMA reads the RAM through a second port. The memory map here is the
single source of the firmware's ``hh_soc.h``."""

from __future__ import annotations

from pathlib import Path

from amaranth import ClockSignal, Instance, Module, Mux, ResetSignal, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hannah_hw.accel.config import AccelConfig
from hannah_hw.hw.accel import Accelerator

# byte addresses of the regions (address bits 31..28 select one)
MAP = {"ram": 0x0000_0000, "host": 0x1000_0000, "timer": 0x2000_0000, "accel": 0x4000_0000}
# host port registers (word offsets): what the simulation harness implements
HOST = {"console": 0, "input": 1, "output": 2, "exit": 3, "input_left": 4}
TIMER = {"lo": 0, "hi": 1}
CPU_PARAMS = {"ENABLE_MUL": 0, "ENABLE_FAST_MUL": 1, "ENABLE_DIV": 1, "BARREL_SHIFTER": 1,
              "COMPRESSED_ISA": 0, "ENABLE_COUNTERS": 1, "ENABLE_IRQ": 0, "CATCH_MISALIGN": 1,
              "CATCH_ILLINSN": 1}


def picorv32_source() -> Path:
    try:
        import pythondata_cpu_picorv32 as p
    except ImportError:
        raise RuntimeError("pythondata-cpu-picorv32 is missing: run 'make setup' (installs "
                           "hannah-hw[hw])") from None
    return Path(p.data_location) / "picorv32.v"


class SoC(wiring.Component):
    """``load_*`` fill the RAM while the core is held in reset (the harness's boot loader);
    ``host_*`` is the simulation host port, valid for one cycle per access."""

    def __init__(self, cfg: AccelConfig | None, ram_words: int, init: list[int] | None = None):
        self.cfg, self.ram_words, self.init = cfg, ram_words, init  # init: an FPGA's RAM
        aw = (ram_words - 1).bit_length()
        super().__init__({
            "load_en": In(1), "load_adr": In(aw), "load_dat": In(32),
            "host_valid": Out(1), "host_we": Out(1), "host_adr": Out(4), "host_wdata": Out(32),
            "host_rdata": In(32), "trap": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        aw = (self.ram_words - 1).bit_length()
        valid, instr, ready = Signal(), Signal(), Signal()
        addr, wdata, wstrb, rdata = Signal(32), Signal(32), Signal(4), Signal(32)
        m.submodules.cpu = Instance(
            "picorv32", **{f"p_{k}": v for k, v in CPU_PARAMS.items()},
            p_PROGADDR_RESET=MAP["ram"], p_STACKADDR=MAP["ram"] + 4 * self.ram_words,
            i_clk=ClockSignal(), i_resetn=~ResetSignal() & ~self.load_en, o_trap=self.trap,
            o_mem_valid=valid, o_mem_instr=instr, i_mem_ready=ready, o_mem_addr=addr,
            o_mem_wdata=wdata, o_mem_wstrb=wstrb, i_mem_rdata=rdata,
            i_pcpi_wr=0, i_pcpi_rd=0, i_pcpi_wait=0, i_pcpi_ready=0, i_irq=0)

        ram = Memory(shape=32, depth=self.ram_words, init=self.init or [])
        m.submodules.ram = ram
        cpu_r, dma_r, ram_w = ram.read_port(), ram.read_port(), ram.write_port(granularity=8)
        region = addr[28:]
        sel = {k: region == (v >> 28) for k, v in MAP.items()}
        req = valid & ~ready
        word = addr[2:]

        # RAM: one cycle; the boot loader owns the write port while the core is in reset
        m.d.comb += [cpu_r.addr.eq(word[:aw]),
                     # on an FPGA (init given) there is no loader: the core's read and write
                     # share one address, so the RAM maps onto one read/write block RAM port
                     ram_w.addr.eq(word[:aw] if self.init else
                                   Mux(self.load_en, self.load_adr, word[:aw])),
                     ram_w.data.eq(Mux(self.load_en, self.load_dat, wdata)),
                     ram_w.en.eq(Mux(self.load_en, 0b1111,
                                     Mux(req & sel["ram"], wstrb, 0)))]
        # timer: free-running 64-bit cycle counter
        cycles, timer_q, host_q = Signal(64), Signal(32), Signal(32)
        m.d.sync += cycles.eq(cycles + 1)
        m.d.sync += timer_q.eq(Mux(word[0], cycles[32:], cycles[:32]))
        # host port: the harness answers reads combinationally
        m.d.comb += [self.host_valid.eq(req & sel["host"]), self.host_we.eq(wstrb != 0),
                     self.host_adr.eq(word[:4]), self.host_wdata.eq(wdata)]
        m.d.sync += host_q.eq(self.host_rdata)

        which, ready_s = Signal(2), Signal()
        m.d.sync += [ready_s.eq(req & (sel["ram"] | sel["host"] | sel["timer"])),
                     which.eq(Mux(sel["ram"], 0, Mux(sel["host"], 1, 2)))]
        m.d.comb += [ready.eq(ready_s),
                     rdata.eq(Mux(which == 0, cpu_r.data, Mux(which == 1, host_q, timer_q)))]
        if self.cfg is not None:
            m.submodules.accel = acc = Accelerator(self.cfg)
            m.d.comb += [acc.wb_adr.eq(word), acc.wb_dat_w.eq(wdata), acc.wb_we.eq(wstrb != 0),
                         acc.wb_cyc.eq(valid & sel["accel"]), acc.wb_stb.eq(valid & sel["accel"]),
                         dma_r.addr.eq(acc.dma_adr), acc.dma_dat.eq(dma_r.data)]
            with m.If(acc.wb_ack):
                m.d.comb += [ready.eq(1), rdata.eq(acc.wb_dat_r)]
        return m
