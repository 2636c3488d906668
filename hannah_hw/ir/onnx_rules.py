"""Pattern rules of the ONNX importer: one handler per ONNX op, over the importer's state
(integer tensors, dequantised aliases, float results awaiting their QuantizeLinear)."""

from __future__ import annotations

import dataclasses

import numpy as np
from onnx.helper import get_attribute_value

from hannah_hw.util.names import printable

from .numerics import common_multipliers, fixed_multiplier
from .qgraph import QGraph, QGraphError, infer_shape

MBITS = 31  # fixed-point multipliers of imported graphs (onnxruntime uses float32 scales)


def _attrs(node) -> dict:
    return {a.name: get_attribute_value(a) for a in node.attribute}


def _label(imp, node) -> str:
    """The node as the user finds it in the model: position, op type and name."""
    name = node.name or (node.output[0] if node.output else "")
    return f"node {imp.pos.get(tuple(node.output), '?')} {printable(node.op_type)} " \
        f"({printable(name)})"


def _fail(imp, node, msg: str):
    raise QGraphError(f"{imp.where}: {_label(imp, node)}: {msg}")


def _why(e: Exception) -> str:
    """A rule's exception as the end of a one-line message: ValueErrors say what is wrong,
    other types are malformed nodes."""
    first = str(e).splitlines()[0] if str(e) else ""
    return first if type(e) is ValueError else f"cannot be imported ({type(e).__name__}: {first})"


def _ints(imp, node, name: str, values, lo: int, n: int) -> list[int]:
    """An ONNX attribute of ``n`` integers (a list, or one int when ``n`` is 0), each at
    least ``lo``."""
    if n == 0:
        if not isinstance(values, int) or values < lo:
            _fail(imp, node, f"{name} is {values!r}; must be an integer >= {lo}")
        return int(values)
    if not isinstance(values, (list, tuple)) or not all(isinstance(v, int) for v in values):
        _fail(imp, node, f"{name} is {values!r}; must be a list of integers")
    values = [int(v) for v in values]
    if len(values) != n:
        _fail(imp, node, f"{name} {values} has {len(values)} entries; expected {n}")
    if any(v < lo for v in values):
        _fail(imp, node, f"{name} {values}: every entry must be >= {lo}")
    return values


def scale_const(imp, node, name: str) -> np.ndarray:
    """A quantisation scale: a constant, positive and finite (one per tensor or channel)."""
    s = np.asarray(imp.c(name))
    if not np.issubdtype(s.dtype, np.floating) or s.size == 0:
        _fail(imp, node, f"scale {name!r} is {s.dtype}{list(s.shape)}; must be a float")
    bad = s[~(np.isfinite(s) & (s > 0))]
    if bad.size:
        _fail(imp, node, f"scale {name!r} is {bad.reshape(-1)[0]}; must be positive and finite")
    return s


def zp_const(imp, node, inputs, i: int) -> np.ndarray:
    """An activation zero point: 8-bit, one per tensor; absent means uint8 0, as in ONNX."""
    if len(inputs) <= i or not inputs[i]:
        return np.zeros((), np.uint8)
    zp = np.asarray(imp.c(inputs[i]))
    if zp.dtype not in (np.int8, np.uint8) or zp.size != 1:
        _fail(imp, node, f"zero point {inputs[i]!r} is {zp.dtype}{list(zp.shape)}; activations "
              "need one int8 or uint8 zero point")
    return zp


def _f(x) -> float:
    return float(np.asarray(x).reshape(-1)[0])


def _input(imp, name):
    """The integer tensor behind a float tensor (QDQ) or an integer tensor (QOperator)."""
    name = imp.r(name)
    if name in imp.deq:
        return imp.r(imp.deq[name])
    if name in imp.q:
        return name
    raise KeyError(name)


def _bias_units(imp, bias, x_int, w_scale, o):
    """Bias as integers in accumulator units (s_x * s_w)."""
    if bias is None:
        return None
    ints, scale = bias[0].astype(np.int64), np.asarray(bias[1], np.float64).reshape(-1)
    units = imp.q[x_int].scale * np.broadcast_to(np.asarray(w_scale, np.float64).reshape(-1), (o,))
    if np.allclose(scale, units, rtol=1e-6):
        return ints
    with np.errstate(all="ignore"):
        b = np.round(ints * scale / units)
    if not np.all(np.abs(b) < 2.0 ** 62):  # also NaN
        raise ValueError(f"bias {ints.tolist()[:4]} does not fit the accumulator once rescaled "
                         "to its units (input scale x weight scale)")
    return b.astype(np.int64)


