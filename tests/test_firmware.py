"""The emitted firmware: bit-exact on the host (reference kernels) for random layers and
the shipped networks, and on the simulated SoC with and without the accelerator."""

import json
import os
import shutil

import numpy as np
import pytest
from test_accel_model import lowered
from test_accel_rtl import _cases, _shipped
from test_qat import every_op_1d

from hannah_hw.fw.build import FirmwareError, build_firmware, run_host
from hannah_hw.fw.emit import emit_firmware
from hannah_hw.ir.interpreter import quantize_input, run
from hannah_hw.simulate.verilator import SimulatorError
from hannah_hw.stages.generate import generate
from hannah_hw.stages.soc_sim import soc_simulate


def _fw(tmp_path, name, qg, lanes=None, targets=("host",)):
    hw, fw = tmp_path / f"{name}-hw", tmp_path / f"{name}-fw"
    generate(qg, hw, pe_cols=lanes)
    emit_firmware(hw, fw)
    for t in targets:
        build_firmware(fw, t)
    return fw


def _int(qg, x):
    return quantize_input(qg, x) if np.issubdtype(np.asarray(x).dtype, np.floating) else x


@pytest.mark.parametrize("scales", ["fixed", "pow2"])
def test_host_firmware_is_bit_exact_on_random_layers(tmp_path, scales):
    for name, qg, x in _cases(scales)[::3]:
        xi = _int(qg, x)
        fw = _fw(tmp_path, name, qg, lanes=4)
        y = run_host(fw, xi, qg.tensors[qg.outputs[0]].shape)
        assert np.array_equal(y, run(qg, xi)), name
    assert json.loads((fw / "firmware.json").read_text())["host"]["cppcheck"] == "clean"


def test_host_firmware_is_bit_exact_on_the_shipped_networks(tmp_path):
    for path in ("nas/kws_tcresnet8.json", "nas/fashion_resnet.json"):
        qg, x = _shipped(path)
        xi = _int(qg, x)
        fw = _fw(tmp_path, path.split("/")[1], qg)
        assert np.array_equal(run_host(fw, xi, qg.tensors[qg.outputs[0]].shape), run(qg, xi))


def test_host_firmware_with_zero_points_and_half_even(tmp_path):
    from onnx_models import float_cnn, quantize

    from hannah_hw.ir.onnx_import import import_onnx

    src, shape = float_cnn(tmp_path / "f.onnx")
    x = quantize(src, tmp_path / "q.onnx", shape, "qop", True, reduce_range=True)
    qg = import_onnx(tmp_path / "q.onnx")
    fw = _fw(tmp_path, "onnx", qg, lanes=4)
    xi = _int(qg, x[:3])
    assert np.array_equal(run_host(fw, xi, qg.tensors[qg.outputs[0]].shape), run(qg, xi))


@pytest.mark.sim
def test_kws_on_the_soc_with_the_accelerator(tmp_path):
    qg, x = _shipped("nas/kws_tcresnet8.json")
    xi = _int(qg, x[:2])
    fw = _fw(tmp_path, "kws", qg, targets=("rv32",))
    y, rep = soc_simulate(fw, xi, qg.tensors[qg.outputs[0]].shape)
    assert np.array_equal(y, run(qg, xi))
    predicted = json.loads((tmp_path / "kws-hw" / "summary.json").read_text())
    assert rep["accel_cycles"] == predicted["predicted_cycles"]  # the stats rows' totals
    assert rep["driver_share"] < 0.05
    assert rep["cycles"] == rep["accel_cycles"] + rep["dma_cycles"] + rep["driver_cycles"]
    assert "input 1:" in rep["console"]


