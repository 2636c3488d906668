"""The system: a RISC-V core (PicoRV32, or the bit-serial SERV where logic is scarce), RAM
holding the firmware, a cycle timer, a simulation host port (console, input stream,
results, exit) and the generated accelerator as a bus peripheral whose input DMA reads the
RAM. The memory map here is the single source of the firmware's ``hh_soc.h``."""

from __future__ import annotations

from amaranth import ClockSignal, Instance, Module, Mux, ResetSignal, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hannah_hw.accel.bus import c_header
from hannah_hw.accel.config import AccelConfig
from hannah_hw.hw.accel import Accelerator
from hannah_hw.hw.memory import SpramMemory

from .cores import CPU_ISAS, ISA_PARAMS

# byte addresses of the regions (address bits 31..28 select one)
MAP = {"ram": 0x0000_0000, "host": 0x1000_0000, "timer": 0x2000_0000, "accel": 0x4000_0000}
# host port registers (word offsets): what the simulation harness implements
HOST = {"console": 0, "input": 1, "output": 2, "exit": 3, "input_left": 4}
TIMER = {"cycles": 0}  # 32 bits (wraps after 179 s at 24 MHz: firmware takes differences)
RAM_KINDS = ("dual", "single", "spram")
BOARD_RAM = {"ecp5": "single", "ice40": "spram"}  # what an FPGA family builds


def soc_header() -> str:
    """hh_soc.h: where the accelerator and the simulation devices sit on the SoC's bus, for
    the firmware and the SoC's Verilator harness."""
    items: list[tuple[str, object]] = [(f"HH_{k.upper()}_BASE", f"0x{v:08x}")
                                       for k, v in MAP.items()]
    items += [(f"HH_HOST_{k.upper()}", v) for k, v in HOST.items()]
    items += [(f"HH_TIMER_{k.upper()}", v) for k, v in TIMER.items()]
    items += [("HH_HOST_EXIT_ADDR", f"0x{MAP['host'] + 4 * HOST['exit']:08x}")]
    return c_header("HH_SOC_H", "hannah_hw/soc/soc.py", items)


