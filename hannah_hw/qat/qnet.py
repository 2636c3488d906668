"""QuantNet: the chosen architecture as a chain of quantised layers, built from a trained
BasicExecutor by fusing Conv/Linear + BatchNorm + ReLU (BatchNorm folded into the weights)."""

from __future__ import annotations

import torch
from torch import nn

from hannah_hw.nas.functional_operators.executor import BasicExecutor, _key
from hannah_hw.nas.functional_operators.lazy import lazy
from hannah_hw.nas.functional_operators.op import BaseNode, ChoiceOp, GraphError, Op, Tensor
from hannah_hw.nas.functional_operators.operators import (
    AdaptiveAvgPooling,
    Add,
    AvgPooling,
    BatchNorm,
    Conv1d,
    Conv2d,
    Identity,
    Linear,
    MaxPooling,
    Relu,
)
from hannah_hw.nas.space import active_nodes

from .layers import QAdd, QAvgPool, QConv, QInput, QLayer, QLinear, QMaxPool, QRelu
from .quant import act_exponent

INPUT_BITS = 8
OUTPUT_BITS = 8
BN_EPS = 1e-5


class QuantNet(nn.Module):
    def __init__(self, layers: list[QLayer], output: str):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.output = output

    def set_mode(self, mode: str) -> None:
        for layer in self.layers:
            layer.mode = mode

    def forward(self, x):
        values = {}
        for layer in self.layers:
            args = [values[i] for i in layer.inputs] if layer.inputs else [x]
            values[layer.name] = layer(*args)
        return values[self.output]

    @torch.no_grad()
    def calibrate(self, batches) -> None:
        """Fix every activation exponent from a high quantile of the float values seen."""
        was = self.training
        self.eval()
        self.set_mode("float")
        for layer in self.layers:
            layer.amax = 0.0
        for x in batches:
            self(x)
        by_name = {layer.name: layer for layer in self.layers}
        for layer in self.layers:
            layer.f_in = [by_name[i].f_out for i in layer.inputs]
            if layer.inherits_scale():
                layer.f_out = layer.f_in[0]
            else:
                layer.f_out = act_exponent(layer.amax, layer.bits, layer.signed)
        self.set_mode("quant")
        self.train(was)

    def output_exponent(self) -> int:
        return {layer.name: layer for layer in self.layers}[self.output].f_out

    @torch.no_grad()
    def int_outputs(self, x: torch.Tensor) -> torch.Tensor:
        """The integers this net computes (float64, exact): what the QGraph must reproduce."""
        net = self.double().eval()
        try:
            y = net(x.double()) * 2.0 ** self.output_exponent()
        finally:
            self.float()
        return torch.round(y).to(torch.int64)


def _users(nodes: list[BaseNode]) -> dict[int, list[BaseNode]]:
    active = {id(n) for n in nodes}
    users: dict[int, list[BaseNode]] = {id(n): [] for n in nodes}
    for n in nodes:
        for o in (n.operands[n.selected()],) if isinstance(n, ChoiceOp) else n.operands:
            if id(o) in active:
                users[id(o)].append(n)
    return users


def _per_dim(v, dims):
    v = lazy(v)
    return list(v) if isinstance(v, (tuple, list)) else [v] * dims