@pytest.mark.sim
def test_soc_without_the_accelerator_and_the_cli(tmp_path):
    from conftest import run_cli

    qg, x = lowered(every_op_1d, 8, 8, "fixed", 5, n=2)
    qg.save(tmp_path / "g.json")
    np.save(tmp_path / "x.npy", x.astype(np.float32))
    hw, fw = tmp_path / "hw", tmp_path / "fw"
    run_cli("generate", tmp_path / "g.json", "--out", hw, "--pe-cols", 4, check=True)
    r = run_cli("firmware", hw, "--out", fw, check=True)
    assert "hh_fw.elf" in r.stdout and (fw / "hh_fw.bin").is_file()
    run_cli("infer", tmp_path / "g.json", "--input", tmp_path / "x.npy", "--output",
            tmp_path / "ref.npy", check=True)
    reports = {}
    for flag in ([], ["--no-accel"]):
        r = run_cli("soc-sim", fw, "--input", tmp_path / "x.npy", "--output",
                    tmp_path / "y.npy", "--report", tmp_path / "r.json", *flag, check=True)
        assert np.array_equal(np.load(tmp_path / "y.npy"), np.load(tmp_path / "ref.npy"))
        reports[bool(flag)] = json.loads((tmp_path / "r.json").read_text())
    assert reports[True]["cycles"] > 5 * reports[False]["cycles"]  # the accelerator helps
    assert reports[False]["reference_match"] and reports[True]["reference_match"]

    # a firmware that traps, and one that never exits, end with the console log
    from hannah_hw.soc.sim import build_soc, run_soc

    cfg, ram, isa, cpu = __import__("hannah_hw.fw.build", fromlist=["x"]).soc_config(fw)
    exe = build_soc(cfg, ram // 4, isa, cpu=cpu)
    with pytest.raises(SimulatorError, match="trapped"):
        run_soc(exe, np.array([0x00100073], "<u4").tobytes(), np.zeros(0), 10_000)  # ebreak
    with pytest.raises(SimulatorError, match="no exit after 5000 cycles"):
        run_soc(exe, np.array([0x0000006F], "<u4").tobytes(), np.zeros(0), 5_000)  # j .


@pytest.mark.sim
def test_the_socs_the_boards_build_are_bit_exact(tmp_path):
    """As the bitstreams build them: the RAM as one read and one write port, the input DMA
    holding the core off; on the iCEBreaker the RAM in SPRAM, loaded through the boot
    loader's port, and the accelerator's iCE40 memories. Here with an RV32I core (no
    multiplier, divider or barrel shifter) and a firmware for the accelerator only."""
    from conftest import run_cli

    qg, x = lowered(every_op_1d, 8, 8, "fixed", 5, n=2)
    qg.save(tmp_path / "g.json")
    np.save(tmp_path / "x.npy", x.astype(np.float32))
    hw, fw = tmp_path / "hw", tmp_path / "fw"
    run_cli("generate", tmp_path / "g.json", "--out", hw, "--pe-cols", 4, check=True)
    r = run_cli("firmware", hw, "--out", fw, "--target", "rv32", "--isa", "rv32i",
                "--no-reference", check=True)
    assert "(rv32i on picorv32)" in r.stdout
    size = json.loads((fw / "firmware.json").read_text())["rv32"]["size"]
    assert size["model_bytes_reference"] == 0 < size["model_bytes_accel"]
    objdump = shutil.which("riscv64-unknown-elf-objdump")
    if objdump:  # the small cores trap on (PicoRV32) or misrun (SERV) M instructions
        import subprocess

        dis = subprocess.run([objdump, "-d", str(fw / "hh_fw.elf")], capture_output=True,
                             text=True).stdout
        assert "\tmul" not in dis and "\tdiv" not in dis and "\trem" not in dis
    serv = tmp_path / "fw_serv"  # the same image on the bit-serial core (rv32i by default)
    r = run_cli("firmware", hw, "--out", serv, "--target", "rv32", "--cpu", "serv",
                "--no-reference", check=True)
    assert "(rv32i on serv)" in r.stdout
    from dataclasses import replace

    from hannah_hw.accel.config import AccelConfig
    from hannah_hw.accel.cost import predict_cost
    from hannah_hw.fpga.boards import board as board_spec

    cfg = AccelConfig.load(hw / "config.json")
    want = run(qg, quantize_input(qg, x))
    reps = {}
    for board, d in (("icebreaker", serv), ("ulx3s", fw)):
        run_cli("soc-sim", d, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy",
                "--report", tmp_path / "r.json", "--board", board, check=True)
        rep = reps[board] = json.loads((tmp_path / "r.json").read_text())
        assert rep["reference_match"] and rep["board"] == board and rep["isa"] == "rv32i"
        assert np.array_equal(np.load(tmp_path / "y.npy"), want)
        assert rep["dma_cycles"] > 0
        assert rep["family"] == board_spec(board).family
        assert rep["accel_cycles"] == predict_cost(qg, replace(cfg, family=rep["family"]))["cycles"]
    assert reps["icebreaker"]["cpu"] == "serv" and reps["ulx3s"]["cpu"] == "picorv32"
    # the bit-serial core spends more cycles in the driver, the accelerator the same
    assert reps["icebreaker"]["driver_cycles"] > 3 * reps["ulx3s"]["driver_cycles"]
    r = run_cli("firmware", hw, "--out", serv, "--target", "rv32", "--cpu", "serv",
                "--isa", "rv32im")
    assert r.returncode == 2 and "'rv32im' does not run on serv" in r.stderr
    r = run_cli("soc-sim", fw, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy",
                "--no-accel")  # the reference kernels are not built in
    assert r.returncode == 2 and "not built in (REF=0)" in r.stderr


def test_firmware_cli_errors(tmp_path):
    from conftest import run_cli

    qg, _ = lowered(every_op_1d)
    qg.save(tmp_path / "g.json")
    r = run_cli("firmware", tmp_path, "--out", tmp_path / "fw")
    assert r.returncode == 2 and "run 'hannah-hw generate' first" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    run_cli("generate", tmp_path / "g.json", "--out", tmp_path / "hw", check=True)
    bin_dir = tmp_path / "bin"  # a PATH with make but no cross compiler
    bin_dir.mkdir()
    (bin_dir / "make").symlink_to(shutil.which("make"))
    env = dict(os.environ, PATH=str(bin_dir))
    r = run_cli("firmware", tmp_path / "hw", "--out", tmp_path / "fw", "--target", "rv32",
                env=env)
    assert r.returncode == 2 and "riscv64-unknown-elf-gcc is not installed" in r.stderr
    assert "make setup" in r.stderr
    np.save(tmp_path / "x.npy", np.zeros((1, *qg.tensors[qg.inputs[0]].shape), np.float32))
    r = run_cli("soc-sim", tmp_path / "fw", "--input", tmp_path / "x.npy", "--output",
                tmp_path / "y.npy")
    assert r.returncode == 2 and "no rv32 build" in r.stderr
    with pytest.raises(FirmwareError, match="unknown target"):
        build_firmware(tmp_path / "fw", "arm")
