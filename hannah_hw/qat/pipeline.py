"""The training stage: float training, BatchNorm folding, calibration, QAT fine-tuning,
lowering to a QGraph, and the bit-exactness check of QAT model against the interpreter."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from hannah_hw.ir.interpreter import quantize_input, run
from hannah_hw.ir.qgraph import QGraph
from hannah_hw.nas.archspec import ArchSpec, SpaceError
from hannah_hw.nas.functional_operators.executor import BasicExecutor
from hannah_hw.nas.functional_operators.op import BaseNode

from .dataset import Dataset, DatasetError
from .datasets import load_dataset
from .lower import lower
from .qnet import QuantNet, build_qnet
from .trainer import FitConfig, classification_metrics, fit, predict

CALIBRATION_SAMPLES = 2048


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    dataset: str
    epochs: int = 10
    qat_epochs: int = 3
    wbits: int = 8
    abits: int = 8
    scales: str = "pow2"  # or "fixed": float per-channel scales, fixed-point multipliers
    seed: int = 0
    lr: float = 3e-3
    batch_size: int = 128
    patience: int | None = None
    data_dir: str | None = None
    kws_clips: int = 20000
    limit: int | None = None  # cap the training set (tests, quick searches)

    def validate(self) -> None:
        for b, what in ((self.wbits, "--wbits"), (self.abits, "--abits")):
            if not 2 <= b <= 8:
                raise DatasetError(f"{what} {b} is outside 2..8")
        if self.scales not in ("pow2", "fixed"):
            raise DatasetError(f"--scales must be pow2 or fixed, got {self.scales!r}")
        if self.epochs < 0 or self.qat_epochs < 0:
            raise DatasetError("epochs must not be negative")


def load_data(cfg: TrainConfig, progress: bool = True) -> Dataset:
    kwargs = {"seed": cfg.seed, "data_dir": cfg.data_dir, "limit": cfg.limit}
    if cfg.dataset == "kws":
        kwargs.update(n_clips=cfg.kws_clips, progress=progress)
    data = load_dataset(cfg.dataset, **kwargs)
    if cfg.limit and cfg.dataset != "kws":
        data = dataclasses.replace(data, x_train=data.x_train[:cfg.limit],
                                   y_train=data.y_train[:cfg.limit])
    return data


def build_for(spec: ArchSpec, data: Dataset) -> tuple[ArchSpec, BaseNode]:
    """The architecture with the data set's input shape and class count (when the space
    takes ``input_shape``/``num_classes``)."""
    merged = dataclasses.replace(spec, space_kwargs={**spec.space_kwargs, **data.space_kwargs()})
    try:
        return merged, merged.build()
    except SpaceError:
        return spec, spec.build()


def check_bit_exact(qnet: QuantNet, g: QGraph, x: torch.Tensor) -> tuple[dict, np.ndarray]:
    """Compare every output integer of the QAT model (float64) with the interpreter's."""
    ref = run(g, quantize_input(g, x.numpy()))
    mine = qnet.int_outputs(x).numpy().reshape(ref.shape)
    same = mine == ref
    return {"samples": int(len(x)), "outputs": int(same.size), "identical": int(same.sum()),
            "samples_all_identical": int(same.reshape(len(x), -1).all(1).sum()),
            "max_abs_diff": int(np.abs(mine - ref).max()) if ref.size else 0}, ref


def train_float(graph: BaseNode, data: Dataset, cfg: TrainConfig, workdir: Path | None = None,
                progress: bool = True) -> tuple[BasicExecutor, dict]:
    torch.manual_seed(cfg.seed)
    ex = BasicExecutor(graph)
    fit_cfg = FitConfig(cfg.epochs, cfg.lr, cfg.batch_size, cfg.seed, cfg.patience)
    t0 = time.perf_counter()
    hist = fit(ex, data, fit_cfg, workdir / "float.ckpt" if workdir else None,
               "float training", progress)
    seconds = time.perf_counter() - t0
    acc = float((predict(ex, data.x_test).argmax(1) == data.y_test).float().mean())
    return ex, {"float_accuracy": acc, "seconds": seconds, "history": hist["history"],
                "seconds_per_epoch": seconds / max(1, len(hist["history"]))}


