"""The Program compiler and the accelerator's behavioural model against the interpreter."""

import numpy as np
import pytest
import torch
from test_qat import every_op_1d, every_op_2d, randomized

from hannah_hw.accel.config import ConfigError, derive_config, plan_memory
from hannah_hw.accel.golden import run_program
from hannah_hw.accel.program import Program, compile_program, pack_weights
from hannah_hw.ir.interpreter import quantize_input, run
from hannah_hw.nas.blocks import conv1d, conv2d, input_tensor, linear
from hannah_hw.nas.functional_operators.op import search_space
from hannah_hw.qat.lower import lower
from hannah_hw.qat.qnet import build_qnet


def lowered(space, wbits=8, abits=8, scales="pow2", seed=1, n=8):
    g, ex = randomized(space, seed)
    x = torch.randn(n, *ex.inputs[0].current_shape()[1:]) * 1.5
    q = build_qnet(g, ex, wbits, abits, pow2=scales == "pow2")
    q.calibrate([x])
    return lower(q, x, "t"), x.numpy()


def check(qg, x, **kw):
    cfg = derive_config(qg, **kw)
    prog = compile_program(qg, cfg)
    xi = quantize_input(qg, x)
    shapes = {k: t.shape for k, t in qg.tensors.items()}
    y, events = run_program(prog, cfg, xi, shapes)
    assert np.array_equal(y, run(qg, xi))
    macs = sum(e["macs"] for e in events[0])
    assert macs == qg.macs()
    return cfg, prog, events


@pytest.mark.parametrize("space", [every_op_2d, every_op_1d])
@pytest.mark.parametrize("lanes", [1, 4, 8, 16])
@pytest.mark.parametrize("bits,scales", [((8, 8), "pow2"), ((4, 4), "fixed"), ((2, 3), "pow2")])
def test_model_matches_interpreter_on_every_op(space, lanes, bits, scales):
    qg, x = lowered(space, *bits, scales)
    check(qg, x, pe_cols=lanes)


def _random_layer(rng):
    dims = int(rng.integers(1, 3))
    cin = int(rng.integers(1, 20))
    groups = int(rng.choice([g for g in (1, 2, 3, 4, cin) if cin % g == 0]))
    cout = groups * int(rng.integers(1, 6))
    k = int(rng.integers(1, 6))
    stride, dil = int(rng.integers(1, 4)), int(rng.integers(1, 3))
    size = int(rng.integers(k * dil + 2, 24))

    @search_space
    def layer():
        shape = (1, cin, size, size - 1) if dims == 2 else (1, cin, size)
        x = input_tensor(shape)
        conv = conv2d if dims == 2 else conv1d
        out = conv(x, cout, k, stride, dil, groups)
        return linear(out, int(rng.integers(1, 12)))

    return layer


@pytest.mark.parametrize("seed", range(12))
def test_random_single_layers(seed):
    rng = np.random.default_rng(seed)
    space = _random_layer(rng)
    bits = [(8, 8), (4, 8), (3, 3), (2, 2)][seed % 4]
    qg, x = lowered(space, *bits, ["pow2", "fixed"][seed % 2], seed, n=4)
    check(qg, x, pe_cols=int(rng.choice([1, 3, 8, 16])))


def test_imported_onnx_graph_with_zero_points_runs(tmp_path):
    from onnx_models import float_cnn, quantize

    from hannah_hw.ir.onnx_import import import_onnx

    src, shape = float_cnn(tmp_path / "f.onnx")
    x = quantize(src, tmp_path / "q.onnx", shape, "qop", True, reduce_range=True)
    qg = import_onnx(tmp_path / "q.onnx")
    cfg, _, _ = check(qg, x[:4])
    assert cfg.half_even and cfg.zero_points and cfg.mult_bits > 1


def test_memory_plan_never_overlaps_live_tensors():
    qg, _ = lowered(every_op_2d)
    addr, depth = plan_memory(qg)
    size = {t: int(np.prod(i.shape)) for t, i in qg.tensors.items()}
    produced = set(qg.inputs)
    for i, n in enumerate(qg.nodes):
        needed_later = {t for m in qg.nodes[i + 1:] for t in m.inputs} | set(qg.outputs)
        live = set(n.inputs) | {n.output} | (produced & needed_later)
        for a in live:
            for b in live - {a}:
                assert addr[a] + size[a] <= addr[b] or addr[b] + size[b] <= addr[a], (n.name, a, b)
        produced.add(n.output)
    assert depth < sum(size.values())  # memory was reused


def test_config_is_derived_from_the_graph_and_checked():
    qg, _ = lowered(every_op_1d, 4, 4, "pow2")
    cfg = derive_config(qg)
    assert cfg.mult_bits == 1 and not cfg.half_even and cfg.weight_bits == 4
    assert set(cfg.units) == {n.op for n in qg.nodes}
    assert cfg.pe_cols in (4, 8, 16) and cfg.mac_units == cfg.pe_cols
    small = derive_config(qg)
    import dataclasses

    tiny = dataclasses.replace(small, act_depth=10)
    with pytest.raises(ConfigError, match="activation memory too small"):
        compile_program(qg, tiny)
    no_pool = dataclasses.replace(small, units=("conv", "linear"))
    with pytest.raises(ConfigError, match="lacks the unit"):
        compile_program(qg, no_pool)


