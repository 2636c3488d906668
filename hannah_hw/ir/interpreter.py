"""Reference interpreter: runs a QGraph on integer inputs with the numerics of numerics.py."""

from __future__ import annotations

import numpy as np

from . import numerics as nx
from .qgraph import QGraph, QGraphError
from .records import TensorInfo


def quantize_input(g: QGraph, x: np.ndarray, name: str | None = None) -> np.ndarray:
    t = g.tensors[name or g.inputs[0]]
    lo, hi = t.range
    return nx.quantize(x, t.scale, t.zero_point, lo, hi)


def dequantize_output(g: QGraph, y: np.ndarray, name: str | None = None) -> np.ndarray:
    t = g.tensors[name or g.outputs[0]]
    return nx.dequantize(y, t.scale, t.zero_point)


def check_input(g: QGraph, x: np.ndarray, name: str) -> None:
    t = g.tensors[name]
    if tuple(x.shape[1:]) != t.shape:
        raise QGraphError(f"input {name!r} must have shape (N, {', '.join(map(str, t.shape))}), "
                          f"got {tuple(x.shape)}")
    lo, hi = t.range
    if x.size and (x.min() < lo or x.max() > hi):
        raise QGraphError(f"input {name!r}: integer values must lie in [{lo}, {hi}] "
                          f"({t.bits}-bit {'signed' if t.signed else 'unsigned'})")


def _requant(acc, n, out: TensorInfo, m, sh):
    lo, hi = out.range
    if n.attrs.get("relu"):
        lo = max(lo, out.zero_point)
    return nx.requantize(acc, m, sh, lo, hi, out.zero_point, n.attrs.get("rounding", "half_up"))


def run_node(g: QGraph, n, vals: list[np.ndarray]) -> np.ndarray:
    a = n.attrs
    out = g.tensors[n.output]
    ins = [g.tensors[t] for t in n.inputs]
    x = vals[0]
    if n.op == "conv":
        acc = nx.conv(x, g.param(n, "weight"), g.param(n, "bias"), a["stride"], a["padding"],
                      a["dilation"], a["groups"], ins[0].zero_point)
        shape = (1, -1, *([1] * (acc.ndim - 2)))
        return _requant(acc, n, out, g.param(n, "m").reshape(shape),
                        g.param(n, "sh").reshape(shape))
    if n.op == "linear":
        acc = nx.linear(x, g.param(n, "weight"), g.param(n, "bias"), ins[0].zero_point)
        return _requant(acc, n, out, g.param(n, "m"), g.param(n, "sh"))
    if n.op == "add":
        # both branches rescaled to the output scale with one shift, rounded once, saturated
        acc = (x - ins[0].zero_point) * a["m_a"] + (vals[1] - ins[1].zero_point) * a["m_b"]
        return _requant(acc, n, out, 1, a["sh"])
    if n.op in ("avgpool", "global_avgpool"):
        kernel = a["kernel"] if n.op == "avgpool" else list(x.shape[2:])
        stride = a["stride"] if n.op == "avgpool" else kernel
        padding = a["padding"] if n.op == "avgpool" else [0] * len(kernel)
        s = nx.window_sum(x, kernel, stride, padding, ins[0].zero_point)
        return _requant(s, n, out, a["m"], a["sh"])
    if n.op == "maxpool":
        lo = ins[0].range[0]
        dil = a.get("dilation", [1] * len(a["kernel"]))
        return nx.window_max(x, a["kernel"], a["stride"], a["padding"], dil, lo)
    if n.op == "relu":
        return np.maximum(x, ins[0].zero_point)
    raise QGraphError(f"node {n.name}: op {n.op!r} has no interpreter")


def run(g: QGraph, x: np.ndarray | dict[str, np.ndarray], keep: bool = False):
    """Integer outputs (int64) of the graph for an integer input batch. With ``keep``, also
    every intermediate tensor (for layer-by-layer comparison with hardware)."""
    feeds = x if isinstance(x, dict) else {g.inputs[0]: x}
    env: dict[str, np.ndarray] = {}
    for name in g.inputs:
        if name not in feeds:
            raise QGraphError(f"input {name!r} not given")
        v = np.asarray(feeds[name])
        if not np.issubdtype(v.dtype, np.integer):
            raise QGraphError(f"input {name!r} must be integers, got {v.dtype}")
        check_input(g, v, name)
        env[name] = v.astype(np.int64)
    for n in g.nodes:
        env[n.output] = run_node(g, n, [env[t] for t in n.inputs])
    outs = {t: env[t] for t in g.outputs}
    if keep:
        return outs, env
    return outs[g.outputs[0]] if len(outs) == 1 else outs
