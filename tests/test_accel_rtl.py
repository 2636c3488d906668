"""The generated accelerator in Verilator against the reference interpreter (outputs) and the
closed-form schedule (every performance counter). Layers of one kind share one build: a
merged configuration runs all of them."""

import numpy as np
import pytest
import torch
from test_accel_model import _random_layer, lowered
from test_qat import every_op_1d, every_op_2d

from hannah_hw.accel.bus import bus_words
from hannah_hw.accel.config import ConfigError, derive_config, merge_configs
from hannah_hw.accel.hwdesc import CONST_BASE, COUNTERS, MAGIC, HwLayout
from hannah_hw.accel.program import compile_program
from hannah_hw.accel.schedule import layer_events
from hannah_hw.hw.accel import Accelerator
from hannah_hw.hw.emit import emit_verilog
from hannah_hw.ir.interpreter import quantize_input, run
from hannah_hw.nas.archspec import ArchSpec
from hannah_hw.nas.blocks import conv1d, conv2d, input_tensor, linear
from hannah_hw.nas.functional_operators.executor import BasicExecutor
from hannah_hw.nas.functional_operators.op import search_space
from hannah_hw.nas.functional_operators.operators import AvgPooling, MaxPooling
from hannah_hw.qat.lower import lower
from hannah_hw.qat.qnet import build_qnet
from hannah_hw.simulate.accel_sim import (
    READ,
    build_harness,
    load_commands,
    run_commands,
    simulate_program,
)
from hannah_hw.simulate.verilator import SimulatorError, build_dir

pytestmark = pytest.mark.sim
N_RANDOM = 16


