"""Whole-space operations on a graph given by its output node: naming parameters, the active
path through choices, constraints, and sampling that only returns valid points."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from hannah_hw.nas.expressions.core import Condition, Expression, evaluate
from hannah_hw.nas.functional_operators.op import BaseNode, ChoiceOp, GraphError, Tensor
from hannah_hw.nas.parameters.parameters import InvalidValueError, Parameter, all_values


class SamplingError(RuntimeError):
    """No valid point was found."""


def topo_nodes(out: BaseNode) -> list[BaseNode]:
    """All nodes, operands before users, in a deterministic order (cached once finalized)."""
    cached = getattr(out, "_space_topo", None)
    if cached is not None:
        return cached
    order, seen = [], set()
    stack: list[tuple[BaseNode, bool]] = [(out, False)]
    while stack:
        n, done = stack.pop()
        if done:
            order.append(n)
            continue
        if id(n) in seen:
            continue
        seen.add(id(n))
        stack.append((n, True))
        stack.extend((o, False) for o in reversed(n.operands) if id(o) not in seen)
    return order


def _slot_params(node: BaseNode):
    for slot, value in node.slots():
        params = value.parameters() if isinstance(value, Expression) else [
            p for v in (value if isinstance(value, (tuple, list)) else ())
            if isinstance(v, Expression) for p in v.parameters()]
        for p in params:
            yield slot, p


def finalize(out: BaseNode, function, args, kwargs) -> BaseNode:
    """Give every parameter its id ``<node id>.<name>`` (the first node that reads it)."""
    if not isinstance(out, BaseNode):
        raise GraphError(f"search space {function.__name__} must return a node, got {out!r}")
    params: dict[str, Parameter] = {}
    seen: set[int] = set()
    for node in topo_nodes(out):
        for slot, p in _slot_params(node):
            if id(p) in seen:
                continue
            seen.add(id(p))
            key = base = f"{node.id}.{p.name or slot}"
            k = 1
            while key in params:
                key, k = f"{base}_{k}", k + 1
            p.id = key
            params[key] = p
    out._space_params = params
    out._space_topo = topo_nodes(out)
    out._space_function = function
    out._space_args = (args, kwargs)
    return out


def _params(out: BaseNode) -> dict[str, Parameter]:
    if not hasattr(out, "_space_params"):
        finalize(out, type("anonymous", (), {"__name__": "anonymous"}), (), {})
    return out._space_params


def parametrization(out: BaseNode, include_empty: bool = False, flatten: bool = False) -> dict:
    params = dict(_params(out))
    if flatten:
        return params
    nested: dict[str, Any] = {}
    for key, p in params.items():
        *path, leaf = key.split(".")
        d = nested
        for part in path:
            d = d.setdefault(part, {})
        d[leaf] = p
    return nested


def fingerprint(out: BaseNode) -> str:
    """Identifies the space's parameters and domains, to refuse a stale ArchSpec."""
    text = "\n".join(f"{k}: {p.domain()}" for k, p in sorted(_params(out).items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def active_nodes(out: BaseNode) -> list[BaseNode]:
    """Nodes the current choices use, in topological order."""
    active, stack = {id(out)}, [out]
    while stack:
        n = stack.pop()
        ops = [n.operands[n.selected()]] if isinstance(n, ChoiceOp) else n.operands
        for o in ops:
            if id(o) not in active:
                active.add(id(o))
                stack.append(o)
    return [n for n in topo_nodes(out) if id(n) in active]


def active_parameters(out: BaseNode) -> dict[str, Parameter]:
    """Parameters that change the current network (others sit in unchosen branches)."""
    ids = {id(p) for n in active_nodes(out) for _, p in _slot_params(n)}
    return {k: p for k, p in _params(out).items() if id(p) in ids}


def constraints(out: BaseNode) -> list[tuple[str, Any]]:
    """(description, condition) for every constraint of the current network."""
    result = []
    for n in active_nodes(out):
        if "_structural" not in n.__dict__:
            n._structural = n.structural_conditions()
        result += n._structural
        result += [(f"{n.id}: {c!r}", c) for c in n._conditions]
    return result


def _amount(cond) -> float:
    """How far a condition is from holding: 0 when it holds, else at least 1 (plus the
    relative distance for comparisons, so a local search can tell better from worse)."""
    try:
        if not isinstance(cond, Expression):
            return 0.0 if cond else 1.0
        if cond.evaluate():
            return 0.0
        if isinstance(cond, Condition):
            lhs, rhs = float(evaluate(cond.lhs)), float(evaluate(cond.rhs))
            return 1.0 + abs(lhs - rhs) / max(abs(rhs), abs(lhs), 1.0)
        return 1.0
    except (ZeroDivisionError, ValueError, IndexError, TypeError, OverflowError):
        return 1.0


def violations(out: BaseNode) -> list[tuple[str, Any]]:
    return [(d, c) for d, c in constraints(out) if _amount(c) > 0]


def _score(out: BaseNode) -> float:
    return sum(_amount(c) for _, c in constraints(out))


def current_values(out: BaseNode) -> dict[str, Any]:
    return {k: _plain(p.current_value) for k, p in _params(out).items()}


def _plain(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, tuple):
        return list(v)
    return v


def set_params(out: BaseNode, values: dict[str, Any]) -> None:
    params = _params(out)
    unknown = [k for k in values if k not in params]
    if unknown:
        raise InvalidValueError(f"unknown parameter(s) {', '.join(unknown)}; the space has "
                                f"{', '.join(params) or 'no parameters'}")
    for k, v in values.items():
        params[k].set_current(v)


def sample_valid(out: BaseNode, rng=None, max_tries: int = 400) -> dict[str, Any]:
    """Sample all parameters, then resample only those in violated constraints until valid."""
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    params = _params(out)
    for p in params.values():
        p.sample(rng)
    return repair(out, rng, max_tries)


def repair(out: BaseNode, rng: np.random.Generator, max_tries: int = 400,
           keep: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Make the current point valid by min-conflicts local search: take a parameter of a
    violated constraint and give it the value that violates least; restart now and then.
    Parameters in ``keep`` move only when nothing else can."""
    params = _params(out)
    for attempt in range(max_tries):
        bad = violations(out)
        if not bad:
            return current_values(out)
        if attempt and attempt % 40 == 0:  # stuck in a local minimum: restart
            for k, p in params.items():
                if k not in keep:
                    p.sample(rng)
            continue
        culprits = {id(p): p for _, c in bad if isinstance(c, Expression) for p in c.parameters()}
        movable = [p for p in culprits.values() if p.id not in keep] or list(culprits.values())
        if not movable:
            break
        p = movable[int(rng.integers(len(movable)))]
        if rng.random() < 0.1:
            p.sample(rng)
            continue
        scored = []
        for v in all_values(p, limit=16):
            p.set_current(v)
            scored.append((_score(out), rng.random(), v))
        p.set_current(min(scored, key=lambda t: (t[0], t[1]))[2])
    bad = violations(out)
    if not bad:
        return current_values(out)
    raise SamplingError(f"no valid point found in {max_tries} steps; still violated: "
                        f"{'; '.join(d for d, _ in bad[:3])}")


def graph_inputs(out: BaseNode) -> list[Tensor]:
    """Tensors the network is fed with: leaves not owned by an operator."""
    return [n for n in topo_nodes(out) if isinstance(n, Tensor) and n.owner is None]


def space_size(out: BaseNode) -> float:
    """Number of points in the product of the parameter domains (before constraints)."""
    size = 1.0
    for p in _params(out).values():
        size *= p.cardinality()
    return size
