"""The SPI flash boot loader against the flash's golden model: the words it writes, the
wake-up before the read, the load_en/done handshake and the cycle count."""

import random

import pytest
from amaranth.sim import Simulator

from hannah_hw.fpga.flash import CMD_READ, CMD_WAKE, FlashLoader, SpiFlashModel

WAKE = 20  # sys cycles: short to keep the Python simulator fast


def _load(words: int, offset: int, model: SpiFlashModel, wake: int = WAKE):
    """Run the loader to done: the writes {adr: dat}, per-cycle (load_en, load_we), cs at end."""
    dut = FlashLoader(words, offset, wake_cycles=wake)
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    writes: dict[int, list[int]] = {}
    trace: list[tuple[int, int]] = []
    limit = 2 * (8 + 32) + wake + 64 * words + 16
    end = {}

    async def flash(ctx):
        await model.run(ctx, dut.cs, dut.sclk, dut.copi, dut.cipo)

    async def monitor(ctx):
        while not ctx.get(dut.done):
            trace.append((ctx.get(dut.load_en), ctx.get(dut.load_we)))
            if ctx.get(dut.load_we):
                writes.setdefault(ctx.get(dut.load_adr), []).append(ctx.get(dut.load_dat))
            assert len(trace) < limit, "loader too slow or stuck"
            await ctx.tick()
        for _ in range(8):  # done and idle stay put
            assert ctx.get(dut.done) and not ctx.get(dut.load_en) and not ctx.get(dut.load_we)
            assert not ctx.get(dut.cs)
            await ctx.tick()
        end["cs"] = ctx.get(dut.cs)

    sim.add_testbench(flash, background=True)
    sim.add_testbench(monitor)
    sim.run()
    return writes, trace, end["cs"]


def _words(data: bytes, offset: int, words: int) -> dict[int, int]:
    return {i: int.from_bytes(data[offset + 4 * i:offset + 4 * i + 4], "little")
            for i in range(words)}


@pytest.mark.parametrize("words, offset", [(37, 0x100000), (1, 0x000123)])
def test_flash_loader_copies_the_image(words, offset):
    rnd = random.Random(words)
    data = bytes(rnd.randrange(256) for _ in range(offset + 4 * words + 16))
    model = SpiFlashModel(data, tres_cycles=WAKE)
    writes, trace, cs = _load(words, offset, model)

    assert sorted(writes) == list(range(words)), "every address exactly once..."
    assert all(len(v) == 1 for v in writes.values()), "...and only once"
    got = {a: v[0] for a, v in writes.items()}
    want = _words(data, offset, words)
    assert got == want
    # the comparison is on real data: big-endian assembly, or the wrong offset, would differ
    assert got != {a: int.from_bytes(w.to_bytes(4, "little"), "big") for a, w in want.items()}
    assert got != _words(data, offset + 4, words)

    assert model.woke and model.commands == [CMD_WAKE, CMD_READ]
    assert model.bytes_read >= 4 * words
    assert not cs
    last_we = max(i for i, (_, we) in enumerate(trace) if we)
    assert all(en for en, _ in trace[:last_we + 1]), "load_en from cycle 0 to the last write"
    assert all(not en for en, _ in trace[last_we + 1:])
    assert len(trace) <= 2 * (8 + 32) + WAKE + 64 * words + 4, len(trace)


def test_flash_loader_needs_the_wakeup_gap():
    """A flash still asleep when the read starts returns zeros, and the test would see it."""
    data = bytes(range(1, 65))
    model = SpiFlashModel(data, tres_cycles=WAKE + 1)
    writes, _, _ = _load(4, 8, model)
    assert {a: v[0] for a, v in writes.items()} == dict.fromkeys(range(4), 0)
    assert model.bytes_read == 0
