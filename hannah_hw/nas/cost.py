"""Symbolic cost of the chosen architecture: MACs, weight count, peak activation memory.

Each is an expression of the space's parameters (usable in ``cond`` and ``lazy``) whose value
is computed over the nodes the current choices make active.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from hannah_hw.nas.expressions.core import Expression
from hannah_hw.nas.functional_operators.lazy import lazy
from hannah_hw.nas.functional_operators.op import BaseNode, ChoiceOp, Op, Tensor
from hannah_hw.nas.functional_operators.operators import Conv1d, Conv2d, Identity, Linear
from hannah_hw.nas.space import active_nodes, active_parameters


class GraphMetric(Expression):
    def __init__(self, graph: BaseNode, name: str, fn: Callable[[BaseNode], int]):
        self.graph, self.name, self.fn = graph, name, fn

    def children(self):
        return tuple(active_parameters(self.graph).values())

    def _eval(self):
        return self.fn(self.graph)

    def _str(self):
        return f"{self.name}({self.graph.id})"

    __repr__ = _str


def _elements(shape) -> int:
    """Elements per sample (the batch axis excluded)."""
    return math.prod(int(lazy(s)) for s in shape[1:])


def _macs(graph: BaseNode) -> int:
    return sum(int(lazy(n.macs())) for n in active_nodes(graph) if isinstance(n, Op))


def _weights(graph: BaseNode) -> int:
    return sum(math.prod(int(lazy(s)) for s in n.operands[1].shape())
               for n in active_nodes(graph) if isinstance(n, (Conv1d, Conv2d, Linear)))


def _peak_memory(graph: BaseNode) -> int:
    """Largest sum of live activations (elements) while running the layers in order."""
    nodes = [n for n in active_nodes(graph) if isinstance(n, Op) or n.owner is None]
    alias = {}

    def root(n):
        while id(n) in alias:
            n = alias[id(n)]
        return n

    for n in nodes:  # choices and identities pass their input through, no new buffer
        if isinstance(n, ChoiceOp):
            alias[id(n)] = n.operands[n.selected()]
        elif isinstance(n, Identity):
            alias[id(n)] = n.operands[0]
    last_use = {}
    for i, n in enumerate(nodes):
        for o in n.operands:
            if isinstance(o, Op) or (isinstance(o, Tensor) and o.owner is None):
                last_use[id(root(o))] = i
    last_use[id(root(graph))] = len(nodes)
    live: dict[int, int] = {}
    peak = 0
    for i, n in enumerate(nodes):
        if root(n) is n:
            live[id(n)] = _elements(n.shape())
        peak = max(peak, sum(live.values()))
        live = {k: v for k, v in live.items() if last_use.get(k, -1) > i}
    return peak


def macs(graph: BaseNode) -> GraphMetric:
    return GraphMetric(graph, "macs", _macs)


def weights(graph: BaseNode) -> GraphMetric:
    return GraphMetric(graph, "weights", _weights)


def peak_memory(graph: BaseNode) -> GraphMetric:
    return GraphMetric(graph, "peak_memory", _peak_memory)


def cost_metrics(graph: BaseNode) -> dict[str, int]:
    return {"macs": _macs(graph), "weights": _weights(graph), "peak_memory": _peak_memory(graph)}