def _pool_attrs(imp, node, kind):
    a = _attrs(node)
    if "kernel_shape" not in a:
        _fail(imp, node, "kernel_shape is missing")
    dims = len(a["kernel_shape"]) if isinstance(a["kernel_shape"], list) else 0
    if dims not in (1, 2):
        _fail(imp, node, f"kernel_shape {a['kernel_shape']!r}: only 1-D and 2-D pooling")
    k = _ints(imp, node, "kernel_shape", a["kernel_shape"], 1, dims)
    pads = _ints(imp, node, "pads", a.get("pads", [0] * 2 * dims), 0, 2 * dims)
    if pads[:dims] != pads[dims:]:
        _fail(imp, node, f"asymmetric padding {pads}")
    if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET") or a.get("ceil_mode", 0):
        _fail(imp, node, "auto_pad and ceil_mode are not supported")
    if kind == "avgpool" and any(pads) and not a.get("count_include_pad", 0):
        _fail(imp, node, "padded average pooling must count the padding (count_include_pad=1)")
    out = {"kernel": k, "stride": _ints(imp, node, "strides", a.get("strides", [1] * dims), 1,
                                        dims), "padding": pads[:dims]}
    if kind == "maxpool":
        out["dilation"] = _ints(imp, node, "dilations", a.get("dilations", [1] * dims), 1, dims)
    elif a.get("dilations", [1] * dims) != [1] * dims:
        _fail(imp, node, f"dilations {a['dilations']!r}: average pooling has none")
    return out


def _emit_add(imp, node, a, b, out, relu):
    """Both branches rescaled to the output with one shared shift, rounded once."""
    t = imp.q[out]
    (ma, mb), sh = common_multipliers([imp.q[a].scale / t.scale, imp.q[b].scale / t.scale],
                                      MBITS)
    imp.emit("add", node.name or out, [a, b], out,
             {"m_a": ma, "m_b": mb, "sh": sh, "relu": relu})


def _finish(imp, pend, out, y_scale, y_zp):
    """Emit the QGraph node of a float op whose result is quantised to ``out``."""
    kind, node = pend[0], pend[1]
    t = imp.qtensor(out, y_scale, y_zp, ())
    if kind == "conv":
        _, _, x, (w, ws, wz, _), bias, relu = pend
        imp.weighted(node.name or out, "conv", x, w, ws, wz,
                     _bias_units(imp, bias, x, ws, w.shape[0]), y_scale, out,
                     imp.conv_attrs(node, w.shape), relu)
    elif kind == "linear":
        _, _, x, (w, ws, wz, _), bias, relu = pend
        imp.weighted(node.name or out, "linear", x, w, ws, wz,
                     _bias_units(imp, bias, x, ws, w.shape[0]), y_scale, out, {}, relu)
    elif kind == "add":
        _, _, a, b, relu = pend
        _emit_add(imp, node, a, b, out, relu)
    elif kind in ("avgpool", "global_avgpool"):
        _, _, x, attrs, relu = pend
        imp.pool_pending.append((out, x, attrs, kind, node))
        imp.emit(kind, node.name or out, [x], out, {**attrs, "relu": relu})
    elif kind == "maxpool":
        _, _, x, attrs, _ = pend
        if abs(imp.q[x].scale - t.scale) > 1e-9 * t.scale or imp.q[x].zero_point != t.zero_point:
            _fail(imp, node, "max pooling changes the scale")
        imp.emit("maxpool", node.name or out, [x], out, attrs)
    elif kind == "relu":
        _, _, x, _ = pend
        if abs(imp.q[x].scale - t.scale) > 1e-9 * t.scale or imp.q[x].zero_point != t.zero_point:
            _fail(imp, node, "ReLU changes the scale")
        imp.emit("relu", node.name or out, [x], out, {})


def quantize_linear(imp, node):
    x, out = node.input[0], node.output[0]
    s, zp = scale_const(imp, node, node.input[1]), zp_const(imp, node, node.input, 2)
    if s.size != 1:
        _fail(imp, node, f"scale {node.input[1]!r} has {s.size} entries; activations are "
              "quantised per tensor")
    xr = imp.r(x)
    if xr in {i.name for i in imp.model.graph.input}:
        imp.input_q = out
        imp.qtensor(out, s, zp, imp.shapes.get(xr, ()))
    elif xr in imp.pending:
        pend = imp.pending.pop(xr)
        imp.current = _label(imp, pend[1])  # the QGraph node comes from the float op
        try:
            _finish(imp, pend, out, s, zp)
        except QGraphError:
            raise
        except (ValueError, IndexError, TypeError) as e:  # e.g. a multiplier out of range
            _fail(imp, pend[1], _why(e))
    elif xr in imp.deq and abs(imp.q[_input(imp, xr)].scale - _f(s)) <= 1e-9 * _f(s):
        imp.alias[out] = _input(imp, xr)
    else:
        imp.unsupported.append(f"{_label(imp, node)}: requantising {x!r}")