def build_qnet(graph: BaseNode, ex: BasicExecutor, wbits: int = 8, abits: int = 8,
               pow2: bool = True) -> QuantNet:
    """Fuse the active path of ``graph`` with the trained weights of ``ex``."""
    for b, what in ((wbits, "weight"), (abits, "activation")):
        if not 2 <= b <= 8:
            raise GraphError(f"{what} bit width must be 2 to 8, got {b}")
    nodes = active_nodes(graph)
    users = _users(nodes)
    value: dict[int, str] = {}
    layers: list[QLayer] = []
    fused: set[int] = set()
    if len(ex.inputs) != 1:
        raise GraphError("lowering supports networks with exactly one input")
    inp = ex.inputs[0]
    layers.append(QInput("input", [], INPUT_BITS, True))
    value[id(inp)] = "input"

    def sole_user(n, cls):
        us = users[id(n)]
        return us[0] if len(us) == 1 and isinstance(us[0], cls) else None

    def layer_bits(n):
        wb, ab = lazy(getattr(n, "weight_bits", None)), lazy(getattr(n, "act_bits", None))
        return int(wb or wbits), int(ab or abits)

    for n in nodes:
        if isinstance(n, Tensor) or id(n) in fused:
            continue
        if isinstance(n, (ChoiceOp, Identity)):
            src = n.operands[n.selected()] if isinstance(n, ChoiceOp) else n.operands[0]
            value[id(n)] = value[id(src)]
            continue
        ins = [value[id(o)] for o in n.operands if not (isinstance(o, Tensor) and o.owner)]
        last = n
        if isinstance(n, (Conv1d, Conv2d, Linear)):
            w = ex.tensor(n.operands[1]).detach().clone()
            if isinstance(n, Linear):
                w = w.t().contiguous()
            b = torch.zeros(w.shape[0])
            bn = sole_user(n, BatchNorm)
            if bn is not None:
                mean, var = (ex.tensor(t).detach() for t in bn.operands[1:3])
                gamma = ex.params[_key(bn.id + ".weight")].detach() if len(bn.operands) == 3 \
                    else ex.tensor(bn.operands[3]).detach()
                beta = ex.params[_key(bn.id + ".bias")].detach() if len(bn.operands) == 3 \
                    else ex.tensor(bn.operands[4]).detach()
                k = gamma / torch.sqrt(var + BN_EPS)
                w = w * k.reshape(-1, *([1] * (w.dim() - 1)))
                b = beta - mean * k
                fused.add(id(bn))
                last = bn
            relu = sole_user(last, Relu)
            if relu is not None:
                fused.add(id(relu))
                last = relu
            wb, ab = layer_bits(n)
            is_out = last is nodes[-1]
            ab = max(ab, OUTPUT_BITS) if is_out else ab
            if isinstance(n, Linear):
                layer = QLinear(n.id, ins, w, b, wb, ab, relu is not None, pow2)
            else:
                dims = n.dims
                layer = QConv(n.id, ins, w, b, wb, ab, relu is not None, pow2,
                              stride=_per_dim(n.stride, dims), padding=_per_dim(n.padding, dims),
                              dilation=_per_dim(n.dilation, dims), groups=int(lazy(n.groups)))
        elif isinstance(n, Add):
            relu = sole_user(n, Relu)
            if relu is not None:
                fused.add(id(relu))
                last = relu
            layer = QAdd(n.id, ins, abits, relu is None, relu is not None)
        elif isinstance(n, (AvgPooling, MaxPooling, AdaptiveAvgPooling, Relu)):
            src = next(ly for ly in layers if ly.name == ins[0])
            layer = _pool_or_relu(n, ins, src)
        elif isinstance(n, BatchNorm):
            raise GraphError(f"{n.id}: a BatchNorm must follow a convolution or linear layer to "
                             "be folded; standalone BatchNorm is not supported in lowering")
        elif isinstance(n, Op):
            raise GraphError(f"{n.id}: {type(n).__name__} cannot be lowered")
        else:
            continue
        layers.append(layer)
        value[id(last)] = layer.name
    return QuantNet(layers, value[id(nodes[-1])])


def _pool_or_relu(n, ins, src: QLayer) -> QLayer:
    if isinstance(n, Relu):
        return QRelu(n.id, ins, src.bits, src.signed)
    dims = len(n.operands[0].shape()) - 2
    if isinstance(n, AdaptiveAvgPooling):
        if any(int(s) != 1 for s in _per_dim(n.output_size, dims)):
            raise GraphError(f"{n.id}: only global average pooling (output size 1) lowers")
        return QAvgPool(n.id, ins, src.bits, src.signed)
    k, s, p = (_per_dim(v, dims) for v in (n.kernel_size, n.stride, n.padding))
    if isinstance(n, AvgPooling):
        return QAvgPool(n.id, ins, src.bits, src.signed, k, s, p)
    return QMaxPool(n.id, ins, src.bits, src.signed, k, s, p, _per_dim(n.dilation, dims))
