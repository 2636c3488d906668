"""Graph nodes of a search space: tensors, operators, choices, and scopes that name them.

Names follow HANNAH: an operator is ``<Op>_<n>`` with ``n`` counted among the nodes it is
connected to, a scope prefixes every node it created with ``<function>_<n>.``, and a weight
tensor lives under its operator (``space_0.Conv2d_0.weight``). Counters are read off the graph
itself, so nothing is global: two spaces built in one process never see each other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import wraps
from typing import Any

from hannah_hw.nas.expressions.choice import Choice
from hannah_hw.nas.expressions.core import Expression
from hannah_hw.nas.parameters.parameters import IntScalarParameter

from .data_type import FloatType
from .lazy import lazy

FLOAT32 = FloatType()


class GraphError(ValueError):
    """A search space that cannot be built or run (wrong operands, shapes that do not fit)."""


def get_nodes(node: BaseNode) -> Iterator[BaseNode]:
    """Every node the given node depends on, itself first (depth first, each once)."""
    stack, seen = [node], {id(node)}
    while stack:
        n = stack.pop()
        yield n
        for o in n.operands:
            if id(o) not in seen:
                seen.add(id(o))
                stack.append(o)


def nodes_in_scope(node: BaseNode, inputs: list) -> Iterator[BaseNode]:
    stop = {id(i) for i in inputs}
    stack, seen = [node], {id(node)}
    while stack:
        n = stack.pop()
        if id(n) in stop:
            continue
        yield n
        for o in n.operands:
            if id(o) not in seen:
                seen.add(id(o))
                stack.append(o)


def _component(start: list) -> Iterator[BaseNode]:
    """Nodes connected to ``start`` through operands or users (siblings included)."""
    stack, seen = list(start), {id(s) for s in start}
    while stack:
        n = stack.pop()
        yield n
        for o in (*n.operands, *n.users):
            if id(o) not in seen:
                seen.add(id(o))
                stack.append(o)


def highest_counter(start: list, name: str) -> int:
    """The largest ``n`` of a top-level ``<name>_<n>`` among the connected nodes, else -1."""
    ct = -1
    for n in _component(start):
        head = n.id.split(".")[0]
        stem, _, num = head.rpartition("_")
        if stem == name and num.isdigit():
            ct = max(ct, int(num))
    return ct


def scope(function: Callable) -> Callable:
    """Prefix the ids of all nodes created by ``function`` with ``<function>_<n>.``."""

    @wraps(function)
    def set_scope(*args, **kwargs):
        out = function(*args, **kwargs)
        if not isinstance(out, BaseNode):
            raise GraphError(f"scope {function.__name__} must return a node, got {out!r}")
        inputs = [a for a in (*args, *kwargs.values()) if isinstance(a, BaseNode)]
        ct = highest_counter(inputs, function.__name__) + 1 if inputs else 0
        for n in nodes_in_scope(out, inputs):
            n.id = f"{function.__name__}_{ct}.{n.id}"
        return out

    return set_scope


def search_space(function: Callable) -> Callable:
    """A scope that is a whole space: calling it returns the output node, ready to sample."""
    scoped = scope(function)

    @wraps(function)
    def build(*args, **kwargs):
        from hannah_hw.nas.space import finalize

        return finalize(scoped(*args, **kwargs), function, args, kwargs)

    build._search_space = True
    build._function = function
    return build


class BaseNode:
    """A node of the data-flow graph; the output node also answers for the whole space."""

    _attrs: tuple[str, ...] = ()

    def __init__(self, name: str):
        self.name = name
        self.id = name
        self.operands: list[BaseNode] = []
        self.users: list[BaseNode] = []
        self._conditions: list[Expression] = []

    def shape(self) -> tuple:
        raise NotImplementedError

    def size(self, axis: int):
        return self.shape()[axis]

    def slots(self) -> list[tuple[str, Any]]:
        """(name, value) of everything here that may hold parameters."""
        return [(a, getattr(self, a)) for a in self._attrs]

    def structural_conditions(self) -> list[tuple[str, Expression]]:
        """Conditions every valid point must meet for this node to be buildable."""
        return []

    def cond(self, condition: Expression) -> BaseNode:
        """Add a user constraint on the space (checked when this node is in the network)."""
        if not isinstance(condition, Expression):
            raise GraphError(f"{self.id}.cond() needs an expression, got {condition!r}")
        self._conditions.append(condition)
        return self

    # the whole space, seen from its output node
    def parametrization(self, include_empty: bool = False, flatten: bool = False) -> dict:
        from hannah_hw.nas.space import parametrization

        return parametrization(self, include_empty=include_empty, flatten=flatten)

    def sample(self, rng=None) -> dict:
        from hannah_hw.nas.space import sample_valid

        return sample_valid(self, rng)

    def set_params(self, values: dict | None = None, **kwargs) -> None:
        from hannah_hw.nas.space import set_params

        set_params(self, {**(values or {}), **kwargs})


class Tensor(BaseNode):
    """A graph input or a learnable/buffered tensor; ``None`` sizes are free (e.g. batch)."""

    def __init__(self, name: str, shape=(), axis=(), dtype=FLOAT32, grad: bool = False):
        super().__init__(name)
        if len(axis) not in (0, len(shape)):
            raise GraphError(f"Tensor {name}: {len(shape)} sizes but {len(axis)} axis names")
        self._shape = tuple(shape)
        self.axis = tuple(axis) or tuple(f"d{i}" for i in range(len(shape)))
        self.dtype = dtype
        self.grad = grad
        self.owner: Op | None = None

    def shape(self) -> tuple:
        return self._shape

    def current_shape(self) -> tuple:
        return tuple(lazy(s) for s in self._shape)

    def slots(self):
        return list(zip(self.axis, self._shape))

    def __repr__(self) -> str:
        return f"Tensor({self.id})"


class Op(BaseNode):
    """An operator; calling it with operands connects it into the graph."""

    n_operands: tuple[int, int] = (1, 1)
    operand_names: tuple[str, ...] = ("input",)
    owned_operands: tuple[int, ...] = ()  # operand positions holding this op's own tensors

    def __init__(self, name: str | None = None):
        super().__init__(name or type(self).__name__)
        self._shape: tuple | None = None

    def __call__(self, *operands: BaseNode) -> Op:
        lo, hi = self.n_operands
        if not lo <= len(operands) <= hi:
            names = ", ".join(self.operand_names)
            raise GraphError(
                f"{self.name} takes {lo}..{hi} operands ({names}), got {len(operands)}")
        for o in operands:
            if not isinstance(o, BaseNode):
                raise GraphError(f"{self.name}: operand {o!r} is not a Tensor or an Op")
        ct = highest_counter(list(operands), self.name) + 1
        self.id = f"{self.name}_{ct}"
        for i, o in enumerate(operands):
            self.operands.append(o)
            o.users.append(self)
            if i in self.owned_operands and isinstance(o, Tensor):
                o.id = f"{self.id}.{o.id}"
                o.owner = self
        self._connected()
        return self

    def _connected(self) -> None:
        """Hook: derive attributes from the operands once connected."""

    def shape(self) -> tuple:
        if self._shape is None:
            self._shape = tuple(self.shape_fun())
        return self._shape

    def shape_fun(self) -> tuple:
        raise NotImplementedError

    def macs(self):
        """Multiply-accumulates per sample, as an expression."""
        return 0

    def forward(self, *values):
        return self._forward_implementation(*values)

    def _forward_implementation(self, *values):
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.id})"


class ChoiceOp(Op):
    """One of several alternatives, picked by ``switch`` (an int parameter by default).

    Options are callables (ops, scopes, partials) applied to the operands, or nodes that
    already exist; ``ChoiceOp(exit0, exit1, switch=depth)()`` is the dynamic-depth form.
    """

    n_operands = (0, 64)
    _attrs = ("switch",)

    def __init__(self, *options, switch: Expression | int | None = None):
        super().__init__("ChoiceOp")
        if not options:
            raise GraphError("ChoiceOp needs at least one option")
        self.options = list(options)
        self.switch = switch if switch is not None else IntScalarParameter(
            0, len(options) - 1, name="choice")

    def __call__(self, *operands):
        built = []
        for opt in self.options:
            node = opt if isinstance(opt, BaseNode) and (opt.operands or isinstance(opt, Tensor)
                                                         or not operands) else opt(*operands)
            if not isinstance(node, BaseNode):
                raise GraphError(f"ChoiceOp option {opt!r} did not build a node")
            built.append(node)
        self.options = built
        return super().__call__(*built)

    def slots(self):
        return [("choice", self.switch)]

    def selected(self) -> int:
        return int(lazy(self.switch))

    def structural_conditions(self):
        n = len(self.options)
        return [(f"{self.id}: switch in 0..{n - 1}", (self.switch >= 0) & (self.switch < n))]

    def shape_fun(self):
        shapes = [o.shape() for o in self.options]
        if len({len(s) for s in shapes}) != 1:
            raise GraphError(f"{self.id}: options have different ranks {shapes}")
        return tuple(Choice([s[d] for s in shapes], self.switch) for d in range(len(shapes[0])))

    def _forward_implementation(self, *values):
        return values[self.selected()]


class OptionalOp(ChoiceOp):
    """Either ``node`` (choice 0) or a bypass (choice 1)."""

    def __init__(self, node, switch: Expression | None = None):
        super().__init__(node, switch=switch if switch is not None else IntScalarParameter(
            0, 1, name="choice"))

    def __call__(self, *operands):
        from .operators import Identity

        self.options.append(Identity())
        return super().__call__(*operands)
