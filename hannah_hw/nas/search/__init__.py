"""Hardware-aware architecture search over DSL spaces, persisted in an Optuna study store.

The names below load on first use: the command line imports :mod:`.interrupt` at start-up
to catch signals from the first moment, and must not pay for torch and Optuna then."""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "CostEvaluator": "evaluators", "Evaluator": "evaluators",
    "Constraint": "objectives", "Objective": "objectives", "SearchConfigError": "objectives",
    "run_search": "runner", "run_worker": "runner", "summary": "runner",
    "NSGA2": "strategies", "AgingEvolution": "strategies", "RandomSearch": "strategies",
    "SearchConfig": "study",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
