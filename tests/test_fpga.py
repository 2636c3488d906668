"""The FPGA stage: the UART bridge against its golden model, the fit checks, the resource
model against a real iCE40 build, and the bitstream command's errors."""

import random
from pathlib import Path

import pytest
from amaranth import Module
from amaranth.lib.memory import Memory
from amaranth.sim import Simulator

from conftest import run_cli
from hannah_hw.fpga.uart import CMD_READ, CMD_WRITE, UartBridge, bridge_model

DIV = 4  # clock cycles per bit: the Python simulator is slow


def _bridge_sim(stream: bytes, n_reply: int) -> bytes:
    """The bridge on a 16-word Wishbone memory with a one-cycle ack: the reply bytes."""
    m = Module()
    m.submodules.br = br = UartBridge(DIV, addr_width=4)
    m.submodules.mem = mem = Memory(shape=32, depth=16, init=[])
    r, w = mem.read_port(), mem.write_port()
    req = br.wb_cyc & br.wb_stb & ~br.wb_ack
    m.d.comb += [r.addr.eq(br.wb_adr), w.addr.eq(br.wb_adr), w.data.eq(br.wb_dat_w),
                 w.en.eq(req & br.wb_we), br.wb_dat_r.eq(r.data)]
    m.d.sync += br.wb_ack.eq(req)
    sim = Simulator(m)
    sim.add_clock(1e-6)
    got = bytearray()

    async def drive(ctx):
        ctx.set(br.rx, 1)
        await ctx.tick().repeat(3)
        for b in stream:
            for bit in [0, *((b >> i) & 1 for i in range(8)), 1]:
                ctx.set(br.rx, bit)
                await ctx.tick().repeat(DIV)
        ctx.set(br.rx, 1)

    async def listen(ctx):
        while len(got) < n_reply:
            await ctx.tick().until(br.tx == 0)
            await ctx.tick().repeat(DIV // 2)
            b = 0
            for i in range(8):
                await ctx.tick().repeat(DIV)
                b |= ctx.get(br.tx) << i
            await ctx.tick().repeat(DIV)
            assert ctx.get(br.tx) == 1, "stop bit"
            got.append(b)

    sim.add_testbench(drive)
    sim.add_testbench(listen, background=False)
    sim.run()
    return bytes(got)


def test_uart_bridge_matches_its_golden_model():
    rnd = random.Random(1)
    stream = bytearray(b"\x00\x13")  # noise before the first command is ignored
    for _ in range(6):
        a = rnd.randrange(16)
        if rnd.random() < 0.5:
            stream += bytes([CMD_WRITE]) + a.to_bytes(4, "little") + \
                rnd.getrandbits(32).to_bytes(4, "little")
        else:
            stream += bytes([CMD_READ]) + a.to_bytes(4, "little")
    stream += bytes([CMD_WRITE, 5, 0, 0, 0, 0xEF, 0xBE, 0xAD, 0xDE, CMD_READ, 5, 0, 0, 0])
    ref = bridge_model(bytes(stream), {})
    got = _bridge_sim(bytes(stream), len(ref))
    assert got == ref
    assert got[-4:] == bytes([0xEF, 0xBE, 0xAD, 0xDE])


def _small_hw(tmp_path, lanes=4):
    from test_accel_model import lowered
    from test_qat import every_op_1d

    from hannah_hw.stages.generate import generate

    qg, _ = lowered(every_op_1d)
    generate(qg, tmp_path / "hw", pe_cols=lanes)
    return qg, tmp_path / "hw"


def test_a_too_big_design_fails_before_any_tool(tmp_path):
    import dataclasses

    from hannah_hw.accel.config import AccelConfig
    from hannah_hw.fpga.boards import board
    from hannah_hw.fpga.fit import FitError, precheck

    _, hw = _small_hw(tmp_path)
    cfg = dataclasses.replace(AccelConfig.load(hw / "config.json"), pe_cols=16,
                              weight_depth=40000)
    with pytest.raises(FitError, match=r"does not fit iCE40UP5K .*SPRAMs needed, 4 available"):
        precheck(cfg, board("icebreaker"))
    cfg = dataclasses.replace(cfg, pe_cols=4, weight_depth=100, act_depth=200_000)
    with pytest.raises(FitError, match=r"block RAMs needed, 30 available \(\+\d+ %\)"):
        precheck(cfg, board("icebreaker"))


def test_generate_fit_picks_lanes_or_names_what_is_too_big(tmp_path):
    from test_accel_rtl import _shipped

    from hannah_hw.fpga.fit import FitError
    from hannah_hw.stages.generate import generate

    qg, _ = _small_hw(tmp_path)  # fits the UP5K at 8 lanes (4,435 logic cells measured)
    assert generate(qg, tmp_path / "fit", fit="icebreaker")["config"]["pe_cols"] == 8
    kws, _ = _shipped("nas/kws_tcresnet8.json")  # 4 lanes (4,678 cells), not 8 (11 DSPs)
    assert generate(kws, tmp_path / "kws", fit="icebreaker")["config"]["pe_cols"] == 4
    with pytest.raises(FitError, match=r"does not fit iCE40UP5K \(icebreaker\): 11 DSPs "
                                       r"needed, 8 available \(\+38 %\) at 8 lanes"):
        generate(kws, tmp_path / "kws8", pe_cols=8, fit="icebreaker")


def test_a_placer_overflow_names_every_resource_in_one_line():
    from hannah_hw.fpga.boards import board
    from hannah_hw.fpga.fit import pnr_failure

    log = ("Info: Device utilisation:\nInfo: \t ICESTORM_LC:  6936/  5280   131%\n"
           "Info: \t ICESTORM_RAM:    31/    30   103%\nInfo: \t ICESTORM_DSP:  7/  8  87%\n"
           "ERROR: Unable to place cell 'x'\n")
    msg = pnr_failure(log, board("icebreaker"))
    assert msg == ("does not fit iCE40UP5K (icebreaker): 6,936 logic cells (LUT4 + FF) needed, "
                   "5,280 available (+31 %); 31 block RAMs needed, 30 available (+3 %)")
    assert pnr_failure("ERROR: something else\n", board("ulx3s")) == (
        "nextpnr failed on ulx3s: ERROR: something else")


def test_bitstream_cli_rejects_a_non_hwdir(tmp_path):
    p = run_cli("bitstream", tmp_path, "--board", "icebreaker", "--out", tmp_path / "o")
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "not a generated hardware directory" in lines[0]


@pytest.mark.slow
def test_resource_estimate_against_a_real_ice40_build(tmp_path):
    """A small accelerator through yosys, nextpnr and icepack: its report against the
    model, and a second call that reuses the build."""
    from hannah_hw.accel.config import AccelConfig
    from hannah_hw.fpga.build import build_bitstream
    from hannah_hw.fpga.resources import estimate_resources

    _, hw = _small_hw(tmp_path)
    steps = []
    rep = build_bitstream(hw, "icebreaker", tmp_path / "bit", progress=steps.append)
    assert steps[-3:] == ["synth", "pnr", "pack"] and Path(rep["bitstream"]).stat().st_size
    got = {k: v["used"] for k, v in rep["resources"].items()}
    est = estimate_resources(AccelConfig.load(hw / "config.json"), "icebreaker")
    for res in ("lut", "ff"):
        assert abs(est[res] - got[res]) <= 0.1 * got[res], (res, est, got)
    assert abs(est["lc"] - rep["placed"]["lc"]) <= 0.1 * rep["placed"]["lc"]
    assert (est["dsp"], est["spram"]) == (got["dsp"], got["spram"])
    assert abs(est["bram"] - got["bram"]) <= 1
    assert rep["target_mhz"] == 24 and rep["timing_met"] == (
        rep["fmax_mhz"] >= rep["target_mhz"])
    # generated without --fit: right bitstream, but the HWDIR's cycles are another schedule
    assert "generate --fit icebreaker" in rep["schedule_note"]
    assert build_bitstream(hw, "icebreaker", tmp_path / "bit", progress=steps.append) == rep
    assert steps[-1].startswith("unchanged")


@pytest.mark.sim
@pytest.mark.parametrize("scales,lanes", [("fixed", 4), ("pow2", 8)])
def test_the_ice40_memory_mapping_is_bit_exact_and_its_cycles_predicted(tmp_path, scales,
                                                                        lanes):
    """``generate --fit icebreaker`` writes the iCE40 elaboration (SPRAM weights, word-wide
    parameter and counter rows; run with yosys's SPRAM model): the interpreter's outputs,
    and every counter of every layer as the iCE40 schedule predicts (a parameter row costs
    ``param_words + 1`` cycles more than on the generic memories)."""
    from dataclasses import replace

    import numpy as np
    from test_accel_model import lowered
    from test_qat import every_op_1d

    from hannah_hw.accel.config import AccelConfig
    from hannah_hw.accel.hwdesc import COUNTERS, HwLayout
    from hannah_hw.accel.program import Program
    from hannah_hw.accel.schedule import layer_events
    from hannah_hw.ir.interpreter import quantize_input, run
    from hannah_hw.simulate.accel_sim import build_harness, simulate_program
    from hannah_hw.stages.generate import generate

    qg, x = lowered(every_op_1d, scales=scales)
    hw = tmp_path / "hw"
    s = generate(qg, hw, pe_cols=lanes, fit="icebreaker")
    cfg, prog = AccelConfig.load(hw / "config.json"), Program.load(hw / "program.json")
    assert cfg.family == s["family"] == "ice40" and "SB_SPRAM256KA" in (hw / "accel.v").read_text()
    xi = quantize_input(qg, x[:3])
    y, stats, _ = simulate_program(build_harness(hw / "accel.v"), prog, cfg, xi,
                                   {k: t.shape for k, t in qg.tensors.items()})
    assert np.array_equal(y, run(qg, xi))
    words = HwLayout(cfg).param_words
    for st in stats:
        for got, d in zip(st, prog.descriptors):
            want, generic = layer_events(d, cfg), layer_events(d, replace(cfg, family=None))
            assert {k: got[k] for k in COUNTERS} == {k: want[k] for k in COUNTERS}, got["name"]
            assert want["cycles"] - generic["cycles"] == generic["param_reads"] * (words + 1)
    assert sum(ly["cycles"] for ly in stats[0]) == s["predicted_cycles"]


@pytest.mark.slow
def test_the_icebreaker_soc_with_serv_fits_and_boots_from_flash(tmp_path):
    """The iCE40 SoC top through yosys and nextpnr: SERV with the accelerator-only
    firmware, the RAM in SPRAM beside the weights, the boot loader on the flash pins: a
    bitstream within the UP5K's logic cells, and the flash image beside it."""
    import json

    from hannah_hw.accel.config import AccelConfig
    from hannah_hw.fpga.boards import board
    from hannah_hw.fpga.build import build_bitstream
    from hannah_hw.fpga.fit import memory_blocks
    from hannah_hw.fw.build import build_firmware
    from hannah_hw.fw.emit import emit_firmware

    _, hw = _small_hw(tmp_path, lanes=4)
    emit_firmware(hw, tmp_path / "fw")
    ram = build_firmware(tmp_path / "fw", "rv32", reference=False, cpu="serv")["ram_bytes"]
    rep = build_bitstream(hw, "icebreaker", tmp_path / "bit", top="soc", fwdir=tmp_path / "fw")
    assert rep["placed"]["lc"] <= 5280 and Path(rep["flash_image"]).is_file()
    assert Path(rep["bitstream"]).stat().st_size > 100_000
    assert Path(rep["flash_image"]).read_bytes() == (tmp_path / "fw/hh_fw.bin").read_bytes()
    cells = json.loads((tmp_path / "bit/build/stat.json").read_text())["design"][
        "num_cells_by_type"]
    weights = memory_blocks(AccelConfig.load(hw / "config.json"), board("icebreaker"))["spram"]
    assert cells["SB_SPRAM256KA"] == weights + 2 * -(-ram // 65536)  # weights + RAM
    pcf = (tmp_path / "bit/build/top.pcf").read_text()
    assert "spi_flash_1x_0__cs" in pcf and "serv_rf_top" in (tmp_path / "bit/build/top.il"
                                                              ).read_text()[:10**7]
