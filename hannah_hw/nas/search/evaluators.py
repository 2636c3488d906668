"""Evaluators: candidate network -> metrics dict. The search only sees this interface, so
later stages plug in QAT accuracy, RTL cycles and energy without touching the strategies."""

from __future__ import annotations

import time
from typing import Protocol

import torch

from hannah_hw.nas.archspec import ArchSpec
from hannah_hw.nas.cost import cost_metrics
from hannah_hw.nas.functional_operators.op import BaseNode

COST_METRICS = ["macs", "weights", "peak_memory"]


class Evaluator(Protocol):
    metric_names: list[str]

    def __call__(self, spec: ArchSpec, graph: BaseNode) -> dict[str, float]: ...


class CostEvaluator:
    """Symbolic cost of the architecture: MACs, weights, peak activations (per sample)."""

    metric_names = COST_METRICS

    def __call__(self, spec, graph):
        return {k: float(v) for k, v in cost_metrics(graph).items()}


class TrainEvaluator:
    """Float training, then QAT, lowering and the bit-exactness check: ``accuracy`` is the
    quantised network's (the QGraph interpreter's argmax on the test set)."""

    metric_names = [*COST_METRICS, "accuracy", "error", "float_accuracy", "train_seconds",
                    "bit_exact"]

    def __init__(self, dataset: str, epochs: int, seed: int = 0, qat_epochs: int = 1,
                 wbits: int = 8, abits: int = 8, limit: int | None = None):
        from hannah_hw.qat.pipeline import TrainConfig, load_data

        self.cfg = TrainConfig(dataset, epochs, qat_epochs, wbits, abits, seed=seed, limit=limit)
        self.cfg.validate()
        self.data = load_data(self.cfg, progress=False)

    def __call__(self, spec, graph):
        from hannah_hw.qat.pipeline import train_network

        torch.set_num_threads(1)
        t0 = time.perf_counter()
        _, _, _, m = train_network(graph, self.data, self.cfg, progress=False)
        metrics = CostEvaluator()(spec, graph)
        e = m["bit_exact"]
        metrics.update(accuracy=m["quant_accuracy"], error=1.0 - m["quant_accuracy"],
                       float_accuracy=m["float_accuracy"],
                       train_seconds=time.perf_counter() - t0,
                       bit_exact=float(e["identical"] == e["outputs"]))
        return metrics


def evaluator_class(config) -> type:
    return CostEvaluator if config.dataset is None else TrainEvaluator


def make_evaluator(config) -> Evaluator:
    """The evaluator of a search (loads its data set once per worker)."""
    if config.dataset is None:
        return CostEvaluator()
    return TrainEvaluator(config.dataset, config.epochs, config.seed, config.qat_epochs,
                          config.wbits, config.abits, config.limit)
