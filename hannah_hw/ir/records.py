"""The records a QGraph is made of, apart from the graph so that its schema (schema.py) can
check them without importing the graph module that calls it."""

from __future__ import annotations

import dataclasses
from typing import Any

from .numerics import int_range


@dataclasses.dataclass(frozen=True)
class TensorInfo:
    shape: tuple[int, ...]  # per sample, no batch axis
    bits: int
    signed: bool
    scale_m: int = 1  # real = (q - zero_point) * scale_m * 2**scale_e
    scale_e: int = 0
    zero_point: int = 0

    @property
    def scale(self) -> float:
        return self.scale_m * 2.0 ** self.scale_e

    @property
    def range(self) -> tuple[int, int]:
        return int_range(self.bits, self.signed)


@dataclasses.dataclass(frozen=True)
class Node:
    op: str
    name: str
    inputs: tuple[str, ...]
    output: str
    attrs: dict[str, Any] = dataclasses.field(default_factory=dict)
    params: dict[str, str] = dataclasses.field(default_factory=dict)  # role -> array key
