"""The sequencer: walks one layer's loop nest (group / lane block / oy / ox / ci / ky / kx)
and issues one step per cycle, its input address kept by additions only
(``ch_base + row_off + ix``), padding flagged from the row and column indices. In ``mac``
mode each lane block first asks for its parameters (``blk_req`` until ``blk_ack``)."""

from __future__ import annotations

from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hannah_hw.accel.hwdesc import HW_FIELDS, MODES, NF, HwLayout


def desc_layout(lay: HwLayout) -> data.FlexibleLayout:
    """Field i of the descriptor sits in its 32-bit word i, at its configured width."""
    fields = {}
    for i, (name, kind) in enumerate(HW_FIELDS.items()):
        w, s = lay.kind_shape(kind)
        fields[name] = data.Field(signed(w) if s else unsigned(w), 32 * i)
    return data.FlexibleLayout(32 * NF, fields)


class Sequencer(wiring.Component):
    def __init__(self, lay: HwLayout):
        self.lay = lay
        super().__init__({
            "desc": In(desc_layout(lay)),
            "start": In(1),
            "ready": In(1),
            "blk_ack": In(1),
            "busy": Out(1),
            "valid": Out(1),
            "act_addr": Out(lay.aw),
            "pad": Out(1),
            "w_addr": Out(lay.waw),
            "first": Out(1),
            "last": Out(1),
            "sel_b": Out(1),  # second operand of a residual add
            "pos_addr": Out(lay.aw),  # output address of lane 0 for this position
            "lanes": Out(range(lay.lanes + 1)),
            "blk_req": Out(1),
            "p_addr": Out(lay.paw),
        })

    def elaborate(self, platform):
        m = Module()
        d, lay = self.desc, self.lay
        cw = lay.kind_shape("cnt")[0]
        cnt = {n: Signal(cw, name=n) for n in ("g", "b", "oy", "ox", "ci", "ky", "kx")}
        ci, ky, kx = cnt["ci"], cnt["ky"], cnt["kx"]
        iy0, iy, ix0, ix = (Signal(signed(lay.pos_w), name=n) for n in ("iy0", "iy", "ix0", "ix"))
        row0, row = Signal(signed(lay.aw + 3)), Signal(signed(lay.aw + 3))
        ch_base, grp_base = Signal(lay.aw), Signal(lay.aw)
        grp_out, blk_out, pos = Signal(lay.aw), Signal(lay.aw), Signal(lay.aw)
        w_ptr, blk_w, p_ptr = Signal(lay.waw), Signal(lay.waw), Signal(lay.paw)
        mac = d.mode == MODES["mac"]

        # each counter's "at its limit" flag is a register set with the counter: the
        # compare of counter and descriptor stays off the path to the enables
        lim = {"g": d.groups, "b": d.blocks, "oy": d.out_h, "ox": d.out_w, "ci": d.cin,
               "ky": d.k_h, "kx": d.k_w}
        wrap = {n: Signal(name=f"{n}_w") for n in cnt}
        g_w, b_w, oy_w, ox_w, ci_w, ky_w, kx_w = wrap.values()
        last = kx_w & ky_w & ci_w

        def zero(*names):
            m.d.sync += [s for n in names for s in (cnt[n].eq(0), wrap[n].eq(lim[n] == 1))]

        def step(n):
            m.d.sync += [cnt[n].eq(cnt[n] + 1), wrap[n].eq(cnt[n] + 2 == lim[n])]

        m.d.comb += [
            self.act_addr.eq(ch_base + row + ix),
            self.pad.eq((iy < 0) | (iy >= d.in_h) | (ix < 0) | (ix >= d.in_w)),
            self.w_addr.eq(w_ptr),
            self.first.eq((kx == 0) & (ky == 0) & (ci == 0)),
            self.last.eq(last),
            self.sel_b.eq(ci != 0),
            self.pos_addr.eq(blk_out + pos),
            self.lanes.eq(Mux(b_w, d.lanes_last, lay.lanes)),
            self.p_addr.eq(p_ptr),
        ]

        def restart(ch):
            """Counters of a new lane block whose input channels start at ``ch``."""
            zero("oy", "ox", "ci", "ky", "kx")
            m.d.sync += [iy0.eq(d.iy_start), iy.eq(d.iy_start), ix0.eq(d.ix_start),
                         ix.eq(d.ix_start), row0.eq(d.row_start), row.eq(d.row_start),
                         ch_base.eq(ch), pos.eq(0)]
            with m.If(mac):
                m.next = "BLK"
            with m.Else():
                m.next = "RUN"

        def next_position():
            """After the last step of an output position: the next position, block or group."""
            with m.If(~ox_w):
                step("ox")
                m.d.sync += [ix0.eq(ix0 + d.stride_w), ix.eq(ix0 + d.stride_w)]
            with m.Else():
                zero("ox")
                m.d.sync += [ix0.eq(d.ix_start), ix.eq(d.ix_start)]
                with m.If(~oy_w):
                    step("oy")
                    m.d.sync += [iy0.eq(iy0 + d.stride_h),
                                 iy.eq(iy0 + d.stride_h), row0.eq(row0 + d.row_step),
                                 row.eq(row0 + d.row_step)]
                with m.Else():  # lane block done
                    m.d.sync += [w_ptr.eq(w_ptr + 1), blk_w.eq(w_ptr + 1), p_ptr.eq(p_ptr + 1)]
                    with m.If(b_w & g_w):
                        m.next = "IDLE"
                    with m.Elif(b_w):
                        nb = grp_base + d.grp_stride
                        zero("b")
                        step("g")
                        m.d.sync += [grp_base.eq(nb),
                                     grp_out.eq(grp_out + d.out_grp_stride),
                                     blk_out.eq(grp_out + d.out_grp_stride)]
                        restart(nb)
                    with m.Else():
                        step("b")
                        m.d.sync += [blk_out.eq(blk_out + d.out_blk_stride)]
                        restart(grp_base)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    zero("g", "b")
                    m.d.sync += [grp_base.eq(d.in_addr), grp_out.eq(d.out_addr),
                                 blk_out.eq(d.out_addr), w_ptr.eq(d.w_addr), blk_w.eq(d.w_addr),
                                 p_ptr.eq(d.p_addr)]
                    restart(d.in_addr)
            with m.State("BLK"):
                m.d.comb += [self.busy.eq(1), self.blk_req.eq(1)]
                with m.If(self.blk_ack):
                    m.next = "RUN"
            with m.State("RUN"):
                m.d.comb += [self.busy.eq(1), self.valid.eq(1)]
                with m.If(self.ready):
                    m.d.sync += w_ptr.eq(Mux(last, blk_w, w_ptr + 1))
                    with m.If(~kx_w):
                        step("kx")
                        m.d.sync += [ix.eq(ix + d.dil_w)]
                    with m.Else():
                        zero("kx")
                        m.d.sync += ix.eq(ix0)
                        with m.If(~ky_w):
                            step("ky")
                            m.d.sync += [iy.eq(iy + d.dil_h),
                                         row.eq(row + d.dil_row)]
                        with m.Else():
                            zero("ky")
                            m.d.sync += [iy.eq(iy0), row.eq(row0)]
                            with m.If(~ci_w):
                                step("ci")
                                m.d.sync += [ch_base.eq(ch_base + d.ch_stride)]
                            with m.Else():
                                zero("ci")
                                m.d.sync += [ch_base.eq(grp_base), pos.eq(pos + 1)]
                                next_position()
        return m
