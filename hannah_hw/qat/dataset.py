"""The record every data set loader returns, apart from the loaders so that each loader
module (digits and Fashion-MNIST in datasets.py, keyword spotting in kws.py) imports it
without importing the others."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: the error class is imported without torch
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
