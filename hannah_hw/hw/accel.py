"""The accelerator: sequencer, memories, MAC lanes, the one-lane pooling/add/ReLU unit, the
drain (requantise and write back one output per cycle while the lanes compute the next
position), performance counters, and a Wishbone slave through which a host loads the
Program, starts it and reads results. Constants and the bus map come from accel.hwdesc.

Pipeline: the sequencer issues a step (cycle t), the memories answer (t+1), the lanes
accumulate; the last step of a position copies the accumulators into the drain's shadow
registers. A last step is held back only while the drain still needs the shadow registers.
"""

from __future__ import annotations

from amaranth import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.hdl import ResetInserter
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hannah_hw.accel.config import AccelConfig
from hannah_hw.accel.hwdesc import (
    CONST_BASE,
    CTRL_DMA,
    CTRL_IRQ_EN,
    CTRL_START,
    DMA_UNSIGNED,
    HW_COUNTERS,
    MAGIC,
    MODES,
    NF,
    READABLE,
    REGIONS,
    REGS,
    RQ_LATENCY,
    HwLayout,
)

from .mac import MacLanes
from .memory import SpramMemory
from .requant import Requantizer
from .seq import Sequencer

ONE_LANE_OPS = {"add", "avgpool", "global_avgpool", "maxpool", "relu"}