def _random_pool(rng):
    dims, pool = int(rng.integers(1, 3)), [AvgPooling, MaxPooling][int(rng.integers(0, 2))]
    k = int(rng.integers(1, 5))
    stride, pad = int(rng.integers(1, 4)), int(rng.integers(0, k // 2 + 1))
    size = int(rng.integers(k + 2, 16))

    @search_space
    def layer():
        x = input_tensor((1, 3, size, size + 1) if dims == 2 else (1, 3, size))
        conv = conv2d if dims == 2 else conv1d
        return linear(pool(k, stride, padding=pad)(conv(x, 5, 1)), 3)

    return layer


def _cases(scales):
    """(name, qgraph, float inputs): random conv/linear and pooling layers, every op."""
    out = []
    for seed in range(N_RANDOM):
        rng = np.random.default_rng(100 + seed)
        space = _random_layer(rng) if seed % 4 else _random_pool(rng)
        bits = [(8, 8), (4, 8), (3, 3), (2, 2), (6, 5)][seed % 5]
        qg, x = lowered(space, *bits, scales, seed, n=2)
        out.append((f"random{seed}", qg, x))
    for space in (every_op_2d, every_op_1d):
        qg, x = lowered(space, 8, 8, scales, 3, n=2)
        out.append((space.__name__, qg, x))
    return out


def _design(cases, lanes):
    cfg = merge_configs([derive_config(qg, pe_cols=lanes) for _, qg, _ in cases])
    v = build_dir("src", cfg.to_json()) / "accel.v"
    emit_verilog(Accelerator(cfg), "accel", v)
    return cfg, build_harness(v)


def _check(name, qg, x, cfg, exe):
    prog = compile_program(qg, cfg)
    xi = quantize_input(qg, x) if np.issubdtype(np.asarray(x).dtype, np.floating) else x
    shapes = {k: t.shape for k, t in qg.tensors.items()}
    y, stats, _ = simulate_program(exe, prog, cfg, xi, shapes)
    assert np.array_equal(y, run(qg, xi)), name
    for s in stats:
        for got, d in zip(s, prog.descriptors):
            want = layer_events(d, cfg)
            assert {k: got[k] for k in COUNTERS} == {k: want[k] for k in COUNTERS}, \
                (name, got["name"])


@pytest.fixture(scope="module", params=[("fixed", 4), ("pow2", 8)], ids=["fixed-4", "pow2-8"])
def design(request):
    scales, lanes = request.param
    cases = _cases(scales)
    if scales == "pow2":  # a shift-only design: graphs whose every multiplier is 2**k
        cases = [c for c in cases if derive_config(c[1]).mult_bits == 1]
        assert len(cases) >= N_RANDOM // 2
    cfg, exe = _design(cases, lanes)
    return cases, cfg, exe


def test_random_layers_and_every_op_are_bit_exact_with_exact_counters(design):
    cases, cfg, exe = design
    assert (cfg.mult_bits == 1) == (cfg.pe_cols == 8)  # pow2 scales: a shift-only design
    for name, qg, x in cases:
        _check(name, qg, x, cfg, exe)


def test_bus_reads_back_the_program_and_the_watchdog_stops_a_run(design):
    cases, cfg, exe = design
    _, qg, x = cases[-1]
    prog = compile_program(qg, cfg)
    lay = HwLayout(cfg)
    words = bus_words(prog, cfg)[0].rows.reshape(-1)  # the descriptor memory
    consts = lay.const_words()
    cmds = load_commands(prog, cfg) + [READ, lay.base("desc"), len(words),
                                       READ, lay.reg("magic"), 1,
                                       READ, lay.base("regs") + CONST_BASE, len(consts)]
    data, _ = run_commands(exe, cmds)
    assert np.array_equal(data[:len(words)], words)
    assert data[len(words)] == MAGIC
    assert data[len(words) + 1:].tolist() == consts
    shapes = {k: t.shape for k, t in qg.tensors.items()}
    with pytest.raises(SimulatorError, match="watchdog"):
        simulate_program(exe, prog, cfg, quantize_input(qg, x), shapes, max_cycles=200)


def _shipped(path, seed=0):
    torch.manual_seed(seed)
    graph = ArchSpec.load(path).build()
    ex = BasicExecutor(graph).eval()
    x = torch.randn(3, *ex.inputs[0].current_shape()[1:])
    q = build_qnet(graph, ex, 8, 8, pow2=True)
    q.calibrate([x])
    return lower(q, x, path), x.numpy()


def test_shipped_networks_run_bit_exact_on_one_design():
    nets = [_shipped("nas/kws_tcresnet8.json"), _shipped("nas/fashion_resnet.json")]
    cfg = merge_configs([derive_config(qg, pe_cols=16) for qg, _ in nets])
    v = build_dir("src", "shipped") / "accel.v"
    emit_verilog(Accelerator(cfg), "accel", v)
    exe = build_harness(v)
    for (qg, x), name in zip(nets, ("kws", "fashion")):
        _check(name, qg, x[:2], cfg, exe)


def test_imported_onnx_with_zero_points_and_half_even(tmp_path):
    from onnx_models import float_cnn, quantize

    from hannah_hw.ir.onnx_import import import_onnx

    src, shape = float_cnn(tmp_path / "f.onnx")
    x = quantize(src, tmp_path / "q.onnx", shape, "qop", True, reduce_range=True)
    qg = import_onnx(tmp_path / "q.onnx")
    cfg = derive_config(qg, pe_cols=4)
    assert cfg.half_even and cfg.zero_points
    v = build_dir("src", "onnx") / "accel.v"
    emit_verilog(Accelerator(cfg), "accel", v)
    _check("onnx", qg, x[:3], cfg, build_harness(v))


def test_configs_that_do_not_fit_name_the_problem():
    qg, _ = lowered(every_op_2d)
    with pytest.raises(ConfigError, match="pe_rows=2"):
        derive_config(qg, pe_rows=2)
    with pytest.raises(ConfigError, match="lane counts"):
        merge_configs([derive_config(qg, pe_cols=4), derive_config(qg, pe_cols=8)])


def test_generate_and_simulate_cli(tmp_path):
    import json

    from conftest import run_cli

    qg, x = lowered(every_op_1d, 8, 8, "fixed", 5, n=4)
    qg.save(tmp_path / "g.json")
    np.save(tmp_path / "x.npy", x.astype(np.float32))
    hw = tmp_path / "hw"
    r = run_cli("generate", tmp_path / "g.json", "--out", hw, "--pe-cols", 8, check=True)
    assert "8 MAC lanes" in r.stdout
    for f in ("accel.v", "config.json", "program.json", "summary.json"):
        assert (hw / f).is_file()
    run_cli("simulate", hw, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy",
            "--report", tmp_path / "r.json", check=True)
    run_cli("infer", tmp_path / "g.json", "--input", tmp_path / "x.npy", "--output",
            tmp_path / "ref.npy", check=True)
    assert np.array_equal(np.load(tmp_path / "y.npy"), np.load(tmp_path / "ref.npy"))
    rep = json.loads((tmp_path / "r.json").read_text())
    for k in ("cycles", "macs", "mac_units", "utilization", "energy_pj", "predicted_cycles",
              "predicted_energy_pj"):
        assert rep[k] > 0 and all(k in ly for ly in rep["layers"]), k
    assert rep["cycles"] == rep["predicted_cycles"] and rep["reference_match"]
    assert rep["macs"] == qg.macs() and len(rep["layers"]) == len(qg.nodes)

    bad_shape = tmp_path / "bad.npy"
    np.save(bad_shape, np.zeros((2, 3, 3), np.float32))
    r = run_cli("simulate", hw, "--input", bad_shape, "--output", tmp_path / "o.npy")
    assert r.returncode == 2 and "does not fit" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("generate", tmp_path / "g.json", "--out", tmp_path / "h2", "--pe-cols", 100)
    assert r.returncode == 2 and "pe_cols=100" in r.stderr
    (hw / "accel.v").write_text("// edited\n")
    r = run_cli("simulate", hw, "--input", tmp_path / "x.npy", "--output", tmp_path / "o.npy")
    assert r.returncode == 2 and "accel.v differs" in r.stderr
    r = run_cli("simulate", tmp_path, "--input", tmp_path / "x.npy", "--output", tmp_path / "o.npy")
    assert r.returncode == 2 and "not a generated hardware directory" in r.stderr