def train_quant(graph: BaseNode, ex: BasicExecutor, data: Dataset, cfg: TrainConfig,
                workdir: Path | None = None, progress: bool = True, name: str = "network"):
    """Fold, calibrate, fine-tune with fake quantisation, lower, and check bit-exactness."""
    qnet = build_qnet(graph, ex, cfg.wbits, cfg.abits, pow2=cfg.scales == "pow2")
    calib = data.x_train[torch.randperm(len(data.x_train), generator=torch.Generator()
                                        .manual_seed(cfg.seed))[:CALIBRATION_SAMPLES]]
    qnet.calibrate(calib.split(256))
    qat_cfg = FitConfig(cfg.qat_epochs, cfg.lr / 10, cfg.batch_size, cfg.seed, cfg.patience)
    t0 = time.perf_counter()
    hist = fit(qnet, data, qat_cfg, workdir / "qat.ckpt" if workdir else None,
               f"QAT w{cfg.wbits}a{cfg.abits}", progress)
    t_qat = time.perf_counter() - t0
    g = lower(qnet, data.x_test[:1], name, meta={"dataset": data.name, "classes": data.classes,
                                                 "wbits": cfg.wbits, "abits": cfg.abits,
                                                 "scales": cfg.scales})
    t0 = time.perf_counter()
    exact, ref = check_bit_exact(qnet, g, data.x_test)
    t_check = time.perf_counter() - t0
    q = classification_metrics(ref.reshape(len(ref), -1).argmax(1), data.y_test.numpy(),
                               data.classes)
    return qnet, g, {
        "quant_accuracy": q["accuracy"], "per_class_accuracy": q["per_class_accuracy"],
        "confusion": q["confusion"], "bit_exact": exact, "macs": g.macs(),
        "wbits": cfg.wbits, "abits": cfg.abits, "scales": cfg.scales,
        "qat_seconds": t_qat, "qat_seconds_per_epoch": t_qat / max(1, len(hist["history"])),
        "check_seconds": t_check, "qat_history": hist["history"]}


def train_network(graph: BaseNode, data: Dataset, cfg: TrainConfig, workdir: Path | None = None,
                  progress: bool = True, name: str = "network"):
    """Float training, then QAT; returns (float model, QAT model, QGraph, metrics)."""
    ex, f = train_float(graph, data, cfg, workdir, progress)
    qnet, g, q = train_quant(graph, ex, data, cfg, workdir, progress, name)
    metrics = {"float_accuracy": f["float_accuracy"], **q,
               "train_samples": len(data.x_train), "test_samples": len(data.x_test),
               "float_seconds": f["seconds"], "float_seconds_per_epoch": f["seconds_per_epoch"],
               "float_history": f["history"]}
    return ex, qnet, g, metrics


def train_qat(spec: ArchSpec, cfg: TrainConfig, out: Path, progress: bool = True) -> dict:
    """Train ``spec`` and write DIR/{arch.json, float.pt, qat.pt, qgraph.json+npz,
    metrics.json, test_inputs.npy, test_outputs.npy}. Rerun with the same settings, it
    resumes from the checkpoints."""
    cfg.validate()
    out.mkdir(parents=True, exist_ok=True)
    cfg_file = out / "train_config.json"
    mine = json.dumps(dataclasses.asdict(cfg), sort_keys=True)
    if cfg_file.is_file() and cfg_file.read_text() != mine:
        raise DatasetError(f"{out} holds a training run with other settings; use another --out")
    cfg_file.write_text(mine)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    data = load_data(cfg, progress)
    spec, graph = build_for(spec, data)
    spec.save(out / "arch.json")
    ex, qnet, g, metrics = train_network(graph, data, cfg, out, progress,
                                         name=Path(spec.space.split(":")[-1]).name)
    torch.save(ex.state_dict(), out / "float.pt")
    torch.save({"state": qnet.state_dict(),
                "exponents": {ly.name: (ly.f_in, ly.f_out) for ly in qnet.layers}},
               out / "qat.pt")
    g.save(out / "qgraph.json")
    n = min(256, len(data.x_test))
    np.save(out / "test_inputs.npy", data.x_test[:n].numpy())
    np.save(out / "test_labels.npy", data.y_test[:n].numpy())
    np.save(out / "test_outputs.npy", run(g, quantize_input(g, data.x_test[:n].numpy())))
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics
