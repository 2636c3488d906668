"""Lowering a calibrated QuantNet to a QGraph: integer weights, biases and requantisation
parameters computed by the very functions the fake-quantisers use."""

from __future__ import annotations

import numpy as np
import torch

from hannah_hw.ir.qgraph import QGraph, check
from hannah_hw.ir.records import Node, TensorInfo

from .layers import QAdd, QAvgPool, QInput, QLayer, QMaxPool, QRelu, QWeighted
from .qnet import QuantNet


def _tensor(layer: QLayer) -> TensorInfo:
    return TensorInfo(tuple(layer.out_shape), layer.bits, layer.signed, 1, -layer.f_out, 0)


def _ints(t: torch.Tensor, dtype) -> np.ndarray:
    return np.rint(t.detach().double().cpu().numpy()).astype(dtype)


@torch.no_grad()
def lower(net: QuantNet, example: torch.Tensor, name: str = "network",
          meta: dict | None = None) -> QGraph:
    """``example`` (a float input batch) fixes the per-layer shapes."""
    net = net.double().eval()
    try:
        net(example[:1].double())
        tensors: dict[str, TensorInfo] = {}
        nodes: list[Node] = []
        arrays: dict[str, np.ndarray] = {}
        for layer in net.layers:
            tensors[layer.name] = _tensor(layer)
            if isinstance(layer, QInput):
                continue
            node = _node(layer, arrays)
            nodes.append(node)
        g = QGraph(name, ("input",), (net.output,), tensors, tuple(nodes), arrays, meta or {})
    finally:
        net.float()
    check(g, name)
    return g


def _node(layer: QLayer, arrays: dict) -> Node:
    attrs: dict = {"relu": bool(layer.relu)}
    params: dict[str, str] = {}
    if isinstance(layer, QWeighted):
        w_int, scale, m, sh = layer.weight_int()
        b_int = layer.bias_int(scale)
        for role, value, dtype in (("weight", w_int, np.int8), ("bias", b_int, np.int64),
                                   ("m", m, np.int64), ("sh", sh, np.int32)):
            key = f"{layer.name}.{role}"
            arrays[key] = _ints(value, dtype)
            params[role] = key
        attrs["wbits"] = layer.wbits
        if layer.op == "conv":
            attrs.update({k: list(v) for k, v in layer.conv.items() if k != "groups"})
            attrs["groups"] = layer.conv["groups"]
        return Node(layer.op, layer.name, tuple(layer.inputs), layer.name, attrs, params)
    if isinstance(layer, QAdd):
        (ma, mb), sh = layer.add_multipliers()
        attrs.update(m_a=ma, m_b=mb, sh=sh)
        return Node("add", layer.name, tuple(layer.inputs), layer.name, attrs)
    if isinstance(layer, QAvgPool):
        m, sh = layer.requant_mul()
        attrs.update(m=m, sh=sh)
        if layer.kernel is None:
            return Node("global_avgpool", layer.name, tuple(layer.inputs), layer.name, attrs)
        attrs.update(kernel=list(layer.kernel), stride=list(layer.stride),
                     padding=list(layer.padding))
        return Node("avgpool", layer.name, tuple(layer.inputs), layer.name, attrs)
    if isinstance(layer, QMaxPool):
        attrs.update(kernel=list(layer.kernel), stride=list(layer.stride),
                     padding=list(layer.padding), dilation=list(layer.dilation))
        return Node("maxpool", layer.name, tuple(layer.inputs), layer.name, attrs)
    if isinstance(layer, QRelu):
        return Node("relu", layer.name, tuple(layer.inputs), layer.name, {})
    raise TypeError(f"cannot lower {type(layer).__name__}")
