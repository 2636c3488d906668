"""ONNX out (QDQ export checked with onnxruntime) and in (onnxruntime-quantised models)."""

import logging

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx_models import edited, float_cnn, quantize, set_attribute, set_initializer
from test_qat import every_op_1d, every_op_2d, randomized

from conftest import run_cli
from hannah_hw.ir.interpreter import dequantize_output, quantize_input, run
from hannah_hw.ir.onnx_export import export_onnx
from hannah_hw.ir.onnx_import import import_onnx
from hannah_hw.ir.qgraph import QGraph, QGraphError
from hannah_hw.qat.lower import lower
from hannah_hw.qat.qnet import build_qnet

logging.getLogger().setLevel(logging.ERROR)  # onnxruntime.quantization's pre-processing hints


def session(path, keep_qdq=False, optimize=True):
    so = ort.SessionOptions()
    if keep_qdq:  # run the QDQ model as written, not fused into onnxruntime's int kernels
        so.add_session_config_entry("session.disable_quant_qdq", "1")
    if not optimize:
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def graph_for(space, wbits, abits, scales, seed=3):
    g, ex = randomized(space, seed)
    x = torch.randn(200, *ex.inputs[0].current_shape()[1:]) * 1.5
    q = build_qnet(g, ex, wbits, abits, pow2=scales == "pow2")
    q.calibrate([x[:64]])
    return lower(q, x, "t"), x.numpy()


@pytest.mark.parametrize("space", [every_op_2d, every_op_1d])
@pytest.mark.parametrize("wbits,abits,scales", [(8, 8, "pow2"), (4, 4, "pow2"), (8, 8, "fixed"),
                                                (3, 5, "fixed"), (2, 2, "pow2")])
def test_exported_qdq_model_equals_infer_dequantize(tmp_path, space, wbits, abits, scales):
    g, x = graph_for(space, wbits, abits, scales)
    export_onnx(g, tmp_path / "m.onnx")
    ref = dequantize_output(g, run(g, quantize_input(g, x)))
    for opts in ({"keep_qdq": True}, {"optimize": False}):
        got = session(tmp_path / "m.onnx", **opts).run(None, {"input": x})[0]
        assert np.array_equal(got, ref), opts  # exact, every output


CASES = [(fmt, per_channel, act, dims, pools)
         for fmt in ("qdq", "qop") for per_channel in (False, True) for act in ("uint8", "int8")
         for dims in (1, 2) for pools in (False, True)]


@pytest.mark.parametrize("fmt,per_channel,act,dims,pools", CASES)
def test_import_of_onnxruntime_quantised_models(tmp_path, fmt, per_channel, act, dims, pools):
    src, shape = float_cnn(tmp_path / "f.onnx", seed=dims, dims=dims, pools=pools)
    # reduce_range: onnxruntime's x86 int8 kernels saturate without it (its documentation)
    x = quantize(src, tmp_path / "q.onnx", shape, fmt, per_channel, activation=act,
                 reduce_range=True)
    g = import_onnx(tmp_path / "q.onnx")
    assert {n.op for n in g.nodes} >= {"conv", "add", "maxpool", "linear"}
    t = g.tensors[g.outputs[0]]
    theirs = np.round(session(tmp_path / "q.onnx").run(None, {"input": x})[0] / t.scale) \
        .astype(np.int64) + t.zero_point
    mine = run(g, quantize_input(g, x))
    diff = np.abs(theirs - mine)
    if fmt == "qop" or not pools:
        assert diff.max() <= 1 and (diff == 0).mean() >= 0.99
    else:  # onnxruntime pools QDQ models in float32, where ties fall either way, and a
        # pooled value one step off can move a logit by two
        assert diff.max() <= 2 and (diff == 0).mean() >= 0.85


def test_unsupported_ops_are_listed_in_one_error(tmp_path):
    src, shape = float_cnn(tmp_path / "f.onnx", pools=False)
    quantize(src, tmp_path / "q.onnx", shape, "qop", False)
    m = onnx.load(str(tmp_path / "q.onnx"))
    last = m.graph.output[0].name
    m.graph.node.append(onnx.helper.make_node("Softmax", [last], ["sm"], name="soft"))
    m.graph.node.append(onnx.helper.make_node("Sigmoid", ["sm"], ["sg"], name="sig"))
    m.graph.output[0].name = "sg"
    onnx.save(m, str(tmp_path / "bad.onnx"))
    with pytest.raises(QGraphError, match=r"node \d+ Softmax \(soft\).*node \d+ Sigmoid \(sig\)"):
        import_onnx(tmp_path / "bad.onnx")


def test_onnx_cli_round_trip_and_bad_files(tmp_path):
    g, x = graph_for(every_op_1d, 8, 8, "pow2")
    g.save(tmp_path / "g.json")
    run_cli("export-onnx", tmp_path / "g.json", "-o", tmp_path / "g.onnx", check=True)
    assert onnx.load(str(tmp_path / "g.onnx")).opset_import[0].version >= 13
    src, shape = float_cnn(tmp_path / "f.onnx", pools=False)
    quantize(src, tmp_path / "q.onnx", shape, "qdq", True, reduce_range=True)
    res = run_cli("import-onnx", tmp_path / "q.onnx", "-o", tmp_path / "q.json", check=True)
    assert "conv" in res.stdout
    assert QGraph.load(tmp_path / "q.json").nodes[0].attrs["rounding"] == "half_even"
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    for args in (["import-onnx", tmp_path / "junk.onnx", "-o", tmp_path / "j.json"],
                 ["import-onnx", tmp_path / "none.onnx", "-o", tmp_path / "j.json"],
                 ["export-onnx", tmp_path / "none.json", "-o", tmp_path / "n.onnx"]):
        r = run_cli(*args)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr


@pytest.fixture(scope="module")
def qdq(tmp_path_factory):
    """One onnxruntime-quantised QDQ model (per-channel weights, every op) for the edits."""
    d = tmp_path_factory.mktemp("qdq")
    src, shape = float_cnn(d / "f.onnx", pools=True)
    quantize(src, d / "q.onnx", shape, "qdq", True, reduce_range=True)
    return d / "q.onnx"


def _nodes(m, op):
    return [n for n in m.graph.node if n.op_type == op]


def _input_scale(m):
    n = next(n for n in _nodes(m, "QuantizeLinear") if n.input[0] == "input")
    return n.input[1], "QuantizeLinear"


def _weight_scale(m):
    consts = {i.name for i in m.graph.initializer}
    n = next(n for n in _nodes(m, "DequantizeLinear") if n.input[0] in consts)
    return n.input[1], "DequantizeLinear"


@pytest.mark.parametrize("value,shown", [(0.0, "0.0"), (-0.5, "-0.5"), (np.nan, "nan"),
                                         (np.inf, "inf")])
@pytest.mark.parametrize("which", [_input_scale, _weight_scale])
def test_bad_scales_are_named_with_their_node(qdq, tmp_path, which, value, shown):
    name, op = which(onnx.load(str(qdq)))
    bad = edited(qdq, tmp_path / "bad.onnx", lambda m: set_initializer(m, name, value))
    with pytest.raises(QGraphError, match=rf"bad.onnx: node \d+ {op} \(.*\): scale '{name}' is "
                                          rf"{shown}; must be positive and finite$"):
        import_onnx(bad)


@pytest.mark.parametrize("op,attr,value,msg", [
    ("Conv", "strides", [0, 0], r"strides \[0, 0\]: every entry must be >= 1"),
    ("Conv", "pads", [-1, -1, -1, -1], r"pads \[-1, -1, -1, -1\]: every entry must be >= 0"),
    ("Conv", "dilations", [1], r"dilations \[1\] has 1 entries; expected 2"),
    ("Conv", "group", 0, r"group is 0; must be an integer >= 1"),
    ("Conv", "strides", 2, r"strides is 2; must be a list of integers"),
    ("MaxPool", "strides", [0, 2], r"strides \[0, 2\]: every entry must be >= 1"),
    ("AveragePool", "kernel_shape", [0, 2], r"kernel_shape \[0, 2\]: every entry must be >= 1"),
    ("AveragePool", "kernel_shape", [9, 9], r"its input \(12, 3, 3\) is too small"),
])
def test_bad_window_attributes_are_named_with_their_node(qdq, tmp_path, op, attr, value, msg):
    bad = edited(qdq, tmp_path / "bad.onnx", lambda m: set_attribute(_nodes(m, op)[0], attr, value))
    with pytest.raises(QGraphError, match=rf"bad.onnx: node \d+ {op} \(\w+\): {msg}"):
        import_onnx(bad)


def _dynamic(m):
    for d, name in zip(m.graph.input[0].type.tensor_type.shape.dim[2:], "HW"):
        d.dim_param = name


def test_dynamic_input_axes_are_fixed_by_input_shape(qdq, tmp_path):
    dyn = edited(qdq, tmp_path / "dyn.onnx", _dynamic)
    with pytest.raises(QGraphError, match=r"input 'input' has a dynamic axis 2 \('H'\); pass "
                                          r"--input-shape .* \(3,H,W\)$"):
        import_onnx(dyn)
    ref, g = import_onnx(qdq), import_onnx(dyn, (3, 12, 12))
    assert g.tensors == ref.tensors and g.nodes == ref.nodes
    assert import_onnx(qdq, (3, 12, 12)).tensors == ref.tensors  # a static model agrees
    for shape, msg in (((1, 3, 12, 12), "has 4 sizes; input 'input' has 3 per sample"),
                       ((4, 12, 12), "gives axis 1 of input 'input' size 4; the model fixes "
                                     "it at 3"),
                       ((3, 2, 2), r"node \d+ AveragePool \(p\): its input \(12, 1, 1\) is "
                                   "too small for the window")):
        with pytest.raises(QGraphError, match=msg):
            import_onnx(dyn, shape)


def test_import_cli_input_shape_and_nothing_written_on_error(qdq, tmp_path):
    dyn = edited(qdq, tmp_path / "dyn.onnx", _dynamic)
    out = tmp_path / "g.json"
    for extra, msg in (([], "pass --input-shape"), (["--input-shape", "3,x"], "must be positive "
                                                                              "integers")):
        r = run_cli("import-onnx", dyn, "-o", out, *extra)
        assert r.returncode == 2 and msg in r.stderr and len(r.stderr.splitlines()) == 1, \
            r.stderr
        assert not list(tmp_path.glob("g.*"))
    run_cli("import-onnx", dyn, "-o", out, "--input-shape", "3,12,12", check=True)
    assert QGraph.load(out).tensors[QGraph.load(out).inputs[0]].shape == (3, 12, 12)