def test_weight_packing_layout_and_program_round_trip(tmp_path):
    w = np.arange(2 * 3 * 2).reshape(6, 1, 2) - 5  # depthwise-like: 6 channels, 3 groups
    words = pack_weights(w, groups=3, lanes=4)
    assert words.shape == (3 * 2, 4)  # per group one block of 2 channels, 2 reduction steps
    assert words[0].tolist() == [w[0, 0, 0], w[1, 0, 0], 0, 0]
    qg, _ = lowered(every_op_2d)
    cfg = derive_config(qg)
    prog = compile_program(qg, cfg)
    prog.save(tmp_path / "p.json")
    back = Program.load(tmp_path / "p.json")
    assert back.descriptors == prog.descriptors and np.array_equal(back.weights, prog.weights)
    assert prog.words().shape == (len(qg.nodes), 31)


def test_energy_report_from_counts(tmp_path):
    import json

    from hannah_hw.accel.energy import energy_report, load_table

    qg, x = lowered(every_op_2d)
    cfg, prog, events = check(qg, x)
    r = energy_report(events[0], cfg, clock_hz=50e6, rate_hz=10)
    assert r["energy_pj"] > r["dynamic_pj"] > 0 and r["ratio_to_floor"] > 1
    assert r["pj_per_mac"] > load_table()["mult_8x8_pj"]
    cheaper = {**load_table(), "mult_8x8_pj": 0.01, "sram_8kb_pj_per_bit": 0.001}
    (tmp_path / "t.json").write_text(json.dumps(cheaper))
    r2 = energy_report(events[0], cfg, table=load_table(tmp_path / "t.json"))
    assert r2["energy_pj"] < r["energy_pj"]
    with pytest.raises(ValueError, match="lacks"):
        (tmp_path / "bad.json").write_text("{}")
        load_table(tmp_path / "bad.json")


def test_cost_model_predicts_the_model_counts_exactly():
    import time

    from hannah_hw.accel.cost import predict_cost

    qg, x = lowered(every_op_1d)
    cfg, _, events = check(qg, x)
    t0 = time.perf_counter()
    c = predict_cost(qg, cfg)
    assert time.perf_counter() - t0 < 0.5
    assert c["cycles"] == sum(e["cycles"] for e in events[0])
    assert c["macs"] == qg.macs() and 0 < c["utilization"] <= 1


def test_cost_cli(tmp_path):
    import json

    from conftest import run_cli

    qg, _ = lowered(every_op_2d)
    qg.save(tmp_path / "g.json")
    out = run_cli("cost", tmp_path / "g.json", "--pe-cols", "8", check=True).stdout
    assert "8 MAC units" in out and "U =" in out
    data = json.loads(run_cli("cost", tmp_path / "g.json", "--json", check=True).stdout)
    assert data["macs"] == qg.macs() and len(data["layers"]) == len(qg.nodes)
    ice = json.loads(run_cli("cost", tmp_path / "g.json", "--board", "icebreaker", "--pe-cols",
                             "4", "--json", check=True).stdout)  # the iCE40's parameter rows
    generic = json.loads(run_cli("cost", tmp_path / "g.json", "--pe-cols", "4", "--json",
                                 check=True).stdout)
    assert ice["cycles"] > generic["cycles"] and ice["latency_s"] == ice["cycles"] / 24e6


def test_the_fpga_family_is_part_of_the_config(tmp_path):
    """config.json alone says what the hardware is built as: saved and read back, set by
    fit_config for a board, priced by the schedule; an older file without it is generic."""
    import dataclasses
    import json

    from hannah_hw.accel.config import AccelConfig, merge_configs
    from hannah_hw.accel.cost import predict_cost
    from hannah_hw.fpga.resources import fit_config

    qg, _ = lowered(every_op_1d)
    ice = derive_config(qg, pe_cols=4, family="ice40")
    generic = dataclasses.replace(ice, family=None)
    ice.save(tmp_path / "c.json")
    assert AccelConfig.load(tmp_path / "c.json") == ice
    assert fit_config(qg, "icebreaker", pe_cols=4) == ice
    older = {k: v for k, v in json.loads(generic.to_json()).items() if k != "family"}
    (tmp_path / "old.json").write_text(json.dumps(older))
    assert AccelConfig.load(tmp_path / "old.json") == generic
    # on an iCE40 each lane block's parameter row is read word by word
    assert predict_cost(qg, ice)["cycles"] > predict_cost(qg, generic)["cycles"]
    for bad, message in (("gowin", "family='gowin': one of null, ecp5, ice40"),
                         (3, "family is 3")):
        (tmp_path / "bad.json").write_text(json.dumps({**older, "family": bad}))
        with pytest.raises(ConfigError, match=message):
            AccelConfig.load(tmp_path / "bad.json")
    with pytest.raises(ConfigError, match="different FPGA families"):
        merge_configs([ice, generic])
