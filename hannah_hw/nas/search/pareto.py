"""Non-dominated sorting and crowding distance (NSGA-II), on objectives to be minimised."""

from __future__ import annotations

import numpy as np


def dominates(a, b, va: float = 0.0, vb: float = 0.0) -> bool:
    """Constraint domination: feasible beats infeasible, less violation beats more."""
    if va != vb:
        return va < vb
    return bool(np.all(a <= b) and np.any(a < b))


def nondominated_sort(F: np.ndarray, violation: np.ndarray | None = None) -> list[list[int]]:
    """Fronts of row indices, best first."""
    n = len(F)
    v = np.zeros(n) if violation is None else np.asarray(violation, float)
    dominated_by = [[] for _ in range(n)]
    count = np.zeros(n, int)
    for i in range(n):
        for j in range(i + 1, n):
            if dominates(F[i], F[j], v[i], v[j]):
                dominated_by[i].append(j)
                count[j] += 1
            elif dominates(F[j], F[i], v[j], v[i]):
                dominated_by[j].append(i)
                count[i] += 1
    fronts, current = [], [i for i in range(n) if count[i] == 0]
    while current:
        fronts.append(current)
        nxt = []
        for i in current:
            for j in dominated_by[i]:
                count[j] -= 1
                if count[j] == 0:
                    nxt.append(j)
        current = sorted(nxt)
    return fronts


def crowding_distance(F: np.ndarray) -> np.ndarray:
    n, m = F.shape
    d = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for k in range(m):
        order = np.argsort(F[:, k], kind="stable")
        span = F[order[-1], k] - F[order[0], k]
        d[order[0]] = d[order[-1]] = np.inf
        if span > 0:
            d[order[1:-1]] += (F[order[2:], k] - F[order[:-2], k]) / span
    return d


def rank_and_crowding(F: np.ndarray, violation: np.ndarray | None = None):
    """Per row: the front index and the crowding distance within that front."""
    rank = np.zeros(len(F), int)
    crowd = np.zeros(len(F))
    for r, front in enumerate(nondominated_sort(F, violation)):
        rank[front] = r
        crowd[front] = crowding_distance(F[front])
    return rank, crowd


def pareto_front(F: np.ndarray) -> list[int]:
    return nondominated_sort(F)[0] if len(F) else []
