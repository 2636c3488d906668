"""Quantised ONNX -> QGraph. Reads the QDQ models of ``onnxruntime.quantization`` (per-tensor
and per-channel weights) and QOperator models (QLinearConv, QLinearMatMul, QGemm, QLinearAdd,
QLinear(Global)AveragePool). Scales become 31-bit fixed-point multipliers with one rounding,
half to even as ONNX rounds (the imported nodes say so in ``rounding``), so the result matches
onnxruntime's float-multiplier kernels on nearly every integer.

What it matches: onnxruntime's integer kernels and its QDQ reference. Known gap: onnxruntime's
AVX2 u8s8 kernels saturate 16-bit pair sums (its docs advise ``reduce_range`` for uint8
activations with int8 weights); such models disagree with any exact integer model, this one
included."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from .numerics import fixed_multiplier
from .onnx_rules import MBITS, run_rules
from .qgraph import Node, QGraph, QGraphError, TensorInfo, check


def _scale(s: float) -> tuple[int, int]:
    """An exact (mantissa, exponent) of a float32 scale."""
    m, e = math.frexp(float(np.float32(s)))
    return int(m * 2 ** 24), e - 24


class _Importer:
    def __init__(self, model: onnx.ModelProto, where: str):
        self.where = where
        self.consts = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
        for n in model.graph.node:  # Constant nodes are initializers too
            if n.op_type == "Constant":
                self.consts[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
        self.model = model
        self.q: dict[str, TensorInfo] = {}  # integer activations
        self.alias: dict[str, str] = {}
        self.deq: dict[str, str] = {}  # float tensor -> the integer tensor it dequantises
        self.wdq: dict[str, tuple] = {}  # float constant -> (ints, scale, zp, axis)
        self.pending: dict[str, tuple] = {}  # float result of an op awaiting its Quantize
        self.nodes: list[Node] = []
        self.arrays: dict[str, np.ndarray] = {}
        self.unsupported: list[str] = []
        self.shapes: dict[str, tuple] = {}

    # helpers
    def c(self, name: str) -> np.ndarray:
        if name not in self.consts:
            raise QGraphError(f"{self.where}: {name!r} must be a constant")
        return self.consts[name]

    def r(self, name: str) -> str:
        while name in self.alias:
            name = self.alias[name]
        return name

    def qtensor(self, name, scale, zp, shape=()) -> TensorInfo:
        zp = np.asarray(zp)
        m, e = _scale(float(np.asarray(scale).reshape(-1)[0]))
        t = TensorInfo(tuple(int(s) for s in shape), 8, zp.dtype == np.int8, m, e,
                       int(zp.reshape(-1)[0]) if zp.size else 0)
        self.q[name] = t
        return t

    def shape_of(self, name):
        return self.shapes[self.r(name)]

    # emission
    def emit(self, op, name, inputs, out, attrs, params=None):
        attrs = {**attrs, "rounding": "half_even"} if op != "maxpool" else attrs
        self.nodes.append(Node(op, name, tuple(self.r(i) for i in inputs), out, attrs,
                               params or {}))

    def weighted(self, node_name, op, x, w, w_scale, w_zp, bias, y_scale, out, attrs,
                 relu=False):
        """Conv or linear with integer weights (out, in, ...), per-channel scales."""
        if np.any(np.asarray(w_zp) != 0):
            raise QGraphError(f"{self.where}: node {node_name}: weight zero points must be 0 "
                              "(symmetric weights)")
        xs = self.q[self.r(x)].scale
        o = w.shape[0]
        ws = np.broadcast_to(np.asarray(w_scale, np.float64).reshape(-1), (o,))
        ratios = xs * ws / float(np.asarray(y_scale).reshape(-1)[0])
        ms, shs = zip(*(fixed_multiplier(r, MBITS) for r in ratios))
        b = np.zeros(o, np.int64) if bias is None else np.asarray(bias)
        prefix = f"{out}."
        for role, v, dt in (("weight", w, np.int8), ("bias", b, np.int64), ("m", ms, np.int64),
                            ("sh", shs, np.int32)):
            self.arrays[prefix + role] = np.asarray(v).astype(dt)
        self.emit(op, node_name, [x], out, {**attrs, "relu": relu, "wbits": 8},
                  {k: prefix + k for k in ("weight", "bias", "m", "sh")})

    def conv_attrs(self, node, w_shape):
        a = {at.name: helper_value(at) for at in node.attribute}
        dims = len(w_shape) - 2
        pads = a.get("pads", [0] * 2 * dims)
        if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            raise QGraphError(f"{self.where}: node {node.name}: auto_pad is not supported")
        if list(pads[:dims]) != list(pads[dims:]):
            raise QGraphError(f"{self.where}: node {node.name}: asymmetric padding {pads}")
        return {"stride": list(a.get("strides", [1] * dims)), "padding": list(pads[:dims]),
                "dilation": list(a.get("dilations", [1] * dims)), "groups": a.get("group", 1)}


def helper_value(attr):
    return onnx.helper.get_attribute_value(attr)


def import_onnx(path: str | Path) -> QGraph:
    path = Path(path)
    if not path.is_file():
        raise QGraphError(f"{path}: no such ONNX file")
    try:
        model = onnx.load(str(path))
        model = onnx.shape_inference.infer_shapes(model)
    except Exception as e:  # onnx raises several unrelated types for corrupt files
        raise QGraphError(f"{path}: not a readable ONNX model ({type(e).__name__}: "
                          f"{str(e).splitlines()[0] if str(e) else ''})") from None
    imp = _Importer(model, str(path))
    for vi in (*model.graph.value_info, *model.graph.input, *model.graph.output):
        dims = [d.dim_value for d in vi.type.tensor_type.shape.dim]
        imp.shapes[vi.name] = tuple(dims[1:])
    run_rules(imp)
    if imp.unsupported:
        raise QGraphError(f"{path}: unsupported: {'; '.join(imp.unsupported)}")
    inputs = [i.name for i in model.graph.input if i.name not in imp.consts]
    if len(inputs) != 1 or len(model.graph.output) != 1:
        raise QGraphError(f"{path}: exactly one input and one output are supported")
    q_in = imp.input_q
    out = imp.r(model.graph.output[0].name)
    out = imp.r(imp.deq.get(out, out))
    if out not in imp.q:
        raise QGraphError(f"{path}: the output {model.graph.output[0].name!r} is not a "
                          "dequantised integer tensor")
    g = QGraph(path.stem, (q_in,), (out,), dict(imp.q), tuple(imp.nodes), imp.arrays,
               {"source": str(path), "imported": "onnx"})
    check(g, str(path))
    return g

