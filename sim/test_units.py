"""cocotb tests of the requantiser and the MAC lanes against their golden models. The
configuration and seed come from the environment (set by tests/test_hw_units.py)."""

import json
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

from hannah_hw.accel.config import AccelConfig
from hannah_hw.hw.mac import mac_model
from hannah_hw.hw.requant import LATENCY, requant_model

CFG = AccelConfig(**{**json.loads(os.environ["HW_CFG"]),
                     "units": tuple(json.loads(os.environ["HW_CFG"])["units"])})
RNG = random.Random(int(os.environ.get("HW_SEED", "0")))


def signed_range(bits):
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


async def start(dut):
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns", impl="gpi").start())
    dut.rst.value = 0
    await RisingEdge(dut.clk)


@cocotb.test()
async def requantizer_matches_model(dut):
    if not hasattr(dut, "sh"):
        return
    await start(dut)
    shifts_only = CFG.mult_bits == 1
    amin, amax = signed_range(CFG.acc_bits - 2)
    for i in range(400):
        acc = RNG.randint(amin, amax) if i % 4 else RNG.randint(-64, 64)
        sh = RNG.randint(1, min(20, (1 << CFG.shift_bits) - 1))
        m = RNG.randint(0, 3) if shifts_only else RNG.randint(0, (1 << CFG.mult_bits) - 1)
        zp = RNG.randint(-20, 20)
        lo, hi = sorted((RNG.randint(-128, 0), RNG.randint(0, 255)))
        half_even = CFG.half_even and RNG.random() < 0.5
        bypass = i % 7 == 3
        dut.bypass.value = int(bypass)
        dut.acc.value, dut.m.value, dut.sh.value = acc, m, sh
        dut.zp.value, dut.lo.value, dut.hi.value = zp, lo, hi
        if CFG.half_even:
            dut.half_even.value = int(half_even)
        for _ in range(LATENCY):  # the inputs held through the pipeline
            await RisingEdge(dut.clk)
        await ReadOnly()
        want = requant_model(acc, m, sh, zp, lo, hi, half_even, shifts_only, bypass)
        assert dut.y.value.to_signed() == want, (acc, m, sh, zp, lo, hi, half_even)
        await RisingEdge(dut.clk)


@cocotb.test()
async def mac_lanes_match_model(dut):
    if not hasattr(dut, "first"):
        return
    await start(dut)
    lanes = CFG.pe_cols
    wlo, whi = signed_range(CFG.weight_bits)
    for trial in range(20):
        bias = [RNG.randint(-1000, 1000) for _ in range(lanes)]
        steps = RNG.randint(1, 40)
        acts = [RNG.randint(-256, 255) for _ in range(steps)]
        weights = [[RNG.randint(wlo, whi) for _ in range(lanes)] for _ in range(steps)]
        dut.bias.value = _pack(bias, CFG.acc_bits)
        for i, (a, ws) in enumerate(zip(acts, weights)):
            dut.act.value = a
            dut.weights.value = _pack(ws, CFG.weight_bits)
            dut.valid.value, dut.first.value = 1, int(i == 0)
            await RisingEdge(dut.clk)
            if RNG.random() < 0.2:  # an idle cycle holds the accumulators
                dut.valid.value = 0
                await RisingEdge(dut.clk)
        dut.valid.value = 0
        await RisingEdge(dut.clk)
        await ReadOnly()
        got = _unpack(int(dut.acc.value), CFG.acc_bits, lanes)
        assert got == mac_model(bias, acts, weights), trial
        await RisingEdge(dut.clk)


def _pack(values, bits):
    word = 0
    for i, v in enumerate(values):
        word |= (v & ((1 << bits) - 1)) << (i * bits)
    return word


def _unpack(word, bits, n):
    out = []
    for i in range(n):
        v = (word >> (i * bits)) & ((1 << bits) - 1)
        out.append(v - (1 << bits) if v >> (bits - 1) else v)
    return out
