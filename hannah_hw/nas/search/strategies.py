"""Search strategies. Each proposes the next point from the finished history alone, so any
worker, in any process, after any restart, continues the same search."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

import numpy as np

from hannah_hw.nas.functional_operators.op import BaseNode
from hannah_hw.nas.space import active_parameters, current_values, repair, sample_valid, set_params

from .objectives import Constraint, Objective, total_violation
from .pareto import rank_and_crowding


@dataclasses.dataclass(frozen=True)
class Candidate:
    """A finished evaluation as the strategies see it."""

    number: int
    params: dict[str, Any]
    metrics: dict[str, float]


def arch_key(graph: BaseNode) -> str:
    """Identity of the current network: only parameters on the active path count."""
    values = {k: p.current_value for k, p in active_parameters(graph).items()}
    return hashlib.sha1(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()


class Strategy:
    name = ""

    def __init__(self, objectives: list[Objective], constraints: list[Constraint]):
        self.objectives, self.constraints = objectives, constraints

    def propose(self, graph: BaseNode, history: list[Candidate],
                rng: np.random.Generator) -> dict[str, Any]:
        raise NotImplementedError

    def _losses(self, history):
        F = np.array([[o.loss(c.metrics) for o in self.objectives] for c in history], float)
        v = np.array([total_violation(self.constraints, c.metrics) for c in history], float)
        return F, v

    def _mutate(self, graph, params, rng, rate: float | None = None) -> dict[str, Any]:
        """Resample one active parameter (or each with probability ``rate``), then repair."""
        set_params(graph, params)
        active = active_parameters(graph)
        keys = list(active)
        if rate is None:
            chosen = [keys[int(rng.integers(len(keys)))]] if keys else []
        else:
            chosen = [k for k in keys if rng.random() < rate] or (
                [keys[int(rng.integers(len(keys)))]] if keys else [])
        for k in chosen:
            p, old = active[k], active[k].current_value
            for _ in range(8):
                if p.sample(rng) != old:
                    break
        return repair(graph, rng, keep=frozenset(set(keys) - set(chosen)))


class RandomSearch(Strategy):
    name = "random"

    def propose(self, graph, history, rng):
        return sample_valid(graph, rng)


class AgingEvolution(Strategy):
    """Regularised evolution (Real et al. 2019) on the first objective; constraint violations
    rank a candidate behind every feasible one."""

    name = "aging"

    def __init__(self, objectives, constraints, population: int = 20, sample: int = 5):
        super().__init__(objectives, constraints)
        self.population, self.sample = population, sample

    def propose(self, graph, history, rng):
        if len(history) < self.population:
            return sample_valid(graph, rng)
        alive = history[-self.population:]  # the oldest die first
        F, v = self._losses(alive)
        picks = rng.choice(len(alive), size=min(self.sample, len(alive)), replace=False)
        best = min(picks, key=lambda i: (v[i], F[i, 0]))
        return self._mutate(graph, alive[best].params, rng)


class NSGA2(Strategy):
    """Steady-state NSGA-II: survivors by rank and crowding from all finished candidates,
    parents by binary tournament, uniform crossover, then mutation and repair."""

    name = "nsga2"

    def __init__(self, objectives, constraints, population: int = 20):
        super().__init__(objectives, constraints)
        self.population = population

    def propose(self, graph, history, rng):
        if len(history) < self.population:
            return sample_valid(graph, rng)
        F, v = self._losses(history)
        rank, crowd = rank_and_crowding(F, v)
        order = sorted(range(len(history)), key=lambda i: (rank[i], -crowd[i], i))
        pop = order[: self.population]

        def tournament():
            a, b = rng.choice(pop, size=2, replace=False)
            return a if (rank[a], -crowd[a]) <= (rank[b], -crowd[b]) else b

        p1, p2 = history[tournament()].params, history[tournament()].params
        child = {k: (p1 if rng.random() < 0.5 else p2)[k] for k in p1}
        set_params(graph, child)
        repair(graph, rng)
        n_active = max(1, len(active_parameters(graph)))
        return self._mutate(graph, current_values(graph), rng, rate=1.0 / n_active)


STRATEGIES = {s.name: s for s in (RandomSearch, AgingEvolution, NSGA2)}
