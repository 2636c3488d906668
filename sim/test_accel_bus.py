"""cocotb testbench of the whole accelerator through its Wishbone port: a driver loads the
Program and an input the way a host would, the interrupt ends the run, a monitor reads the
outputs and per-layer counters back, and a checker holds them to the behavioural model and
the closed-form schedule. HW_DIR names a generated hardware directory."""

import os
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, First, ReadOnly, RisingEdge

from hannah_hw.accel.bus import bus_words
from hannah_hw.accel.golden import run_program
from hannah_hw.accel.hwdesc import (
    COUNTERS,
    CTRL_IRQ_EN,
    CTRL_START,
    HW_COUNTERS,
    STATUS_DONE,
    STATUS_ERROR,
    HwLayout,
    layer_counts,
)
from hannah_hw.accel.schedule import layer_events
from hannah_hw.hw.hwdir import load_hwdir


class WishboneDriver:
    """Classic Wishbone master: one transaction at a time, waits for ack."""

    def __init__(self, dut):
        self.dut = dut

    async def _cycle(self, addr, data, we):
        d = self.dut
        d.wb_adr.value, d.wb_dat_w.value, d.wb_we.value = addr, data & 0xFFFF_FFFF, int(we)
        d.wb_cyc.value = d.wb_stb.value = 1
        while True:
            await RisingEdge(d.clk)
            await ReadOnly()
            if d.wb_ack.value:
                value = int(d.wb_dat_r.value)
                break
        await RisingEdge(d.clk)
        d.wb_cyc.value = d.wb_stb.value = 0
        return value

    async def write(self, addr, data):
        await self._cycle(addr, data, True)

    async def read(self, addr):
        return await self._cycle(addr, 0, False)


def _signed(v):
    return v - (1 << 32) if v >> 31 else v


@cocotb.test()
async def accelerator_runs_a_program_over_the_bus(dut):
    g, cfg, prog = load_hwdir(Path(os.environ["HW_DIR"]))
    lay = HwLayout(cfg)
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns", impl="gpi").start())
    dut.wb_cyc.value = dut.wb_stb.value = dut.wb_we.value = 0
    dut.rst.value = 1
    await ClockCycles(dut.clk, 2)
    dut.rst.value = 0
    bus = WishboneDriver(dut)
    for block in bus_words(prog, cfg):
        for addr, word in block.writes():
            await bus.write(addr, word)
    await bus.write(lay.reg("n_layers"), len(prog.descriptors))
    shapes = {k: t.shape for k, t in g.tensors.items()}
    rng = np.random.default_rng(0)
    lo, hi = g.tensors[prog.input].range
    x = rng.integers(lo, hi + 1, size=(2, *shapes[prog.input]))
    want, events = run_program(prog, cfg, x, shapes)
    for sample, expected in zip(x, want):
        base = lay.base("act") + prog.act_addr[prog.input]
        for i, v in enumerate(sample.reshape(-1)):
            await bus.write(base + i, int(v))
        await bus.write(lay.reg("ctrl"), CTRL_START | CTRL_IRQ_EN)
        await First(RisingEdge(dut.irq), ClockCycles(dut.clk, 2_000_000))
        assert dut.irq.value == 1, "no interrupt"
        status = await bus.read(lay.reg("status"))
        assert status & STATUS_DONE and not status & STATUS_ERROR, f"status {status:#x}"
        out = lay.base("act") + prog.act_addr[prog.output]
        got = [_signed(await bus.read(out + i)) for i in range(expected.size)]
        assert got == expected.reshape(-1).tolist()
        previous = [0] * len(HW_COUNTERS)  # the stats rows hold running totals
        for layer, d in enumerate(prog.descriptors):
            row = lay.base("stats") + layer * lay.stats_stride
            counters = [await bus.read(row + k) for k in range(len(HW_COUNTERS))]
            measured = layer_counts(a - b for a, b in zip(counters, previous))
            previous = counters
            model = layer_events(d, cfg)
            assert measured == {k: model[k] for k in COUNTERS}, prog.names[layer]
        await bus.write(lay.reg("status"), STATUS_DONE)  # clears done
        await ReadOnly()
        assert dut.irq.value == 0
        await RisingEdge(dut.clk)
    assert events
