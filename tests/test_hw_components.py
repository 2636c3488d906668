"""The accelerator's components (hw/regs.py, dma.py, control.py, counters.py, params.py,
drain.py) in Amaranth's simulator against their golden models, the memory rows in both
geometries a family may need (hw/memory.py's MemoryPlan). Fast: no Verilator."""

import dataclasses
import random

import pytest
from amaranth.sim import Simulator

from hannah_hw.accel.config import AccelConfig
from hannah_hw.accel.hwdesc import DMA_UNSIGNED, HW_COUNTERS, NF, REGIONS, HwLayout
from hannah_hw.hw.control import Controller, control_model
from hannah_hw.hw.counters import EVENTS, Counters, CountersModel
from hannah_hw.hw.dma import InputDma, dma_model
from hannah_hw.hw.drain import Drain, drain_model
from hannah_hw.hw.memory import Ice40Sim, MemoryPlan
from hannah_hw.hw.params import ParamLoader, lane_params_model
from hannah_hw.hw.regs import BusSlave, BusSlaveModel

CFG = AccelConfig(pe_rows=1, pe_cols=4, act_bits=8, weight_bits=8, acc_bits=20, mult_bits=16,
                  shift_bits=6, act_depth=64, weight_depth=64, param_depth=8, desc_depth=4,
                  units=("conv", "maxpool"), half_even=False, zero_points=True)
PLANS = {"wide-rows": None, "word-rows": Ice40Sim()}


def run(dut, bench):
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


def test_bus_slave_decodes_like_its_model():
    lay, rng = HwLayout(CFG), random.Random(1)
    dut, model = BusSlave(CFG), BusSlaveModel(CFG)
    mems = {r: {} for r in REGIONS[1:]}
    ports = {r: getattr(dut, r) for r in REGIONS[1:]}

    async def bench(ctx):
        for i in range(600):
            region = rng.randrange(len(REGIONS) + 1)
            off = rng.choice([rng.randrange(32), rng.randrange(1 << lay.region_bits)])
            adr, dat, we = (region << lay.region_bits) | off, rng.getrandbits(32), rng.random() < .5
            status = (rng.random() < .3, rng.random() < .5, rng.random() < .5)
            dma_cycles = rng.randrange(1 << (lay.aw + 2))
            for s, v in zip((dut.running, dut.done, dut.error), status):
                ctx.set(s, v)
            ctx.set(dut.dma_cycles, dma_cycles)
            for s, v in ((dut.bus.adr, adr), (dut.bus.dat_w, dat), (dut.bus.we, we),
                         (dut.bus.cyc, 1), (dut.bus.stb, 1)):
                ctx.set(s, v)
            if we:  # the request cycle: the region written, the status clear
                written, cmd = model.write(adr, dat, status[0])
                got = [r for r, p in ports.items() if ctx.get(p.we)]
                assert got == ([written] if written not in ("", "regs") else []), (i, adr)
                assert ctx.get(dut.clear_done) == cmd["clear_done"]
                for r in got:
                    mems[r][ctx.get(ports[r].addr)] = ctx.get(ports[r].wdata)
            addrs = {r: ctx.get(p.addr) for r, p in ports.items()}
            await ctx.tick()
            for r, p in ports.items():  # each memory answers a cycle after the address
                ctx.set(p.rdata, mems[r].get(addrs[r], 0))
            assert ctx.get(dut.bus.ack)
            if we:
                assert (ctx.get(dut.start), ctx.get(dut.dma)) == (cmd["start"], cmd["dma"])
                for k, v in model.regs.items():
                    assert ctx.get(getattr(dut, k)) == v, k
            else:
                assert ctx.get(dut.bus.dat_r) == model.read(adr, status, dma_cycles, mems), i
            assert ctx.get(dut.irq) == (status[1] and model.irq_en)
            ctx.set(dut.bus.cyc, 0)
            await ctx.tick()

    run(dut, bench)


