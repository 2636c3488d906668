"""The accelerator top: wires the components and keeps the datapath between them. The
bus slave (hw/regs.py) takes the host's Wishbone accesses, the controller (hw/control.py)
runs the Program layer by layer after the input DMA (hw/dma.py), the sequencer (hw/seq.py)
issues one step per cycle, the parameter loader (hw/params.py) fetches each lane block's
parameters, the MAC lanes (hw/mac.py) and the one-lane pooling/add/ReLU unit compute, the
drain (hw/drain.py) requantises and writes back one output per cycle while the lanes
compute the next position, and the counters (hw/counters.py) store each layer's counts.
Every memory is built as the FPGA family needs (hw/memory.py's MemoryPlan). Constants and
the bus map come from accel.hwdesc.

Pipeline: the sequencer issues a step (cycle t), the memories answer (t+1), the lanes
accumulate; the last step of a position copies the accumulators into the drain's shadow
registers. A last step is held back only while the drain still needs the shadow registers.
"""

from __future__ import annotations

from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.hdl import ResetInserter
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hannah_hw.accel.config import AccelConfig
from hannah_hw.accel.hwdesc import MODES, NF, HwLayout

from .control import Controller
from .counters import Counters
from .dma import InputDma
from .drain import Drain
from .mac import MacLanes
from .memory import MemoryPlan
from .params import ParamLoader
from .regs import BusSlave
from .seq import Sequencer

ONE_LANE_OPS = {"add", "avgpool", "global_avgpool", "maxpool", "relu"}
WB_IN, WB_OUT = ("adr", "dat_w", "we", "cyc", "stb"), ("dat_r", "ack")