def dequantize_linear(imp, node):
    x, out = node.input[0], node.output[0]
    s = scale_const(imp, node, node.input[1])
    if x in imp.consts:
        zp = imp.c(node.input[2]) if len(node.input) > 2 and node.input[2] else 0
        imp.wdq[out] = (imp.consts[x], s, zp, _attrs(node).get("axis", 1))
    else:
        imp.deq[out] = _input(imp, x)


def _weights(imp, name, transpose=False):
    w, s, zp, axis = imp.wdq[imp.r(name)]
    return (w.T if transpose else w), s, zp, axis


def float_op(imp, node):
    op, out = node.op_type, node.output[0]
    ins = [imp.r(i) for i in node.input if i]
    if op == "Relu":
        if ins[0] in imp.pending:
            p = imp.pending[ins[0]]
            imp.pending[out] = (*p[:-1], True)
        else:
            imp.pending[out] = ("relu", node, _input(imp, ins[0]), False)
    elif op == "Conv":
        bias = imp.wdq[ins[2]][:2] if len(ins) > 2 else None
        imp.pending[out] = ("conv", node, _input(imp, ins[0]), _weights(imp, ins[1]), bias, False)
    elif op in ("Gemm", "MatMul"):
        a = _attrs(node)
        if a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0 or a.get("transA", 0):
            _fail(imp, node, "only alpha=beta=1, transA=0")
        w = _weights(imp, ins[1], transpose=not a.get("transB", 0))
        bias = imp.wdq[ins[2]][:2] if len(ins) > 2 else None
        imp.pending[out] = ("linear", node, _input(imp, ins[0]), w, bias, False)
    elif op == "Add":
        if ins[0] in imp.pending and imp.pending[ins[0]][0] == "linear" and ins[1] in imp.wdq:
            p = imp.pending[ins[0]]
            imp.pending[out] = (*p[:4], imp.wdq[ins[1]][:2], p[5])
        else:
            imp.pending[out] = ("add", node, _input(imp, ins[0]), _input(imp, ins[1]), False)
    elif op in ("AveragePool", "GlobalAveragePool"):
        kind = "avgpool" if op == "AveragePool" else "global_avgpool"
        attrs = _pool_attrs(imp, node, kind) if kind == "avgpool" else {}
        imp.pending[out] = (kind, node, _input(imp, ins[0]), attrs, False)
    elif op == "MaxPool":
        x = imp.r(ins[0])
        if x in imp.q:  # integer max pooling (QOperator models)
            imp.alias_q(out, x)
            imp.emit("maxpool", node.name or out, [x], out, _pool_attrs(imp, node, "maxpool"))
        else:
            imp.pending[out] = ("maxpool", node, _input(imp, x), _pool_attrs(imp, node, "maxpool"),
                                False)


def alias(imp, node):
    x, out = imp.r(node.input[0]), node.output[0]
    if node.op_type == "Reshape":
        target = imp.consts.get(node.input[1])
        if target is None or len(target) != 2:
            imp.unsupported.append(f"{_label(imp, node)}: only flattening reshapes")
            return
    for table in (imp.pending, imp.deq, imp.wdq):
        if x in table:
            table[out] = table[x]
            return
    imp.alias[out] = x


def _qop_weighted(imp, node, op):
    i = list(node.input)
    if op == "conv":  # x, xs, xz, w, ws, wz, ys, yz, [B]
        x, w, ws, wz, ys, yz, b = i[0], i[3], i[4], i[5], i[6], i[7], i[8] if len(i) > 8 else None
        wi = imp.c(w)
        attrs = imp.conv_attrs(node, wi.shape)
    elif op == "matmul":  # a, as, az, b, bs, bz, ys, yz
        x, w, ws, wz, ys, yz, b = i[0], i[3], i[4], i[5], i[6], i[7], None
        wi, attrs = imp.c(w).T, {}
    else:  # QGemm: A, as, az, B, bs, bz, C, ys, yz
        a = _attrs(node)
        x, w, ws, wz, b = i[0], i[3], i[4], i[5], (i[6] if len(i) > 6 and i[6] else None)
        ys, yz = i[7], i[8]
        wi = imp.c(w) if a.get("transB", 0) else imp.c(w).T
        attrs = {}
    x = imp.r(x)
    out = node.output[0]
    scale_const(imp, node, i[1])
    imp.qtensor(out, scale_const(imp, node, ys), zp_const(imp, node, [yz], 0), ())
    bias = None if b is None else imp.c(b).astype(np.int64)
    imp.weighted(node.name or out, "conv" if op == "conv" else "linear", x, wi,
                 scale_const(imp, node, ws), imp.c(wz), bias, imp.c(ys), out, attrs)


