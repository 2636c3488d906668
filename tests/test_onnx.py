"""ONNX out (QDQ export checked with onnxruntime) and in (onnxruntime-quantised models)."""

import logging

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx_models import float_cnn, quantize
from test_qat import every_op_1d, every_op_2d, randomized

from conftest import run_cli
from hannah_hw.ir.interpreter import dequantize_output, quantize_input, run
from hannah_hw.ir.lower import lower
from hannah_hw.ir.onnx_export import export_onnx
from hannah_hw.ir.onnx_import import import_onnx
from hannah_hw.ir.qgraph import QGraph, QGraphError
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
    with pytest.raises(QGraphError, match=r"Softmax \(soft\).*Sigmoid \(sig\)"):
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