@pytest.mark.parametrize("length", [0, 1, 7, 22 | DMA_UNSIGNED])
def test_input_dma_matches_model(length):
    lay, rng = HwLayout(CFG), random.Random(length)
    dut = InputDma(lay)
    host = [rng.getrandbits(32) for _ in range(64)]
    src, dst = 5, (1 << lay.aw) - 3  # the destination wraps
    want, cycles = dma_model(host, src, dst, length, lay)

    async def bench(ctx):
        ctx.set(dut.launch, 1)  # a run without a transfer: no cycles
        await ctx.tick()
        assert ctx.get(dut.cycles) == 0
        ctx.set(dut.src, src), ctx.set(dut.dst, dst), ctx.set(dut.len, length)
        ctx.set(dut.enable, 1)
        await ctx.tick()
        ctx.set(dut.launch, 0), ctx.set(dut.run, 1)
        writes = []
        for _ in range(200):
            assert ctx.get(dut.host.busy)
            if ctx.get(dut.we):
                writes.append((ctx.get(dut.addr), ctx.get(dut.data)))
            if ctx.get(dut.done):
                break
            adr = ctx.get(dut.host.adr)
            await ctx.tick()
            ctx.set(dut.host.dat, host[adr])
        await ctx.tick()
        assert writes == want and ctx.get(dut.cycles) == cycles

    run(dut, bench)


@pytest.mark.parametrize("runs,hold,dma,timeout", [
    ([3, 0, 9], 0, None, 0), ([5, 2], 7, 4, 0), ([], 0, None, 0), ([], 0, 3, 0),
    ([400], 0, None, 30)])
def test_controller_matches_model(runs, hold, dma, timeout):
    dut = Controller(CFG)
    want = control_model(runs, hold, dma)
    desc_mem = [(k << 16) | j for k in range(CFG.desc_depth) for j in range(NF)]

    async def bench(ctx):
        ctx.set(dut.n_layers, len(runs)), ctx.set(dut.timeout, timeout)
        ctx.set(dut.start, 1), ctx.set(dut.dma, dma is not None), ctx.set(dut.quiet, 1)
        got = {"desc": [], "starts": [], "done": []}
        busy = store = dma_left = 0
        cycle = desc_addr = 0
        while cycle < 600 and not ctx.get(dut.done):
            if ctx.get(dut.desc_read) and ctx.get(dut.desc_addr) % NF == 0:
                got["desc"].append(cycle)
            if ctx.get(dut.seq_start):
                got["starts"].append(cycle)
                seen = ctx.get(dut.desc)
                layer = len(got["starts"]) - 1
                assert [(seen >> (32 * j)) & 0xFFFF_FFFF for j in range(NF)] == \
                    desc_mem[layer * NF:(layer + 1) * NF]
                busy = runs[layer]
            if ctx.get(dut.launch) and dma is not None:
                dma_left = dma
            ctx.set(dut.dma_done, ctx.get(dut.dma_run) and dma_left == 0)
            ctx.set(dut.storing, ctx.get(dut.snap) and store < hold)
            store = store + 1 if ctx.get(dut.snap) else 0
            desc_addr = ctx.get(dut.desc_addr)
            dma_left -= bool(ctx.get(dut.dma_run) and dma_left)
            await ctx.tick()
            ctx.set(dut.start, 0)
            cycle += 1
            ctx.set(dut.cycles, cycle)  # the counters' cycles
            ctx.set(dut.desc_data, desc_mem[desc_addr % len(desc_mem)])
            ctx.set(dut.seq_busy, busy > 0)
            busy = max(busy - 1, 0)
        got["done"].append(cycle)
        assert not ctx.get(dut.running)
        if timeout:  # stopped a cycle after the registered compare saw the limit
            assert ctx.get(dut.error) and cycle == timeout + 2
        else:
            assert not ctx.get(dut.error) and got == want

    run(dut, bench)


@pytest.mark.parametrize("plan", list(PLANS))
def test_counters_count_and_store_rows_like_the_model(plan):
    lay, rng = HwLayout(CFG), random.Random(3)
    dut, model = Counters(CFG, MemoryPlan(PLANS[plan])), CountersModel()
    stored = {}

    async def bench(ctx):
        for row in range(CFG.desc_depth):
            for _ in range(rng.randrange(1, 30)):
                ins = {"count": rng.random() < .9, "macs": rng.randrange(lay.lanes + 1),
                       "desc_read": rng.random() < .2,
                       "clear": rng.random() < .02, "restart": rng.random() < .02,
                       **{e: rng.random() < .5 for e in EVENTS}}
                for k, v in ins.items():
                    ctx.set(getattr(dut, k), v)
                model.step(**ins)
                await ctx.tick()
            for k in ("clear", "restart", "desc_read"):
                ctx.set(getattr(dut, k), 0)
            ctx.set(dut.snap, 1), ctx.set(dut.row, row)
            stored[row], hold = model.row(), 0
            while ctx.get(dut.storing):  # the counters wait for the row's last word
                model.step(count=1, storing=1)
                hold += 1
                await ctx.tick()
            assert hold == (len(HW_COUNTERS) - 1 if plan == "word-rows" else 0)
            model.step(**{e: ctx.get(getattr(dut, e)) for e in ("count", "macs", *EVENTS)})
            await ctx.tick()
            ctx.set(dut.snap, 0)
            assert ctx.get(dut.cycles) == model.cnt["cycles"]
        ctx.set(dut.count, 0)
        for row, want in stored.items():
            for k, v in enumerate(want):
                ctx.set(dut.stats.addr, row * lay.stats_stride + k), ctx.set(dut.stats.sub, k)
                await ctx.tick()
                assert ctx.get(dut.stats.rdata) == v, (row, HW_COUNTERS[k])

    run(dut, bench)


