"""The search's pricing of a candidate: training with quantisation in the loop, then the
accelerator's closed-form cycles and energy and the FPGA resource model on its QGraph (no
tools run). It lives above the search, which sees only its evaluator interface, and above
qat, accel, hw and fpga, whose work it combines."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np

from hannah_hw.accel.config import derive_config
from hannah_hw.accel.cost import predict_cost
from hannah_hw.fpga.boards import board as board_spec
from hannah_hw.fpga.fit import FitError
from hannah_hw.fpga.resources import estimate_resources, fit_config
from hannah_hw.hw.hwdir import memory_bits
from hannah_hw.nas.search.evaluators import COST_METRICS, CostEvaluator
from hannah_hw.qat.settings import TrainSettings

# priced on the QGraph of a trained candidate: the RTL's closed-form schedule, the energy
# model and the FPGA resource model
HW_METRICS = ["cycles", "latency_ms", "energy_uj", "utilization", "accel_kbit", "luts", "dsps",
              "brams", "fits"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class HardwareSettings:
    """The accelerator that prices candidates: its MAC lanes (None: derived per candidate)
    and the FPGA it is fitted to, whose clock sets the latency."""

    pe_cols: int | None = None
    board: str = "icebreaker"


def evaluation_settings(training: TrainSettings,
                        hardware: HardwareSettings) -> dict[str, dict[str, Any]]:
    """A search's ``evaluation`` settings for TrainEvaluator, as the study stores them."""
    return {"training": dataclasses.asdict(training), "hardware": dataclasses.asdict(hardware)}


def _settings(config) -> tuple[TrainSettings, HardwareSettings]:
    """The typed settings back from the plain data a study stores."""
    ev = config.evaluation
    return TrainSettings(**ev["training"]), HardwareSettings(**ev["hardware"])


class TrainEvaluator:
    """Float training, then QAT, lowering and the bit-exactness check: ``accuracy`` is the
    quantised network's (the QGraph interpreter's argmax on the test set).

    qat.pipeline is imported inside the methods (by ``TrainSettings.train_config``): it loads
    torch, which checking a flow file's metric names (``metric_names``) does not need."""

    metric_names = [*COST_METRICS, "accuracy", "error", "float_accuracy", "train_seconds",
                    "bit_exact", *HW_METRICS]
    TEST_INPUTS = 64  # kept beside the study for confirming candidates in RTL simulation

    def __init__(self, training: TrainSettings, hardware: HardwareSettings, seed: int = 0):
        from hannah_hw.qat.pipeline import load_data

        self.cfg = training.train_config(seed)
        self.cfg.validate()
        self.hardware = hardware
        self.data = load_data(self.cfg, progress=False)
        self.qgraph = None

    @classmethod
    def check(cls, config) -> None:
        """The training settings, before any work (building one loads the data set)."""
        _settings(config)[0].train_config().validate()

    @classmethod
    def from_config(cls, config) -> TrainEvaluator:
        """The evaluator of a search (loads its data set once per worker)."""
        return cls(*_settings(config), seed=config.seed)

    def __call__(self, spec, graph):
        import torch

        from hannah_hw.qat.pipeline import train_network

        torch.set_num_threads(1)
        t0 = time.perf_counter()
        _, _, g, m = train_network(graph, self.data, self.cfg, progress=False)
        metrics = CostEvaluator()(spec, graph)
        e = m["bit_exact"]
        metrics.update(accuracy=m["quant_accuracy"], error=1.0 - m["quant_accuracy"],
                       float_accuracy=m["float_accuracy"],
                       train_seconds=time.perf_counter() - t0,
                       bit_exact=float(e["identical"] == e["outputs"]))
        metrics.update(hardware_metrics(g, self.hardware.pe_cols, self.hardware.board))
        self.qgraph = g
        return metrics

    def save_artefacts(self, study_dir: Path, stem: str) -> None:
        """The candidate's QGraph (and, once, test inputs), so later stages need no retraining."""
        qdir = study_dir / "qgraphs"
        qdir.mkdir(exist_ok=True)
        self.qgraph.save(qdir / f"{stem}.json")
        x = study_dir / "test_inputs.npy"
        if not x.is_file():
            np.save(x.with_suffix(".tmp.npy"), self.data.x_test[:self.TEST_INPUTS].numpy())
            x.with_suffix(".tmp.npy").replace(x)


def hardware_metrics(g, pe_cols: int | None, board: str) -> dict[str, float]:
    """Cycles, latency and energy at the board's bitstream clock, and resources, of the
    accelerator derived for ``g`` and fitted to ``board`` as ``hannah-hw generate --fit``
    builds it (``fits`` 0 when no configuration fits: then those of the derived one)."""
    b = board_spec(board)
    try:
        cfg, fits = fit_config(g, board, pe_cols=pe_cols), 1.0
    except FitError:
        cfg, fits = derive_config(g, pe_cols=pe_cols, family=b.family), 0.0
    c = predict_cost(g, cfg, clock_hz=b.target_hz)
    res = estimate_resources(cfg, board)
    return {"cycles": float(c["cycles"]), "latency_ms": c["latency_s"] * 1e3,
            "energy_uj": c["energy_pj"] / 1e6, "utilization": c["utilization"],
            "accel_kbit": sum(memory_bits(cfg).values()) / 1024, "luts": float(res["lut"]),
            "dsps": float(res["dsp"]), "brams": float(res["bram"]), "fits": fits}


def search_evaluator(config) -> type[CostEvaluator] | type[TrainEvaluator]:
    """The evaluator class of a search (handed to ``run_search``): symbolic cost without
    evaluator settings, else training and hardware pricing."""
    return TrainEvaluator if config.evaluation else CostEvaluator
