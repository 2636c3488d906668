"""Data sets that work offline. Each returns float32 tensors and what the network must fit."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch


class DatasetError(RuntimeError):
    """A data set that is unknown or not available on this machine."""


@dataclasses.dataclass
class Dataset:
    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: list[str]

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (1, *self.x_train.shape[1:])

    def space_kwargs(self) -> dict:
        return {"input_shape": list(self.input_shape), "num_classes": len(self.classes)}


def load_digits(seed: int = 0, test_fraction: float = 0.25) -> Dataset:
    """scikit-learn's bundled 8x8 digits (1,797 images): instant, for tests and quick searches."""
    from sklearn.datasets import load_digits as sk_digits

    d = sk_digits()
    x = (d.images.astype(np.float32) / 16.0)[:, None]
    y = d.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = int(len(x) * test_fraction)
    te, tr = order[:n_test], order[n_test:]
    return Dataset("digits", torch.from_numpy(x[tr]), torch.from_numpy(y[tr]),
                   torch.from_numpy(x[te]), torch.from_numpy(y[te]), [str(i) for i in range(10)])


DATASETS = {"digits": load_digits}


def load_dataset(name: str, **kwargs) -> Dataset:
    if name not in DATASETS:
        raise DatasetError(f"unknown data set {name!r}; choose one of {', '.join(DATASETS)}")
    return DATASETS[name](**kwargs)
