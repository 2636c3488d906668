"""The sequencer's registers hold every value its descriptor fields can ask for: the input
row and column run from a layer's first (an ``sdim`` field, minus the padding) to past the
largest input a ``cnt`` field allows, so their width derives from both (HwLayout.pos_w)."""

import pytest
from amaranth.sim import Simulator

from hannah_hw.accel.config import AccelConfig
from hannah_hw.accel.hwdesc import SDIM_BITS, HwLayout, hw_descriptor
from hannah_hw.accel.program import FIELDS, OPCODES
from hannah_hw.hw.seq import Sequencer


def _cfg(act_depth: int) -> AccelConfig:
    return AccelConfig(pe_rows=1, pe_cols=4, act_bits=8, weight_bits=8, acc_bits=24,
                       mult_bits=16, shift_bits=5, act_depth=act_depth, weight_depth=16,
                       param_depth=4, desc_depth=4, units=("maxpool",), half_even=False,
                       zero_points=False)


@pytest.mark.parametrize("act_depth", [64, 1 << 15, 1 << 16, 1 << 20])
def test_position_width_covers_the_fields(act_depth):
    lay = HwLayout(_cfg(act_depth))
    lo = -(1 << (SDIM_BITS - 1))  # the most padding a descriptor holds
    hi = (1 << lay.kind_shape("cnt")[0]) - 1 + (1 << (SDIM_BITS - 1))  # last input + padding
    assert -(1 << (lay.pos_w - 1)) <= lo and hi <= (1 << (lay.pos_w - 1)) - 1


def test_columns_past_2_to_the_17_are_read_not_padded():
    """A strided 1-D max pool over 500,000 inputs: its 8 input columns, the later ones past
    2**17 (what an 18-bit column register held), are real inputs at their addresses."""
    cfg = _cfg(1 << 20)
    stride, n_out, in_w, base = 1 << 16, 8, 500_000, 3
    d = {f: 0 for f in FIELDS}
    d.update(op=OPCODES["maxpool"], in_addr=base, out_addr=in_w + base, cin=1, in_h=1,
             in_w=in_w, cout=1, out_h=1, out_w=n_out, k_h=1, k_w=1, stride_h=1,
             stride_w=stride, dil_h=1, dil_w=1, groups=1, out_lo=-128, out_hi=127)
    h = hw_descriptor(d, cfg)
    dut = Sequencer(HwLayout(cfg))
    steps = []

    async def bench(ctx):
        for name, v in h.items():
            ctx.set(getattr(dut.desc, name), v)
        ctx.set(dut.ready, 1)
        ctx.set(dut.blk_ack, 1)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        for _ in range(4 * n_out + 8):
            if ctx.get(dut.valid):
                steps.append((ctx.get(dut.act_addr), ctx.get(dut.pad)))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert steps == [(base + i * stride, 0) for i in range(n_out)]