@pytest.mark.parametrize("plan", list(PLANS))
@pytest.mark.parametrize("shifts", [False, True])
def test_param_loader_gives_each_lane_its_parameters(plan, shifts):
    cfg = dataclasses.replace(CFG, mult_bits=1) if shifts else CFG
    lay, rng = HwLayout(cfg), random.Random(4)
    dut = ParamLoader(cfg, MemoryPlan(PLANS[plan]))
    rows = [[rng.getrandbits(32) for _ in range(lay.param_words)]
            for _ in range(cfg.param_depth)]
    latency = lay.param_words + 2 if plan == "word-rows" else 1

    async def bench(ctx):
        for r, words in enumerate(rows):  # loaded over the bus, read back
            for k, w in enumerate(words):
                adr = r * lay.param_stride + k
                ctx.set(dut.param.addr, adr), ctx.set(dut.param.wdata, w)
                ctx.set(dut.param.we, 1)
                await ctx.tick()
                ctx.set(dut.param.we, 0), ctx.set(dut.param.sub, k)
                await ctx.tick()
                assert ctx.get(dut.param.rdata) == w
        ctx.set(dut.running, 1)
        for r in rng.sample(range(cfg.param_depth), cfg.param_depth):
            ctx.set(dut.addr, r), ctx.set(dut.request, 1)
            for t in range(latency + 1):
                assert ctx.get(dut.ack) == (t == latency), t
                await ctx.tick()
            ctx.set(dut.request, 0)
            ctx.set(dut.addr, rng.randrange(cfg.param_depth))  # held: the block's parameters
            await ctx.tick()
            got = [(ctx.get(dut.bias[i]), ctx.get(dut.m[i]), ctx.get(dut.sh[i]))
                   for i in range(lay.lanes)]
            assert got == lane_params_model(rows[r], cfg), r

    run(dut, bench)


@pytest.mark.parametrize("mac", [True, False])
def test_drain_writes_each_lane_requantised(mac):
    lay, rng = HwLayout(CFG), random.Random(5)
    dut = Drain(CFG)

    async def bench(ctx):
        for trial in range(8):
            acc = [rng.randrange(-(1 << 19), 1 << 19) for _ in range(lay.lanes)]
            n = rng.randrange(1, lay.lanes + 1) if mac else 1
            params = [(rng.getrandbits(16), rng.randrange(1, 40)) for _ in range(lay.lanes)]
            layer = (rng.getrandbits(16), rng.randrange(1, 40))
            zp, lo, hi = rng.randrange(-20, 20), -128, 127
            pos, stride = rng.randrange(64), rng.randrange(1, 30)
            bypass = not mac and trial % 2
            want = drain_model(acc[:n], params[:n] if mac else [layer], pos, stride, lay.aw,
                               (zp, lo, hi, False, bypass))
            for i in range(lay.lanes):
                ctx.set(dut.acc[i], acc[i])
                ctx.set(dut.lane_m[i], params[i][0]), ctx.set(dut.lane_sh[i], params[i][1])
            for s, v in ((dut.m, layer[0]), (dut.sh, layer[1]), (dut.zp, zp), (dut.lo, lo),
                         (dut.hi, hi), (dut.bypass, bypass), (dut.mac, mac),
                         (dut.lanes, n), (dut.pos, pos), (dut.stride, stride),
                         (dut.capture, 1)):
                ctx.set(s, v)
            await ctx.tick()
            ctx.set(dut.capture, 0)
            writes = []
            for t in range(1, 2 + lay.lanes + 8):
                if ctx.get(dut.we):
                    writes.append((t, ctx.get(dut.addr), ctx.get(dut.y)))
                await ctx.tick()
            assert writes == want and ctx.get(dut.drained) and ctx.get(dut.left) == 0

    run(dut, bench)
