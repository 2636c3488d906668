"""Hardware-aware architecture search over DSL spaces, persisted in an Optuna study store."""

from .evaluators import CostEvaluator, Evaluator, TrainEvaluator
from .objectives import Constraint, Objective, SearchConfigError
from .runner import run_search, run_worker, summary
from .strategies import NSGA2, AgingEvolution, RandomSearch
from .study import SearchConfig

__all__ = [
    "NSGA2", "AgingEvolution", "Constraint", "CostEvaluator", "Evaluator", "TrainEvaluator",
    "Objective", "RandomSearch", "SearchConfig", "SearchConfigError", "run_search", "run_worker",
    "summary",
]