class Accelerator(wiring.Component):
    def __init__(self, cfg: AccelConfig):
        self.cfg, self.lay = cfg, HwLayout(cfg)
        super().__init__({
            "wb_adr": In(self.lay.bus_addr_w), "wb_dat_w": In(32), "wb_dat_r": Out(32),
            "wb_we": In(1), "wb_cyc": In(1), "wb_stb": In(1), "wb_ack": Out(1), "irq": Out(1),
            # input DMA: a read port of the host's memory (word address, data one cycle later)
            "dma_adr": Out(30), "dma_dat": In(32), "dma_busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, lay = self.cfg, self.lay
        lanes = lay.lanes
        units = set(cfg.units)
        has_mac, has_one = bool(units & {"conv", "linear"}), bool(units & ONE_LANE_OPS)
        has_max = bool(units & {"maxpool", "relu"})  # else no max mode: no compare, bypass
        ncnt = len(HW_COUNTERS)

        # on an FPGA, tell yosys a read of the address being written need not return the old
        # data (the bus discards a write's read data, a layer's input and output never
        # overlap); measured: yosys 0.70 still adds its read-first emulation on iCE40
        rw = {"no_rw_check": 1} if platform is not None else None

        def mem(name, shape, depth):
            m.submodules[name] = mm = Memory(shape=shape, depth=depth, init=[], attrs=rw)
            return mm

        # iCE40: block RAMs are 16 bits wide at most, so the wide, shallow parameter and
        # statistics rows become one 32-bit bus word per address (a row is loaded or stored
        # over several cycles), and the weights live in SPRAM; elsewhere (Verilog emission,
        # Verilator, ECP5) every memory is one row per address, read in one cycle
        ice40 = getattr(platform, "family", None) == "iCE40"
        desc_m = mem("desc_mem", unsigned(32), cfg.desc_depth * NF)
        if ice40:
            stats_m = mem("stats_mem", unsigned(32), cfg.desc_depth * lay.stats_stride)
            param_m = mem("param_mem", unsigned(32), cfg.param_depth * lay.param_stride)
            m.submodules.weight_mem = weight_m = SpramMemory(32 * lay.weight_words,
                                                             cfg.weight_depth, 32)
            param_r, param_w = param_m.read_port(), param_m.write_port()
        else:
            stats_m = mem("stats_mem", unsigned(32 * ncnt), cfg.desc_depth)
            param_m = mem("param_mem", unsigned(32 * lay.param_words), cfg.param_depth)
            weight_m = mem("weight_mem", unsigned(32 * lay.weight_words), cfg.weight_depth)
            param_r, param_w = param_m.read_port(), param_m.write_port(granularity=32)
        act_m = mem("act_mem", signed(lay.act_w), cfg.act_depth)
        desc_r, desc_w = desc_m.read_port(), desc_m.write_port()
        stats_r, stats_w = stats_m.read_port(), stats_m.write_port()
        weight_r, weight_w = weight_m.read_port(), weight_m.write_port(granularity=32)
        act_r, act_w = act_m.read_port(), act_m.write_port()

        abort = Signal()  # the watchdog: a Program that runs past the timeout is stopped
        seq = Sequencer(lay)
        m.submodules.seq = ResetInserter(abort)(seq)
        m.submodules.rq = rq = Requantizer(cfg)
        d = seq.desc
        desc_bits = Signal(32 * NF)
        m.d.comb += seq.desc.eq(desc_bits)
        mode_mac = d.mode == MODES["mac"]

        # -- control registers and counters
        running, done, error, irq_en = Signal(), Signal(), Signal(), Signal()
        # a Program has at most desc_depth layers; the DMA at most 2**(aw+1) + 1 cycles
        n_layers, timeout = Signal(range(cfg.desc_depth + 1)), Signal(32)
        counters = Array(Signal(32, name=f"cnt_{c}") for c in HW_COUNTERS)
        cnt = dict(zip(HW_COUNTERS, counters))
        layer_left = Signal(range(cfg.desc_depth + 1))
        desc_ptr = Signal(range(cfg.desc_depth * NF + 1))
        stats_ptr = Signal(range(cfg.desc_depth + 1))
        fidx = Signal(range(NF + 1))
        start, start_dma, dma_phase = Signal(), Signal(), Signal()
        dma_src, dma_dst, dma_len = Signal(30), Signal(lay.aw), Signal(32)
        dma_i, dma_cycles = Signal(lay.aw + 1), Signal(lay.aw + 2)
        dv, dsel, dptr = Signal(), Signal(2), Signal(lay.aw)

        # -- datapath: stage B registers
        vb, pad_b, first_b, last_b, selb_b = (Signal(name=n) for n in
                                              ("vb", "pad_b", "first_b", "last_b", "selb_b"))
        pos_b, lanes_b = Signal(lay.aw), Signal(range(lanes + 1))
        drain_left, drain_idx = Signal(range(lanes + 1)), Signal(range(lanes + 1))
        drain_addr = Signal(lay.aw)
        wq, wq_addr = Signal(), Signal(lay.aw)
        shadow = Array(Signal(signed(cfg.acc_bits), name=f"shadow{i}") for i in range(lanes))
        p_m = Array(Signal(lay.mult_w, name=f"pm{i}") for i in range(lanes))
        p_sh = Array(Signal(cfg.shift_bits, name=f"psh{i}") for i in range(lanes))
        bias = Signal(data.ArrayLayout(signed(cfg.acc_bits), lanes))

        in_flight_last = vb & last_b
        drain_ok = (drain_left <= 2) & (~in_flight_last | (seq.lanes == 1))
        ready = ~seq.last | drain_ok
        fire = seq.valid & ready
        p0_v, drained = Signal(), Signal()  # the drain's operand register; all writes done
        empty = ~vb & (drain_left == 0) & ~p0_v
        m.d.comb += seq.ready.eq(ready)
        m.d.sync += [vb.eq(fire), pad_b.eq(seq.pad), first_b.eq(seq.first),
                     last_b.eq(seq.last), selb_b.eq(seq.sel_b), pos_b.eq(seq.pos_addr),
                     lanes_b.eq(seq.lanes)]

        x = act_r.data
        # without zero points (cfg.zero_points; compile_program checks) they are constant 0
        zp_in = Mux(selb_b, d.zp_b, d.zp_a) if cfg.zero_points else 0
        a = Signal(signed(lay.act_w + 2))
        m.d.comb += a.eq(Mux(pad_b, 0, x - zp_in))
        capture = vb & last_b
        acc_out = Array(Signal(signed(cfg.acc_bits), name=f"acc_out{i}") for i in range(lanes))
        if has_mac:
            m.submodules.mac = mac = MacLanes(cfg)
            m.d.comb += [mac.act.eq(a), mac.weights.eq(weight_r.data[:lanes * cfg.weight_bits]),
                         mac.bias.eq(bias), mac.first.eq(first_b), mac.valid.eq(vb & mode_mac)]
            m.d.comb += [acc_out[i].eq(mac.acc_next[i]) for i in range(lanes)]
        if has_one:
            e = Signal(signed(cfg.acc_bits))
            e_next = Signal(signed(cfg.acc_bits))
            coef = Mux(selb_b, d.coef_b, d.coef_a)
            term = (a << coef) if cfg.mult_bits == 1 else a * coef
            v = Mux(pad_b, d.pad_val, x)
            with m.If((d.mode == MODES["sum"]) | (not has_max)):
                m.d.comb += e_next.eq(Mux(first_b, 0, e) + term)
            with m.Else():
                m.d.comb += e_next.eq(Mux(first_b | (v > e), v, e))
            with m.If(vb):
                m.d.sync += e.eq(e_next)
            with m.If(~mode_mac):
                m.d.comb += acc_out[0].eq(e_next)

        # -- drain: shadow registers -> requantiser -> activation memory
        with m.If(drain_left != 0):
            m.d.sync += [drain_left.eq(drain_left - 1), drain_idx.eq(drain_idx + 1),
                         drain_addr.eq(drain_addr + d.out_lane_stride)]
        with m.If(capture):
            m.d.sync += [shadow[i].eq(acc_out[i]) for i in range(lanes)]
            m.d.sync += [drain_left.eq(lanes_b), drain_idx.eq(0), drain_addr.eq(pos_b)]
        # the selected lane's operands are registered (a_*): the lane mux and the
        # requantiser's stages each get a cycle; the lane parameters are free again a cycle
        # after the drain's last select, so a lane block's timing is as without pipeline
        a_acc, a_m, a_sh = Signal.like(rq.acc), Signal.like(rq.m), Signal.like(rq.sh)
        m.d.sync += [a_acc.eq(shadow[drain_idx]),
                     a_m.eq(Mux(mode_mac, p_m[drain_idx], d.rq_m)),
                     a_sh.eq(Mux(mode_mac, p_sh[drain_idx], d.rq_sh))]
        m.d.comb += [rq.acc.eq(a_acc), rq.m.eq(a_m), rq.sh.eq(a_sh),
                     rq.zp.eq(d.zp_out if cfg.zero_points else 0), rq.lo.eq(d.out_lo),
                     rq.hi.eq(d.out_hi),
                     rq.bypass.eq(has_max & (d.mode == MODES["max"]))]
        if cfg.half_even:
            m.d.comb += rq.half_even.eq(d.half_even)
        # write valid and address along the pipeline: pipe[0] is the operand register's
        pipe_v = [p0_v] + [Signal(name=f"pipe_v{i}") for i in range(1, RQ_LATENCY)] + [wq]
        pipe_a = [Signal(lay.aw, name=f"pipe_a{i}") for i in range(RQ_LATENCY)] + [wq_addr]
        m.d.sync += [pipe_v[0].eq(drain_left != 0), pipe_a[0].eq(drain_addr)]
        m.d.sync += [pipe_v[i + 1].eq(pipe_v[i]) for i in range(RQ_LATENCY)]
        m.d.sync += [pipe_a[i + 1].eq(pipe_a[i]) for i in range(RQ_LATENCY)]
        m.d.comb += drained.eq(~Cat(*pipe_v[1:]).any())

        # -- lane-block parameters
        preq = Signal()
        m.d.sync += preq.eq(0)
        pw, ww = (lay.param_stride - 1).bit_length(), (lay.weight_stride - 1).bit_length()
        if ice40:  # the row's words one per cycle into prow, then the same preq cycle
            pk, loading = Signal(range(lay.param_words + 1)), Signal()
            prow = Signal(32 * lay.param_words)
            p_rd = Signal.like(param_r.addr)
            m.d.comb += p_rd.eq(Cat(pk[:pw], seq.p_addr) if pw else seq.p_addr)
            with m.If(seq.blk_req & empty & ~preq & ~loading):
                m.d.sync += [loading.eq(1), pk.eq(0)]
            with m.If(loading):
                m.d.sync += pk.eq(pk + 1)
                with m.If(pk != 0):
                    m.d.sync += prow.word_select((pk - 1)[:len(pk)], 32).eq(param_r.data)
                with m.If(pk == lay.param_words):
                    m.d.sync += [loading.eq(0), preq.eq(1)]
        else:
            with m.If(seq.blk_req & empty & ~preq):
                m.d.sync += preq.eq(1)
        with m.If(preq):
            m.d.comb += seq.blk_ack.eq(1)

        def lane_params(dom, row):
            for i in range(lanes):
                base = i * lay.lane_param_w
                dom += [bias[i].eq(row[base:base + cfg.acc_bits]),
                        p_m[i].eq(row[base + cfg.acc_bits:base + cfg.acc_bits + lay.mult_w]),
                        p_sh[i].eq(row[base + cfg.acc_bits + lay.mult_w:
                                       base + lay.lane_param_w])]

        if ice40:  # prow is the lane registers: it only changes while the lanes are empty
            lane_params(m.d.comb, prow)
        else:
            with m.If(preq):
                lane_params(m.d.sync, param_r.data)

        # -- layer control
        # registered: the 32-bit compare stays off the path into the state machines (the
        # watchdog stops a run one cycle after its limit)
        m.d.sync += abort.eq(running & (timeout != 0) & (cnt["cycles"] >= timeout))

        def watchdog():
            with m.If(abort):
                m.d.sync += [running.eq(0), done.eq(1), error.eq(1)]
                m.next = "IDLE"

        def begin():
            m.d.sync += [running.eq(1), done.eq(0), error.eq(0), desc_ptr.eq(0),
                         stats_ptr.eq(0), fidx.eq(0), layer_left.eq(n_layers)]
            # the cycle of the start command counts, so every layer's count includes
            # exactly one cycle outside its own states
            m.d.sync += [c.eq(int(n == "cycles")) for n, c in cnt.items()]
            m.next = "DESC"
            with m.If(n_layers == 0):
                m.d.sync += [running.eq(0), done.eq(1)]
                m.next = "IDLE"

        sw = (lay.stats_stride - 1).bit_length()
        # iCE40: SNAP stores one counter per cycle, the counters held until the last one,
        # so every counter (and the cycle count) is what one SNAP cycle gives elsewhere
        snap_k, snap_hold = Signal(range(ncnt)), Signal()
        dma_n = dma_len[:lay.aw + 1]
        m.d.comb += [self.dma_adr.eq(dma_src + (dma_i >> 2)), self.dma_busy.eq(dma_phase)]
        with m.FSM():
            with m.State("IDLE"):
                with m.If(start & start_dma):
                    m.d.sync += [running.eq(1), done.eq(0), error.eq(0), dma_i.eq(0),
                                 dma_cycles.eq(1)] + [c.eq(0) for c in counters]
                    m.next = "DMA"
                with m.Elif(start):
                    m.d.sync += dma_cycles.eq(0)
                    begin()
            with m.State("DMA"):  # one value per cycle; the memory answers a cycle later
                m.d.comb += dma_phase.eq(1)
                m.d.sync += [dma_cycles.eq(dma_cycles + 1), dv.eq(dma_i != dma_n),
                             dsel.eq(dma_i[:2]), dptr.eq(dma_dst + dma_i)]
                with m.If(dma_i != dma_n):
                    m.d.sync += dma_i.eq(dma_i + 1)
                with m.Elif(~dv):
                    begin()
            with m.State("DESC"):
                with m.If(fidx != 0):
                    m.d.sync += desc_bits.word_select((fidx - 1)[:len(fidx)], 32).eq(desc_r.data)
                with m.If(fidx == NF):
                    m.d.sync += [fidx.eq(0), desc_ptr.eq(desc_ptr + NF)]
                    m.next = "START"
                with m.Else():
                    m.d.sync += [fidx.eq(fidx + 1), cnt["desc_reads"].eq(cnt["desc_reads"] + 1)]
                watchdog()
            with m.State("START"):
                m.d.comb += seq.start.eq(1)
                m.next = "RUN"
                watchdog()
            with m.State("RUN"):
                with m.If(~seq.busy & empty & drained):
                    m.next = "SNAP"
                watchdog()
            with m.State("SNAP"):  # all counters of the layer in one row of the stats memory
                if ice40:
                    m.d.comb += [stats_w.addr.eq(Cat(snap_k, stats_ptr) if sw else stats_ptr),
                                 stats_w.data.eq(counters[snap_k]), stats_w.en.eq(1),
                                 snap_hold.eq(snap_k != ncnt - 1)]
                    m.d.sync += snap_k.eq(Mux(snap_hold, snap_k + 1, 0))
                else:
                    m.d.comb += [stats_w.addr.eq(stats_ptr), stats_w.data.eq(Cat(*counters)),
                                 stats_w.en.eq(1)]
                with m.If(~snap_hold):
                    m.d.sync += [stats_ptr.eq(stats_ptr + 1), layer_left.eq(layer_left - 1)]
                    m.next = "DESC"
                    with m.If(layer_left == 1):
                        m.d.sync += [running.eq(0), done.eq(1)]
                        m.next = "IDLE"
                    watchdog()

        step_mac = fire & mode_mac
        with m.If(running & ~dma_phase & ~snap_hold):
            m.d.sync += [cnt["cycles"].eq(cnt["cycles"] + 1),
                         cnt["busy"].eq(cnt["busy"] + fire),
                         cnt["macs"].eq(cnt["macs"] + Mux(step_mac, seq.lanes, 0)),
                         cnt["act_reads"].eq(cnt["act_reads"] + (fire & ~seq.pad)),
                         cnt["weight_reads"].eq(cnt["weight_reads"] + step_mac),
                         cnt["param_reads"].eq(cnt["param_reads"] + preq),
                         cnt["act_writes"].eq(cnt["act_writes"] + wq)]
        m.d.comb += self.irq.eq(done & irq_en)

        # -- bus
        region = self.wb_adr[lay.region_bits:]
        off = self.wb_adr[:lay.region_bits]
        req = self.wb_cyc & self.wb_stb & ~self.wb_ack
        idle = ~running
        region_q, sub_q, reg_q = Signal(3), Signal(4), Signal(32)
        m.d.sync += self.wb_ack.eq(req)

        def word(row, words, sub):
            return row[:32] if words == 1 else row.word_select(sub, 32)

        def word_en(words, sub):
            return Const(1, 1) if words == 1 else (Const(1, words) << sub)[:words]

        readable = {"ctrl": irq_en * CTRL_IRQ_EN, "status": Cat(running, done, error),
                    "magic": Const(MAGIC, 32), "dma_cycles": dma_cycles}
        reg_values = {REGS[k]: readable[k] for k in READABLE}
        reg_values.update({CONST_BASE + i: Const(v, 32) for i, v in enumerate(lay.const_words())})
        with m.If(req & ~self.wb_we):
            m.d.sync += [region_q.eq(region), sub_q.eq(off[:4])]
            with m.Switch(off):
                for k, val in reg_values.items():
                    with m.Case(k):
                        m.d.sync += reg_q.eq(val)
                with m.Default():
                    m.d.sync += reg_q.eq(0)
        m.d.comb += [stats_r.addr.eq(off if ice40 else off >> sw),
                     param_r.addr.eq(Mux(running, p_rd, off) if ice40 else
                                     Mux(running, seq.p_addr, off >> pw)),
                     weight_r.addr.eq(Mux(running, seq.w_addr, off >> ww)),
                     act_r.addr.eq(Mux(running, seq.act_addr, off)),
                     desc_r.addr.eq(Mux(running, desc_ptr + fidx, off))]
        outs = {"regs": reg_q, "desc": desc_r.data,
                "stats": stats_r.data if ice40 else stats_r.data.word_select(sub_q[:sw], 32),
                "param": param_r.data if ice40 else word(param_r.data, lay.param_words,
                                                         sub_q[:pw]),
                "weight": word(weight_r.data, lay.weight_words, sub_q[:ww]),
                "act": act_r.data.as_signed()}
        with m.Switch(region_q):
            for name, val in outs.items():
                with m.Case(REGIONS.index(name)):
                    m.d.comb += self.wb_dat_r.eq(val)

        wr = req & self.wb_we
        dat = self.wb_dat_w
        # a start command acts a cycle after its write: the bus address decode stays off
        # the path into the control state machine
        start_w, dma_w = Signal(), Signal()
        m.d.sync += [start.eq(start_w), start_dma.eq(dma_w)]
        with m.If(wr & (region == REGIONS.index("regs"))):
            with m.Switch(off):
                with m.Case(REGS["ctrl"]):
                    m.d.sync += irq_en.eq((dat & CTRL_IRQ_EN) != 0)
                    m.d.comb += [start_w.eq(idle & ((dat & CTRL_START) != 0)),
                                 dma_w.eq((dat & CTRL_DMA) != 0)]
                with m.Case(REGS["status"]):
                    with m.If(dat[1]):
                        m.d.sync += done.eq(0)
                with m.Case(REGS["n_layers"]):
                    m.d.sync += n_layers.eq(dat)
                with m.Case(REGS["timeout"]):
                    m.d.sync += timeout.eq(dat)
                with m.Case(REGS["dma_src"]):
                    m.d.sync += dma_src.eq(dat)
                with m.Case(REGS["dma_dst"]):
                    m.d.sync += dma_dst.eq(dat)
                with m.Case(REGS["dma_len"]):
                    m.d.sync += dma_len.eq(dat)
        m.d.comb += [desc_w.addr.eq(off), desc_w.data.eq(dat),
                     desc_w.en.eq(wr & idle & (region == REGIONS.index("desc"))),
                     param_w.addr.eq(off >> pw), param_w.data.eq(dat.replicate(lay.param_words)),
                     weight_w.addr.eq(off >> ww),
                     weight_w.data.eq(dat.replicate(lay.weight_words))]
        if ice40:
            m.d.comb += [param_w.addr.eq(off), param_w.data.eq(dat)]
        with m.If(wr & idle & (region == REGIONS.index("param"))):
            m.d.comb += param_w.en.eq(1 if ice40 else word_en(lay.param_words, off[:pw]))
        with m.If(wr & idle & (region == REGIONS.index("weight"))):
            m.d.comb += weight_w.en.eq(word_en(lay.weight_words, off[:ww]))
        byte = self.dma_dat.word_select(dsel, 8)
        dma_val = Mux(dma_len & DMA_UNSIGNED, byte.as_unsigned(), byte.as_signed())
        m.d.comb += [act_w.addr.eq(Mux(dv, dptr, Mux(running, wq_addr, off))),
                     act_w.data.eq(Mux(dv, dma_val, Mux(running, rq.y, dat))),
                     act_w.en.eq(Mux(running, wq | dv, wr & (region == REGIONS.index("act"))))]
        return m
