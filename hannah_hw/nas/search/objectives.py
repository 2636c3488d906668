"""Objectives (``NAME:min|max``) and constraints (``NAME<=VALUE``) over candidate metrics."""

from __future__ import annotations

import dataclasses
import math
import operator
import re

_OPS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}


class SearchConfigError(ValueError):
    """A malformed or unknown objective, constraint, or search setting."""


@dataclasses.dataclass(frozen=True)
class Objective:
    name: str
    direction: str  # "min" or "max"

    @classmethod
    def parse(cls, text: str) -> Objective:
        if not isinstance(text, str):  # e.g. a mapping in a flow file's list
            raise SearchConfigError(f"malformed objective {text!r}: expected NAME:min or "
                                    "NAME:max")
        name, sep, direction = text.partition(":")
        direction = direction or "min"
        if not re.fullmatch(r"[A-Za-z_]\w*", name) or direction not in ("min", "max"):
            raise SearchConfigError(f"malformed objective {text!r}: expected NAME:min or NAME:max")
        return cls(name, direction)

    def loss(self, metrics: dict) -> float:
        """The value to minimise."""
        v = float(metrics[self.name])
        return v if self.direction == "min" else -v

    def __str__(self):
        return f"{self.name}:{self.direction}"


@dataclasses.dataclass(frozen=True)
class Constraint:
    name: str
    op: str
    value: float

    @classmethod
    def parse(cls, text: str) -> Constraint:
        m = isinstance(text, str) and re.fullmatch(
            r"\s*([A-Za-z_]\w*)\s*(<=|>=|<|>)\s*([-+0-9.eE_]+)\s*", text)
        if not m:
            raise SearchConfigError(
                f"malformed constraint {text!r}: expected NAME<=VALUE (or >=, <, >)")
        try:
            value = float(m.group(3))
        except ValueError:
            raise SearchConfigError(f"malformed constraint {text!r}: {m.group(3)!r} "
                                    "is not a number") from None
        return cls(m.group(1), m.group(2), value)

    def violation(self, metrics: dict) -> float:
        """0 when met, else how far off, relative to the bound."""
        v = float(metrics[self.name])
        if _OPS[self.op](v, self.value):
            return 0.0
        return abs(v - self.value) / max(abs(self.value), 1e-12) + 1e-9

    def __str__(self):
        return f"{self.name}{self.op}{self.value:g}"


def check_names(objectives, constraints, known: list[str]) -> None:
    for item in (*objectives, *constraints):
        if item.name not in known:
            kind = "objective" if isinstance(item, Objective) else "constraint"
            raise SearchConfigError(f"unknown {kind} metric {item.name!r}; this evaluator "
                                    f"measures {', '.join(known)}")


def total_violation(constraints, metrics: dict) -> float:
    return sum(c.violation(metrics) for c in constraints)


def finite(values) -> bool:
    return all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)