class Accelerator(wiring.Component):
    """The top. Its ports stay flat (``wb_*``, ``dma_*``, ``irq``): they are the generated
    Verilog's module ports, which the C++ harnesses, the SoC and the board tops drive; the
    bus slave takes them as a Wishbone interface (hw/bus.py)."""

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
        plan = MemoryPlan(platform)

        m.submodules.regs = regs = BusSlave(cfg)
        m.submodules.ctrl = ctrl = Controller(cfg)
        m.submodules.dma = dma = InputDma(lay)
        m.submodules.counters = cnt = Counters(cfg, plan)
        m.submodules.params = params = ParamLoader(cfg, plan)
        m.submodules.weights = weights = plan.weights(lay.weight_words, lay.weight_stride,
                                                      cfg.weight_depth, lay.region_bits, lay.waw)
        m.submodules.drain = drain = Drain(cfg)
        seq = Sequencer(lay)
        # the watchdog: a Program that runs past the timeout is stopped
        m.submodules.seq = ResetInserter(ctrl.abort)(seq)
        m.submodules.desc_mem = desc_m = plan.memory(unsigned(32), cfg.desc_depth * NF)
        m.submodules.act_mem = act_m = plan.memory(signed(lay.act_w), cfg.act_depth)
        desc_r, desc_w = desc_m.read_port(), desc_m.write_port()
        act_r, act_w = act_m.read_port(), act_m.write_port()
        running = ctrl.running
        d = seq.desc
        mode_mac = d.mode == MODES["mac"]

        # -- the ports, the bus slave and the control path
        m.d.comb += [getattr(regs.bus, n).eq(getattr(self, f"wb_{n}")) for n in WB_IN]
        m.d.comb += [getattr(self, f"wb_{n}").eq(getattr(regs.bus, n)) for n in WB_OUT]
        m.d.comb += [self.irq.eq(regs.irq), self.dma_adr.eq(dma.host.adr),
                     dma.host.dat.eq(self.dma_dat), self.dma_busy.eq(dma.host.busy)]
        m.d.comb += [regs.running.eq(running), regs.done.eq(ctrl.done),
                     regs.error.eq(ctrl.error), regs.dma_cycles.eq(dma.cycles),
                     ctrl.start.eq(regs.start), ctrl.dma.eq(regs.dma),
                     ctrl.n_layers.eq(regs.n_layers), ctrl.timeout.eq(regs.timeout),
                     ctrl.clear_done.eq(regs.clear_done), ctrl.cycles.eq(cnt.cycles),
                     dma.launch.eq(ctrl.launch), dma.enable.eq(regs.dma),
                     dma.run.eq(ctrl.dma_run), ctrl.dma_done.eq(dma.done),
                     dma.src.eq(regs.dma_src), dma.dst.eq(regs.dma_dst), dma.len.eq(regs.dma_len),
                     cnt.clear.eq(ctrl.clear), cnt.restart.eq(ctrl.restart),
                     cnt.count.eq(ctrl.count), cnt.desc_read.eq(ctrl.desc_read),
                     cnt.snap.eq(ctrl.snap), cnt.row.eq(ctrl.stats_row),
                     ctrl.storing.eq(cnt.storing),
                     seq.desc.eq(ctrl.desc), seq.start.eq(ctrl.seq_start),
                     ctrl.seq_busy.eq(seq.busy)]
        wiring.connect(m, regs.stats, cnt.stats)
        wiring.connect(m, regs.param, params.param)
        wiring.connect(m, regs.weight, weights.bus)
        m.d.comb += [desc_r.addr.eq(Mux(running, ctrl.desc_addr, regs.desc.addr)),
                     ctrl.desc_data.eq(desc_r.data), regs.desc.rdata.eq(desc_r.data),
                     desc_w.addr.eq(regs.desc.addr), desc_w.data.eq(regs.desc.wdata),
                     desc_w.en.eq(regs.desc.we)]

        # -- datapath: stage B registers
        vb, pad_b, first_b, last_b, selb_b = (Signal(name=n) for n in
                                              ("vb", "pad_b", "first_b", "last_b", "selb_b"))
        pos_b, lanes_b = Signal(lay.aw), Signal(range(lanes + 1))
        in_flight_last = vb & last_b
        drain_ok = (drain.left <= 2) & (~in_flight_last | (seq.lanes == 1))
        ready = ~seq.last | drain_ok
        fire = seq.valid & ready
        empty = ~vb & (drain.left == 0) & ~drain.pending
        m.d.comb += [seq.ready.eq(ready), ctrl.quiet.eq(empty & drain.drained)]
        m.d.sync += [vb.eq(fire), pad_b.eq(seq.pad), first_b.eq(seq.first),
                     last_b.eq(seq.last), selb_b.eq(seq.sel_b), pos_b.eq(seq.pos_addr),
                     lanes_b.eq(seq.lanes)]

        # -- the lane block's parameters and weights
        m.d.comb += [params.running.eq(running), params.addr.eq(seq.p_addr),
                     params.request.eq(seq.blk_req & empty), seq.blk_ack.eq(params.ack),
                     weights.running.eq(running), weights.raddr.eq(seq.w_addr)]

        x = act_r.data
        # without zero points (cfg.zero_points; compile_program checks) they are constant 0
        zp_in = Mux(selb_b, d.zp_b, d.zp_a) if cfg.zero_points else 0
        a = Signal(signed(lay.act_w + 2))
        m.d.comb += a.eq(Mux(pad_b, 0, x - zp_in))
        acc_out = Signal(data.ArrayLayout(signed(cfg.acc_bits), lanes))
        if has_mac:
            m.submodules.mac = mac = MacLanes(cfg)
            m.d.comb += [mac.act.eq(a), mac.weights.eq(weights.data[:lanes * cfg.weight_bits]),
                         mac.bias.eq(params.bias), mac.first.eq(first_b),
                         mac.valid.eq(vb & mode_mac)]
            m.d.comb += [acc_out[i].eq(mac.acc_next[i]) for i in range(lanes)]
        if has_one:  # one lane: a sum of (x - zp) * coef (average, add) or a maximum
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
        m.d.comb += [drain.capture.eq(vb & last_b), drain.acc.eq(acc_out),
                     drain.lanes.eq(lanes_b), drain.pos.eq(pos_b),
                     drain.stride.eq(d.out_lane_stride), drain.mac.eq(mode_mac),
                     drain.lane_m.eq(params.m), drain.lane_sh.eq(params.sh),
                     drain.m.eq(d.rq_m), drain.sh.eq(d.rq_sh),
                     drain.zp.eq(d.zp_out if cfg.zero_points else 0), drain.lo.eq(d.out_lo),
                     drain.hi.eq(d.out_hi), drain.bypass.eq(has_max & (d.mode == MODES["max"]))]
        if cfg.half_even:
            m.d.comb += drain.half_even.eq(d.half_even)

        # -- counters
        step_mac = fire & mode_mac
        m.d.comb += [cnt.fire.eq(fire), cnt.macs.eq(Mux(step_mac, seq.lanes, 0)),
                     cnt.act_read.eq(fire & ~seq.pad), cnt.weight_read.eq(step_mac),
                     cnt.param_read.eq(params.ack), cnt.act_write.eq(drain.we)]

        # -- the activation memory: the sequencer, the drain and the DMA while running,
        # else the bus
        bus = regs.act
        m.d.comb += [act_r.addr.eq(Mux(running, seq.act_addr, bus.addr)),
                     bus.rdata.eq(act_r.data),
                     act_w.addr.eq(Mux(dma.we, dma.addr, Mux(running, drain.addr, bus.addr))),
                     act_w.data.eq(Mux(dma.we, dma.data, Mux(running, drain.y, bus.wdata))),
                     act_w.en.eq(Mux(running, drain.we | dma.we, bus.we))]
        return m
