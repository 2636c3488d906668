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
import re
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from .numerics import fixed_multiplier
from .onnx_rules import MBITS, _fail, _ints, run_rules
from .qgraph import QGraph, QGraphError, check
from .records import Node, TensorInfo


def _scale(s: float) -> tuple[int, int]:
    """An exact (mantissa, exponent) of a float32 scale."""
    m, e = math.frexp(float(np.float32(s)))
    return int(m * 2 ** 24), e - 24


class _Importer:
    def __init__(self, model: onnx.ModelProto, where: str):
        self.where = where
        self.consts = {}
        tensors = [(f"initializer {i.name!r}", i.name, i) for i in model.graph.initializer]
        tensors += [(f"node {k} Constant ({n.name or n.output[0]})", n.output[0],
                     n.attribute[0].t if n.attribute else None)  # Constants are initializers
                    for k, n in enumerate(model.graph.node) if n.op_type == "Constant"]
        for label, name, t in tensors:
            try:
                self.consts[name] = numpy_helper.to_array(t)
            except Exception as e:  # onnx raises several types for malformed tensors
                raise QGraphError(f"{where}: {label}: its tensor cannot be read "
                                  f"({type(e).__name__}: {str(e).splitlines()[0]})") from None
        self.model = model
        self.q: dict[str, TensorInfo] = {}  # integer activations
        self.alias: dict[str, str] = {}
        self.deq: dict[str, str] = {}  # float tensor -> the integer tensor it dequantises
        self.wdq: dict[str, tuple] = {}  # float constant -> (ints, scale, zp, axis)
        self.pending: dict[str, tuple] = {}  # float result of an op awaiting its Quantize
        self.nodes: list[Node] = []
        self.arrays: dict[str, np.ndarray] = {}
        self.unsupported: list[str] = []
        self.current = ""  # the ONNX node being read, as errors name it
        self.origin: dict[str, str] = {}  # QGraph node name -> the ONNX node it comes from
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
        taken = {n.name for n in self.nodes}
        if name in taken:  # ONNX node names need not be unique; QGraph node names must
            name = next(f"{name}_{i}" for i in range(1, len(taken) + 2)
                        if f"{name}_{i}" not in taken)
        self.origin[name] = self.current
        self.nodes.append(Node(op, name, tuple(self.r(i) for i in inputs), out, attrs,
                               params or {}))

    def weighted(self, node_name, op, x, w, w_scale, w_zp, bias, y_scale, out, attrs,
                 relu=False):
        """Conv or linear with integer weights (out, in, ...), per-channel scales."""
        if np.any(np.asarray(w_zp) != 0):
            raise ValueError("weight zero points must be 0 (symmetric weights)")
        if not np.issubdtype(w.dtype, np.integer) or (w.size and (w.min() < -128 or
                                                                   w.max() > 127)):
            raise ValueError(f"weights must be int8, got {w.dtype} in [{w.min()}, {w.max()}]")
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
        if dims not in (1, 2):
            _fail(self, node, f"weight shape {list(w_shape)}: only 1-D and 2-D convolutions")
        pads = _ints(self, node, "pads", a.get("pads", [0] * 2 * dims), 0, 2 * dims)
        if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            _fail(self, node, "auto_pad is not supported")
        if pads[:dims] != pads[dims:]:
            _fail(self, node, f"asymmetric padding {pads}")
        return {"stride": _ints(self, node, "strides", a.get("strides", [1] * dims), 1, dims),
                "padding": pads[:dims],
                "dilation": _ints(self, node, "dilations", a.get("dilations", [1] * dims), 1,
                                  dims),
                "groups": _ints(self, node, "group", a.get("group", 1), 1, 0)}


def helper_value(attr):
    return onnx.helper.get_attribute_value(attr)


def _fix_input_shape(model: onnx.ModelProto, input_shape: tuple[int, ...] | None,
                     where: str) -> None:
    """Give the input's per-sample axes fixed sizes: the model's, or ``input_shape`` (the
    per-sample shape, without the batch axis) where the model names them (dynamic axes).
    The batch axis may stay dynamic."""
    consts = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in consts]
    if len(inputs) != 1:
        return  # reported after the rules have run
    vi = inputs[0]
    tt = vi.type.tensor_type
    if input_shape is not None and not tt.HasField("shape"):
        tt.shape.dim.add()  # unknown rank: the batch axis, then the given sizes
        for _ in input_shape:
            tt.shape.dim.add()
    if not tt.HasField("shape"):
        raise QGraphError(f"{where}: input {vi.name!r} has no shape; pass --input-shape with "
                          "its per-sample sizes (C,L or C,H,W)")
    dims = list(tt.shape.dim)
    if len(dims) < 2:
        raise QGraphError(f"{where}: input {vi.name!r} has rank {len(dims)}; expected a batch "
                          "axis and 1 to 3 per-sample axes (N, C[, H[, W]])")
    per = dims[1:]
    if input_shape is not None:
        if len(input_shape) != len(per):
            raise QGraphError(f"{where}: --input-shape {','.join(map(str, input_shape))} has "
                              f"{len(input_shape)} sizes; input {vi.name!r} has {len(per)} per "
                              "sample (give them without the batch axis)")
        for i, (d, size) in enumerate(zip(per, input_shape), 1):
            if d.HasField("dim_value") and d.dim_value > 0 and d.dim_value != size:
                raise QGraphError(f"{where}: --input-shape gives axis {i} of input "
                                  f"{vi.name!r} size {size}; the model fixes it at "
                                  f"{d.dim_value}")
            d.dim_value = size  # also clears dim_param (one of)
        return
    dynamic = [(i, d.dim_param or "?") for i, d in enumerate(per, 1)
               if not (d.HasField("dim_value") and d.dim_value > 0)]
    if dynamic:
        i, name = dynamic[0]
        hint = ",".join(str(d.dim_value) if d.dim_value > 0 else (d.dim_param or "?")
                        for d in per)
        raise QGraphError(f"{where}: input {vi.name!r} has a dynamic axis {i} ({name!r}); "
                          f"pass --input-shape with its per-sample sizes ({hint})")


def import_onnx(path: str | Path, input_shape: tuple[int, ...] | None = None) -> QGraph:
    """``input_shape``: the input's per-sample shape (C, L or C, H, W, no batch axis), for
    models whose input axes are dynamic (named)."""
    path = Path(path)
    if not path.is_file():
        raise QGraphError(f"{path}: no such ONNX file")
    try:
        model = onnx.load(str(path))
    except Exception as e:  # onnx raises several unrelated types for corrupt files
        raise QGraphError(f"{path}: not a readable ONNX model ({type(e).__name__}: "
                          f"{str(e).splitlines()[0] if str(e) else ''})") from None
    if input_shape is not None and (not input_shape or any(
            not isinstance(s, int) or s < 1 for s in input_shape)):
        raise QGraphError(f"{path}: --input-shape {input_shape}: sizes must be positive")
    _fix_input_shape(model, input_shape, str(path))
    try:
        model = onnx.shape_inference.infer_shapes(model)
    except Exception as e:
        raise QGraphError(f"{path}: shape inference fails ({type(e).__name__}: "
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
    try:
        check(g, str(path))
    except QGraphError as e:  # name the ONNX node behind the QGraph node, too
        m = re.match(r".*?: node (.+?) \(\w+\): ", str(e))
        if m and imp.origin.get(m.group(1)):
            raise QGraphError(f"{e} [ONNX {imp.origin[m.group(1)]}]") from None
        raise
    return g