def qop(imp, node):
    op, i, out = node.op_type, list(node.input), node.output[0]
    if op == "QLinearConv":
        _qop_weighted(imp, node, "conv")
    elif op == "QLinearMatMul":
        _qop_weighted(imp, node, "matmul")
    elif op == "QGemm":
        _qop_weighted(imp, node, "gemm")
    elif op == "QLinearAdd":  # A, As, Az, B, Bs, Bz, Cs, Cz
        scale_const(imp, node, i[1])
        scale_const(imp, node, i[4])
        imp.qtensor(out, scale_const(imp, node, i[6]), zp_const(imp, node, i, 7), ())
        _emit_add(imp, node, imp.r(i[0]), imp.r(i[3]), out, False)
    elif op in ("QLinearAveragePool", "QLinearGlobalAveragePool"):  # X, xs, xz, ys, yz
        kind = "avgpool" if op == "QLinearAveragePool" else "global_avgpool"
        if _attrs(node).get("channels_last", 0):
            _fail(imp, node, "channels_last is not supported")
        scale_const(imp, node, i[1])
        imp.qtensor(out, scale_const(imp, node, i[3]), zp_const(imp, node, i, 4), ())
        x = imp.r(i[0])
        attrs = _pool_attrs(imp, node, "avgpool") if kind == "avgpool" else {}
        imp.pool_pending.append((out, x, attrs, kind, node))
        imp.emit(kind, node.name or out, [x], out, {**attrs, "relu": False})


RULES = {"QuantizeLinear": quantize_linear, "DequantizeLinear": dequantize_linear,
         "Identity": alias, "Flatten": alias, "Reshape": alias, "Squeeze": alias,
         "Constant": lambda imp, node: None}
RULES.update({op: float_op for op in ("Conv", "Gemm", "MatMul", "Add", "AveragePool",
                                      "GlobalAveragePool", "MaxPool", "Relu")})
RULES.update({op: qop for op in ("QLinearConv", "QLinearMatMul", "QGemm", "QLinearAdd",
                                 "QLinearAveragePool", "QLinearGlobalAveragePool")})


def run_rules(imp) -> None:
    imp.pool_pending = []
    imp.input_q = None
    imp.alias_q = lambda out, x: imp.q.__setitem__(out, imp.q[x])
    imp.pos = {tuple(n.output): i for i, n in enumerate(imp.model.graph.node)}  # SSA: unique
    for node in imp.model.graph.node:
        imp.current = _label(imp, node)
        rule = RULES.get(node.op_type)
        if rule is None:
            imp.unsupported.append(_label(imp, node))
            continue
        try:
            rule(imp, node)
        except KeyError as e:
            imp.unsupported.append(f"{_label(imp, node)}: input {e.args[0]!r} is not quantised")
        except QGraphError:
            raise
        except (ValueError, IndexError, TypeError) as e:  # numerics' limits, missing inputs
            _fail(imp, node, _why(e))
    if imp.input_q is None and not imp.unsupported:
        raise QGraphError(f"{imp.where}: the input is never quantised (QuantizeLinear)")
    _infer_shapes(imp)


def _infer_shapes(imp) -> None:
    """Fill in output shapes node by node, then the average-pool multipliers (which need the
    window size)."""
    windows = {out: (x, attrs, kind) for out, x, attrs, kind, _ in imp.pool_pending}
    nodes = []
    for n in imp.nodes:
        g = QGraph("tmp", (imp.input_q,), (), imp.q, (), imp.arrays)
        try:
            if n.output in windows:
                x, attrs, kind = windows[n.output]
                in_shape = imp.q[x].shape
                k = attrs["kernel"] if kind == "avgpool" else list(in_shape[1:])
                ratio = imp.q[x].scale / imp.q[n.output].scale / int(np.prod(k))
                m, sh = fixed_multiplier(ratio, MBITS)
                n = dataclasses.replace(n, attrs={**n.attrs, "m": m, "sh": sh})
            if n.op == "maxpool" and n.output in imp.q and imp.q[n.output] is imp.q[n.inputs[0]]:
                imp.q[n.output] = dataclasses.replace(imp.q[n.inputs[0]])
            shape = infer_shape(g, n)
        except (ValueError, IndexError, KeyError, TypeError) as e:
            raise QGraphError(f"{imp.where}: {imp.origin.get(n.name, n.name)}: {_why(e)}") \
                from None
        if any(s < 1 for s in shape):
            raise QGraphError(f"{imp.where}: {imp.origin.get(n.name, n.name)}: its input "
                              f"{imp.q[n.inputs[0]].shape} is too small for the window "
                              f"(output shape {shape})")
        imp.q[n.output] = dataclasses.replace(imp.q[n.output], shape=shape)
        nodes.append(n)
    imp.nodes = nodes
