"""Run the currently chosen architecture of a space as a ``torch.nn.Module``."""

from __future__ import annotations

import math

import torch
from torch import nn

from hannah_hw.nas.space import active_nodes, graph_inputs, topo_nodes

from .lazy import lazy
from .op import BaseNode, ChoiceOp, GraphError, Tensor
from .operators import BatchNorm


def _key(node_id: str) -> str:
    return node_id.replace(".", "__")


class BasicExecutor(nn.Module):
    """Owns a parameter or buffer for every weight tensor of the space (all branches), and
    runs the active path. A space with several inputs takes a tuple, in the order the space
    created them.

    Shapes are checked against the space's symbolic shapes on every call, so a mismatch is an
    error naming the node and both shapes rather than a torch error from deep inside.
    """

    def __init__(self, graph: BaseNode, init: bool = True):
        super().__init__()
        self.graph = graph
        self.nodes = topo_nodes(graph)
        self.inputs = graph_inputs(graph)
        self.params = nn.ParameterDict()
        for n in self.nodes:
            if isinstance(n, Tensor) and n.owner is not None:
                self._make_tensor(n)
            if isinstance(n, BatchNorm) and n.affine and len(n.operands) == 3:
                c = int(lazy(n.operands[0].shape()[1]))
                self.params[_key(n.id + ".weight")] = nn.Parameter(torch.ones(c))
                self.params[_key(n.id + ".bias")] = nn.Parameter(torch.zeros(c))
        if init:
            self.initialize()

    def _make_tensor(self, t: Tensor) -> None:
        shape = t.current_shape()
        if t.grad:
            self.params[_key(t.id)] = nn.Parameter(torch.empty(shape))
        else:
            fill = torch.ones if t.owner.operand_names[t.owner.operands.index(t)] in (
                "running_var", "weight") else torch.zeros
            self.register_buffer(_key(t.id), fill(shape))

    def initialize(self) -> None:
        """He-uniform like torch's default layers; conv/linear fan-in from the layout."""
        for n in self.nodes:
            if isinstance(n, Tensor) and n.grad and n.owner is not None:
                w = self.params[_key(n.id)]
                if w.dim() == 1:
                    continue
                fan_in = w.shape[0] if w.dim() == 2 else math.prod(w.shape[1:])
                bound = 1.0 / math.sqrt(fan_in)
                with torch.no_grad():
                    w.uniform_(-bound, bound)

    def train(self, mode: bool = True):
        for n in self.nodes:
            if isinstance(n, BatchNorm):
                n.training = mode
        return super().train(mode)

    def tensor(self, t: Tensor) -> torch.Tensor:
        return self.params[_key(t.id)] if t.grad else getattr(self, _key(t.id))

    def forward(self, x):
        inputs = tuple(x) if isinstance(x, (tuple, list)) else (x,)
        if len(inputs) != len(self.inputs):
            raise GraphError(f"the network takes {len(self.inputs)} input(s) "
                             f"({', '.join(t.id for t in self.inputs)}), got {len(inputs)}")
        values = {}
        for t, x in zip(self.inputs, inputs):
            self._check(t, x, "input")
            values[id(t)] = x
        for n in active_nodes(self.graph):
            if id(n) in values:
                continue
            if isinstance(n, Tensor):
                values[id(n)] = self.tensor(n)
                continue
            if isinstance(n, ChoiceOp):
                values[id(n)] = values[id(n.operands[n.selected()])]
                continue
            args = [values[id(o)] for o in n.operands]
            if isinstance(n, BatchNorm) and n.affine and len(n.operands) == 3:
                args += [self.params[_key(n.id + ".weight")], self.params[_key(n.id + ".bias")]]
            try:
                out = n.forward(*args)
            except RuntimeError as e:
                shapes = ", ".join(f"{o.id} {tuple(v.shape)}" for o, v in zip(n.operands, args))
                raise GraphError(f"{n.id}: operands do not fit ({shapes}): "
                                 f"{str(e).splitlines()[0]}") from None
            self._check(n, out, "output")
            values[id(n)] = out
        return values[id(self.graph)]

    @staticmethod
    def _check(node: BaseNode, value, what: str) -> None:
        if isinstance(value, torch.fx.Proxy):
            return
        expected = tuple(lazy(node.shape()))
        got = tuple(value.shape)
        # the batch axis (0) is free
        if len(expected) != len(got) or any(e != g for e, g in zip(expected[1:], got[1:])):
            raise GraphError(f"{node.id}: {what} shape {got} does not match the space's shape "
                             f"{expected}")
