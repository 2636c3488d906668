"""A small, deterministic trainer: seeded shuffles per epoch (so a resumed run continues the
same sequence), a validation split for early stopping, a checkpoint after every epoch,
progress bars, and evaluation with per-class accuracy and a confusion matrix."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .dataset import Dataset, DatasetError


@dataclasses.dataclass(frozen=True)
class FitConfig:
    epochs: int
    lr: float = 3e-3
    batch_size: int = 128
    seed: int = 0
    patience: int | None = None  # epochs without validation improvement before stopping
    val_fraction: float = 0.1
    weight_decay: float = 0.0


def split_validation(data: Dataset, fraction: float, seed: int):
    n = len(data.x_train)
    order = torch.from_numpy(np.random.default_rng(seed).permutation(n))
    n_val = int(n * fraction) if n >= 20 else 0
    va, tr = order[:n_val], order[n_val:]
    return (data.x_train[tr], data.y_train[tr]), (data.x_train[va], data.y_train[va])


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch: int = 512) -> torch.Tensor:
    model.eval()
    return torch.cat([model(x[i:i + batch]) for i in range(0, len(x), batch)]) if len(x) else \
        torch.zeros(0)


def classification_metrics(pred: np.ndarray, y: np.ndarray, classes: list[str]) -> dict:
    k = len(classes)
    conf = np.zeros((k, k), np.int64)
    np.add.at(conf, (y, pred), 1)
    per_class = {c: float(conf[i, i] / conf[i].sum()) if conf[i].sum() else None
                 for i, c in enumerate(classes)}
    return {"accuracy": float((pred == y).mean()) if len(y) else 0.0,
            "per_class_accuracy": per_class, "confusion": conf.tolist(), "samples": len(y)}


def _save(path: Path, state: dict) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


class CheckpointError(DatasetError):
    """A training checkpoint that cannot be read or trusted."""


def _load_checkpoint(path: Path) -> dict:
    """Tensors and plain containers only: a pickled object in a checkpoint someone handed us
    must not run code (``weights_only=True``)."""
    try:
        saved = torch.load(path, weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many kinds for a bad file
        raise CheckpointError(f"{path}: not a hannah-hw training checkpoint ({type(e).__name__}: "
                           f"{str(e).splitlines()[0] if str(e) else ''}); delete it to train "
                           f"from the start") from None
    if not isinstance(saved, dict) or not {"model", "opt", "sched", "state"} <= saved.keys():
        raise CheckpointError(f"{path}: not a hannah-hw training checkpoint; delete it to train "
                           f"from the start")
    return saved


def fit(model: nn.Module, data: Dataset, cfg: FitConfig, checkpoint: Path | None = None,
        desc: str = "train", progress: bool = True) -> dict:
    """Train ``model`` in place (its best validation state at the end); resumes from
    ``checkpoint`` when it exists. Returns the history."""
    from tqdm import tqdm

    (xtr, ytr), (xva, yva) = split_validation(data, cfg.val_fraction, cfg.seed)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, cfg.epochs))
    state = {"epoch": 0, "best": -1.0, "best_state": None, "bad": 0, "history": []}
    if checkpoint is not None and checkpoint.is_file():
        saved = _load_checkpoint(checkpoint)
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["opt"])
        sched.load_state_dict(saved["sched"])
        state = saved["state"]
    bar = tqdm(total=cfg.epochs, initial=state["epoch"], desc=desc, unit="epoch",
               disable=not progress)
    while state["epoch"] < cfg.epochs:
        epoch = state["epoch"]
        model.train()
        g = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
        t0, total, n = time.perf_counter(), 0.0, 0
        for idx in torch.randperm(len(xtr), generator=g).split(cfg.batch_size):
            loss = F.cross_entropy(model(xtr[idx]), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total, n = total + loss.item() * len(idx), n + len(idx)
        sched.step()
        seconds = time.perf_counter() - t0
        x_eval, y_eval = (xva, yva) if len(xva) else (xtr, ytr)
        val = float((predict(model, x_eval).argmax(1) == y_eval).float().mean())
        state["history"].append({"epoch": epoch + 1, "loss": total / max(n, 1),
                                 "val_accuracy": val, "seconds": seconds})
        if val > state["best"]:
            state["best"], state["bad"] = val, 0
            state["best_state"] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            state["bad"] += 1
        state["epoch"] = epoch + 1
        if cfg.patience is not None and state["bad"] >= cfg.patience:
            state["epoch"] = cfg.epochs  # early stop: a resume must not train on
        if checkpoint is not None:
            _save(checkpoint, {"model": model.state_dict(), "opt": opt.state_dict(),
                               "sched": sched.state_dict(), "state": state})
        bar.set_postfix(loss=f"{total / max(n, 1):.3f}", val=f"{val:.3f}")
        bar.update(1)
    bar.close()
    if state["best_state"] is not None:
        model.load_state_dict(state["best_state"])
    return {"history": state["history"], "best_val_accuracy": state["best"]}
