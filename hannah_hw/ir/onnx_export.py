"""QGraph -> standard QDQ ONNX (QuantizeLinear/DequantizeLinear around float Conv, Gemm, Add,
pooling), runnable by onnxruntime.

Exactness: ONNX rounds half to even, hannah-hw half up. Every rescale is written as float
math whose result lies on the grid ``k * 2**-sh`` of the integer requantiser, plus half a grid
step (``2**-(sh+1)``, folded into the bias): ties then round up and nothing else moves. Weight
scales are chosen so that ``s_in * s_w / s_out`` is exactly ``M * 2**-sh``. The float32
arithmetic is exact while accumulators stay below 2**24 grid steps; past that (wide layers at
8 bits) an output can differ by one step.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from hannah_hw.util.names import printable, safe_ident

from .qgraph import QGraph
from .records import TensorInfo

OPSET = 21


class _Builder:
    def __init__(self):
        self.nodes, self.inits, self.n = [], [], 0

    def name(self, base: str) -> str:
        self.n += 1
        return f"{base}_{self.n}"

    def const(self, base: str, value, dtype=np.float32) -> str:
        name = self.name(base)
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype), name))
        return name

    def node(self, op: str, inputs: list[str], base: str, **attrs) -> str:
        out = self.name(base)
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out


def _qtype(t: TensorInfo):
    return np.int8 if t.signed else np.uint8


def _dq(b: _Builder, q: str, t: TensorInfo, base: str) -> str:
    scale = b.const(f"{base}_scale", t.scale)
    zp = b.const(f"{base}_zp", t.zero_point, _qtype(t))
    return b.node("DequantizeLinear", [q, scale, zp], f"{base}_dq")


def _q(b: _Builder, x: str, t: TensorInfo, base: str, relu: bool) -> str:
    """Clip to the tensor's b-bit range (the int8 container would allow more), quantise."""
    lo, hi = t.range
    if relu:
        lo = max(lo, t.zero_point)
    lo_f = b.const(f"{base}_lo", (lo - t.zero_point) * t.scale)
    hi_f = b.const(f"{base}_hi", (hi - t.zero_point) * t.scale)
    x = b.node("Clip", [x, lo_f, hi_f], f"{base}_clip")
    scale = b.const(f"{base}_scale", t.scale)
    zp = b.const(f"{base}_zp", t.zero_point, _qtype(t))
    return b.node("QuantizeLinear", [x, scale, zp], f"{base}_q")


def _rescale_sum(b, x, m: int, sh: int, t_out: TensorInfo, base: str):
    """Float value whose quantisation at t_out rounds like (sum * m + 2**(sh-1)) >> sh, where
    ``x`` already is the sum times the input scale (input and output scales are equal)."""
    k = b.const(f"{base}_k", m * 2.0 ** -sh)
    x = b.node("Mul", [x, k], f"{base}_mul")
    half = b.const(f"{base}_half", t_out.scale * 2.0 ** -(sh + 1))
    return b.node("Add", [x, half], f"{base}_tie")


def export_onnx(g: QGraph, path: str | Path) -> onnx.ModelProto:
    b = _Builder()
    (inp,) = g.inputs
    t_in = g.tensors[inp]
    q = {inp: _q(b, "input", t_in, "input", False)}
    for n in g.nodes:
        out_t = g.tensors[n.output]
        base = safe_ident(n.name)  # ONNX names become identifiers in downstream code generators
        ins = [_dq(b, q[i], g.tensors[i], f"{base}_in{k}") for k, i in enumerate(n.inputs)]
        if n.op in ("conv", "linear"):
            s_in = g.tensors[n.inputs[0]].scale
            w = g.param(n, "weight")
            m = g.param(n, "m").astype(np.float64)
            sh = g.param(n, "sh").astype(np.float64)
            s_w = m * 2.0 ** -sh * out_t.scale / s_in
            w_f = b.node("DequantizeLinear", [b.const(f"{base}_w", w, np.int8),
                                              b.const(f"{base}_ws", s_w)], f"{base}_wdq", axis=0)
            bias = out_t.scale * 2.0 ** -sh * (g.param(n, "bias") * m + 0.5)
            bias_f = b.const(f"{base}_b", bias)
            if n.op == "conv":
                a = n.attrs
                y = b.node("Conv", [ins[0], w_f, bias_f], f"{base}_conv",
                           strides=a["stride"], pads=a["padding"] * 2, dilations=a["dilation"],
                           group=a["groups"])
            else:
                flat = b.node("Flatten", [ins[0]], f"{base}_flat", axis=1)
                y = b.node("Gemm", [flat, w_f, bias_f], f"{base}_gemm", transB=1)
        elif n.op == "add":
            sh = n.attrs["sh"]
            parts = [b.node("Mul", [x, b.const(f"{base}_k{k}", n.attrs[f"m_{'ab'[k]}"] * 2.0 ** -sh
                                                * out_t.scale / g.tensors[i].scale)],
                            f"{base}_mul{k}") for k, (x, i) in enumerate(zip(ins, n.inputs))]
            y = b.node("Add", parts, f"{base}_add")
            y = b.node("Add", [y, b.const(f"{base}_tie", out_t.scale * 2.0 ** -(sh + 1))],
                       f"{base}_tie")
        elif n.op in ("avgpool", "global_avgpool"):
            x = ins[0]
            c = g.tensors[n.inputs[0]].shape[0]
            if n.op == "avgpool":
                a = n.attrs
                ones = b.const(f"{base}_ones", np.ones((c, 1, *a["kernel"]), np.float32))
                s = b.node("Conv", [x, ones], f"{base}_sum", strides=a["stride"],
                           pads=a["padding"] * 2, group=c)
            else:
                axes = b.const(f"{base}_axes", list(range(2, 2 + len(out_t.shape) - 1)),
                               np.int64)
                s = b.node("ReduceSum", [x, axes], f"{base}_sum", keepdims=1)
            y = _rescale_sum(b, s, n.attrs["m"], n.attrs["sh"], out_t, base)
        elif n.op == "maxpool":
            a = n.attrs
            y = b.node("MaxPool", [ins[0]], f"{base}_max", kernel_shape=a["kernel"],
                       strides=a["stride"], pads=a["padding"] * 2,
                       dilations=a.get("dilation", [1] * len(a["kernel"])))
        elif n.op == "relu":
            y = b.node("Relu", [ins[0]], f"{base}_relu")
        else:
            raise ValueError(f"node {printable(n.name)}: op {n.op} has no ONNX export")
        q[n.output] = _q(b, y, out_t, base, bool(n.attrs.get("relu")) or n.op == "relu")
    (out,) = g.outputs
    y = _dq(b, q[out], g.tensors[out], "output")
    b.nodes.append(helper.make_node("Identity", [y], ["output"], name="output"))
    graph = helper.make_graph(
        b.nodes, safe_ident(g.name),
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", *t_in.shape])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT,
                                       ["N", *g.tensors[out].shape])],
        b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="hannah-hw")
    model.ir_version = 10
    onnx.checker.check_model(model)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return model
