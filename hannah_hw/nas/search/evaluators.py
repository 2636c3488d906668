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


class FloatTrainEvaluator:
    """A quick float training (Adam, fixed seed) on a small data set: accuracy and error."""

    metric_names = [*COST_METRICS, "accuracy", "error", "train_seconds"]

    def __init__(self, dataset: str = "digits", epochs: int = 3, seed: int = 0,
                 batch_size: int = 64, lr: float = 3e-3):
        from hannah_hw.qat.datasets import load_dataset

        self.data = load_dataset(dataset)
        self.epochs, self.seed, self.batch_size, self.lr = epochs, seed, batch_size, lr

    def __call__(self, spec, graph):
        from hannah_hw.nas.functional_operators.executor import BasicExecutor

        torch.manual_seed(self.seed)
        model = BasicExecutor(graph)
        opt = torch.optim.Adam(model.parameters(), lr=self.lr)
        d = self.data
        t0 = time.perf_counter()
        g = torch.Generator().manual_seed(self.seed)
        for _ in range(self.epochs):
            model.train()
            for idx in torch.randperm(len(d.x_train), generator=g).split(self.batch_size):
                loss = torch.nn.functional.cross_entropy(model(d.x_train[idx]), d.y_train[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
        model.eval()
        with torch.no_grad():
            acc = (model(d.x_test).argmax(1) == d.y_test).float().mean().item()
        metrics = CostEvaluator()(spec, graph)
        metrics.update(accuracy=acc, error=1.0 - acc, train_seconds=time.perf_counter() - t0)
        return metrics


def make_evaluator(dataset: str | None, epochs: int, seed: int) -> Evaluator:
    if dataset is None:
        return CostEvaluator()
    return FloatTrainEvaluator(dataset, epochs=epochs, seed=seed)