class SoC(wiring.Component):
    """``load_*`` fill the RAM while the core is held in reset (the harness's or the flash's
    boot loader; a word on each ``load_we``); ``host_*`` is the simulation host port, valid
    for one cycle per access. ``ram``: "dual" gives the input DMA a read port of its own;
    "single" (an FPGA's block RAM: one read and one write port, no duplicated blocks) and
    "spram" (the iCE40's single-port SPRAM) let the DMA take the read port while it runs,
    and the core waits."""

    def __init__(self, cfg: AccelConfig | None, ram_words: int, init: list[int] | None = None,
                 isa: str = "rv32im", ram: str = "dual", cpu: str = "picorv32"):
        assert ram in RAM_KINDS and isa in CPU_ISAS[cpu]
        self.cfg, self.ram_words, self.init = cfg, ram_words, init  # init: an FPGA's RAM
        self.isa, self.ram, self.cpu = isa, ram, cpu
        aw = (ram_words - 1).bit_length()
        super().__init__({
            "load_en": In(1), "load_we": In(1), "load_adr": In(aw), "load_dat": In(32),
            "host_valid": Out(1), "host_we": Out(1), "host_adr": Out(4), "host_wdata": Out(32),
            "host_rdata": In(32), "trap": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        aw = (self.ram_words - 1).bit_length()
        valid, ready = Signal(), Signal()
        addr, wdata, wstrb, rdata = Signal(32), Signal(32), Signal(4), Signal(32)
        reset = ResetSignal() | self.load_en
        if self.cpu == "picorv32":
            m.submodules.cpu = Instance(
                "picorv32", **{f"p_{k}": v for k, v in ISA_PARAMS[self.isa].items()},
                p_PROGADDR_RESET=MAP["ram"], p_STACKADDR=MAP["ram"] + 4 * self.ram_words,
                i_clk=ClockSignal(), i_resetn=~reset, o_trap=self.trap,
                o_mem_valid=valid, i_mem_ready=ready, o_mem_addr=addr,
                o_mem_wdata=wdata, o_mem_wstrb=wstrb, i_mem_rdata=rdata,
                i_pcpi_wr=0, i_pcpi_rd=0, i_pcpi_wait=0, i_pcpi_ready=0, i_irq=0)
        else:  # SERV's instruction and data buses onto the one bus: never both active
            icyc, iadr, dcyc, dadr, dwe, dsel = (Signal(), Signal(32), Signal(), Signal(32),
                                                 Signal(), Signal(4))
            m.submodules.cpu = Instance(
                "serv_rf_top", p_RESET_PC=MAP["ram"], p_WITH_CSR=0,
                i_clk=ClockSignal(), i_i_rst=reset, i_i_timer_irq=0,
                o_o_ibus_adr=iadr, o_o_ibus_cyc=icyc, i_i_ibus_rdt=rdata,
                i_i_ibus_ack=ready & icyc, o_o_dbus_adr=dadr, o_o_dbus_dat=wdata,
                o_o_dbus_sel=dsel, o_o_dbus_we=dwe, o_o_dbus_cyc=dcyc, i_i_dbus_rdt=rdata,
                i_i_dbus_ack=ready & ~icyc, i_i_ext_rd=0, i_i_ext_ready=0)
            m.d.comb += [valid.eq(icyc | dcyc), addr.eq(Mux(icyc, iadr, dadr)),
                         wstrb.eq(Mux(dwe & ~icyc, dsel, 0))]

        region = addr[28:]
        sel = {k: region == (v >> 28) for k, v in MAP.items()}
        req = valid & ~ready
        word = addr[2:]
        dma_adr, dma_data, dma_busy = Signal(aw), Signal(32), Signal()
        if self.ram == "spram":
            m.submodules.ram = ram = SpramMemory(32, self.ram_words, 8)
            cpu_r, ram_w = ram.read_port(), ram.write_port()
        else:
            m.submodules.ram = ram = Memory(shape=32, depth=self.ram_words,
                                            init=self.init or [])
            cpu_r, ram_w = ram.read_port(), ram.write_port(granularity=8)
        if self.ram == "dual":
            dma_r = ram.read_port()
            m.d.comb += [cpu_r.addr.eq(word[:aw]), dma_r.addr.eq(dma_adr),
                         dma_data.eq(dma_r.data)]
        else:
            m.d.comb += [cpu_r.addr.eq(Mux(self.load_en, self.load_adr,
                                           Mux(dma_busy, dma_adr, word[:aw]))),
                         dma_data.eq(cpu_r.data)]
        ram_ok = sel["ram"] & ~dma_busy  # the core's RAM access waits out the input DMA

        # RAM: one cycle; the boot loader owns the write port while the core is in reset
        m.d.comb += [
            ram_w.addr.eq(Mux(self.load_en, self.load_adr, word[:aw])),
            ram_w.data.eq(Mux(self.load_en, self.load_dat, wdata)),
            ram_w.en.eq(Mux(self.load_en, Mux(self.load_we, 0b1111, 0),
                            Mux(req & ram_ok, wstrb, 0)))]
        # timer: a free-running cycle counter, read as it is when the read completes
        cycles, host_q = Signal(32), Signal(32)
        m.d.sync += cycles.eq(cycles + 1)
        # host port: the harness answers reads combinationally
        m.d.comb += [self.host_valid.eq(req & sel["host"]), self.host_we.eq(wstrb != 0),
                     self.host_adr.eq(word[:4]), self.host_wdata.eq(wdata)]
        m.d.sync += host_q.eq(self.host_rdata)

        which, ready_s = Signal(2), Signal()
        m.d.sync += [ready_s.eq(req & (ram_ok | sel["host"] | sel["timer"])),
                     which.eq(Mux(sel["ram"], 0, Mux(sel["host"], 1, 2)))]
        m.d.comb += [ready.eq(ready_s),
                     rdata.eq(Mux(which == 0, cpu_r.data, Mux(which == 1, host_q, cycles)))]
        if self.cfg is not None:
            m.submodules.accel = acc = Accelerator(self.cfg)
            # the request and its address registered on the way in (a cycle more per access;
            # the core holds the write data until ready): the core's bus outputs and the
            # accelerator's register decode were one 42 ns path on the iCE40
            cyc = Signal()
            m.d.sync += [cyc.eq(valid & sel["accel"] & ~ready), acc.wb_adr.eq(word),
                         acc.wb_we.eq(wstrb != 0)]
            m.d.comb += [acc.wb_cyc.eq(cyc), acc.wb_stb.eq(cyc), acc.wb_dat_w.eq(wdata),
                         dma_adr.eq(acc.dma_adr), acc.dma_dat.eq(dma_data),
                         dma_busy.eq(acc.dma_busy if self.ram != "dual" else 0)]
            with m.If(acc.wb_ack):
                m.d.comb += [ready.eq(1), rdata.eq(acc.wb_dat_r)]
        return m
