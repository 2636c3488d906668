"""Evaluators: candidate network -> metrics dict. The search only sees this interface, so
the layers above plug in training, the accelerator's cycles and energy and the FPGA's
resources (see :mod:`hannah_hw.stages.price`) without the search knowing any of them."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from hannah_hw.nas.archspec import ArchSpec
from hannah_hw.nas.cost import cost_metrics
from hannah_hw.nas.functional_operators.op import BaseNode

from .objectives import SearchConfigError

if TYPE_CHECKING:
    from .study import SearchConfig

COST_METRICS = ["macs", "weights", "peak_memory"]


class Evaluator(Protocol):
    metric_names: list[str]

    def __call__(self, spec: ArchSpec, graph: BaseNode) -> dict[str, float]: ...


class EvaluatorClass(Protocol):
    """An evaluator class as the search uses it: its metric names are known (and the config
    checked) before any worker builds one, since building may load a whole data set."""

    metric_names: list[str]

    def check(self, config: SearchConfig) -> None: ...

    def from_config(self, config: SearchConfig) -> Evaluator: ...


# a search's evaluator class, chosen from its config; module-level functions only, so that
# it pickles into the spawn-context worker processes
EvaluatorChoice = Callable[["SearchConfig"], EvaluatorClass]


class CostEvaluator:
    """Symbolic cost of the architecture: MACs, weights, peak activations (per sample)."""

    metric_names = COST_METRICS

    @classmethod
    def check(cls, config) -> None:
        """Nothing beyond the space and metric names, which the search checks itself."""

    @classmethod
    def from_config(cls, config) -> CostEvaluator:
        return cls()

    def __call__(self, spec, graph):
        return {k: float(v) for k, v in cost_metrics(graph).items()}


def cost_only(config) -> type[CostEvaluator]:
    """The search's own choice: symbolic cost. A search with evaluator settings (training,
    hardware) needs the evaluator of the layers they are for, handed in by its caller."""
    if config.evaluation:
        raise SearchConfigError(f"a search with {' and '.join(config.evaluation)} settings "
                                "needs the evaluator they are for; none was given")
    return CostEvaluator
