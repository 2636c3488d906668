"""Search-space parameters: the free variables of a space.

A parameter knows its domain, samples from it with a generator it is handed (so a seed fixes
a whole space's sample), and refuses values outside its domain with an error naming both.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from hannah_hw.nas.expressions.core import EPOCH, Expression


class InvalidValueError(ValueError):
    """A value outside a parameter's domain."""


def _as_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


class Parameter(Expression):
    """A leaf expression whose value is chosen by sampling or by ``set_current``."""

    def __init__(self, name: str | None = None, rng: np.random.Generator | int | None = None):
        self.name = name
        self.id: str | None = None
        self.rng = _as_rng(0 if rng is None else rng)
        self._value: Any = None

    @property
    def current_value(self) -> Any:
        return self._value

    @current_value.setter
    def current_value(self, value: Any) -> None:
        self._value = value
        EPOCH[0] += 1

    def evaluate(self) -> Any:
        return self._value

    def sample(self, rng: np.random.Generator | None = None) -> Any:
        self.current_value = self._draw(rng if rng is not None else self.rng)
        return self.current_value

    def set_current(self, value: Any) -> None:
        self.current_value = self.check(value)

    def check(self, value: Any) -> Any:
        """Return ``value`` normalised to the domain's type, or raise InvalidValueError."""
        raise NotImplementedError

    def new(self) -> Parameter:
        """An independent copy with the same domain and current value, not yet placed."""
        raise NotImplementedError

    def cardinality(self) -> float:
        raise NotImplementedError

    def domain(self) -> str:
        raise NotImplementedError

    def _draw(self, rng: np.random.Generator) -> Any:
        raise NotImplementedError

    def _fail(self, value: Any, why: str):
        raise InvalidValueError(f"parameter {self.id or self.name or '?'}: {value!r} {why}")

    def _str(self) -> str:
        return self.id or self.name or f"<{type(self).__name__}>"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._str()} = {self.current_value!r}, {self.domain()})"


class IntScalarParameter(Parameter):
    def __init__(self, min: int, max: int, step_size: int = 1, name: str | None = None,
                 rng=None):
        super().__init__(name, rng)
        if step_size < 1 or max < min:
            raise ValueError(f"IntScalarParameter {name}: needs min <= max and step_size >= 1")
        self.min, self.max, self.step_size = int(min), int(max), int(step_size)
        self.current_value = self.min

    def values(self) -> range:
        return range(self.min, self.max + 1, self.step_size)

    def _draw(self, rng):
        return int(rng.choice(self.values()))

    def check(self, value):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            self._fail(value, "is not an integer")
        if value not in self.values():
            self._fail(value, f"is not in {self.domain()}")
        return int(value)

    def new(self):
        p = IntScalarParameter(self.min, self.max, self.step_size, self.name, self.rng)
        p.current_value = self.current_value
        return p

    def cardinality(self):
        return len(self.values())

    def domain(self):
        step = f" step {self.step_size}" if self.step_size != 1 else ""
        return f"int [{self.min}, {self.max}]{step}"


class FloatScalarParameter(Parameter):
    def __init__(self, min: float, max: float, name: str | None = None, rng=None):
        super().__init__(name, rng)
        if max < min:
            raise ValueError(f"FloatScalarParameter {name}: needs min <= max")
        self.min, self.max = float(min), float(max)
        self.current_value = self.min

    def _draw(self, rng):
        return float(rng.uniform(self.min, self.max))

    def check(self, value):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
            self._fail(value, "is not a number")
        if not (self.min <= value <= self.max) or math.isnan(value):
            self._fail(value, f"is not in {self.domain()}")
        return float(value)

    def new(self):
        p = FloatScalarParameter(self.min, self.max, self.name, self.rng)
        p.current_value = self.current_value
        return p

    def cardinality(self):
        return math.inf

    def domain(self):
        return f"float [{self.min}, {self.max}]"


def _same(a: Any, b: Any) -> bool:
    """Equality for choice values that survives a JSON round trip (tuples come back as lists)."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b or (
        isinstance(a, (int, float)) and isinstance(b, (int, float))
        and not isinstance(a, bool) and not isinstance(b, bool) and a == b
    )


class CategoricalParameter(Parameter):
    """One of a fixed list of plain values; the initial value is the first choice."""

    def __init__(self, choices: Sequence[Any], name: str | None = None, rng=None):
        super().__init__(name, rng)
        if not choices:
            raise ValueError(f"CategoricalParameter {name}: needs at least one choice")
        self.choices = list(choices)
        self.current_value = self.choices[0]

    def index(self, value) -> int:
        for i, c in enumerate(self.choices):
            if _same(c, value):
                return i
        self._fail(value, f"is not one of {self.choices}")

    def _draw(self, rng):
        return self.choices[int(rng.integers(len(self.choices)))]

    def check(self, value):
        return self.choices[self.index(value)]

    def new(self):
        p = CategoricalParameter(self.choices, self.name, self.rng)
        p.current_value = self.current_value
        return p

    def cardinality(self):
        return len(self.choices)

    def domain(self):
        return f"one of {self.choices}"


class SubsetParameter(Parameter):
    """A subset (kept in the order of ``choices``) of between ``min`` and ``max`` elements."""

    def __init__(self, choices: Sequence[Any], min: int, max: int, name: str | None = None,
                 rng=None):
        super().__init__(name, rng)
        self.choices = list(choices)
        if not 0 <= min <= max <= len(self.choices):
            raise ValueError(f"SubsetParameter {name}: needs 0 <= min <= max <= len(choices)")
        self.min, self.max = int(min), int(max)
        self.current_value = self.choices[: self.min]

    def _draw(self, rng):
        size = int(rng.integers(self.min, self.max + 1))
        picked = sorted(rng.choice(len(self.choices), size=size, replace=False).tolist())
        return [self.choices[i] for i in picked]

    def check(self, value):
        if not isinstance(value, (list, tuple)):
            self._fail(value, "is not a list")
        if not self.min <= len(value) <= self.max:
            self._fail(value, f"has {len(value)} elements, not {self.min} to {self.max}")
        idx = []
        for v in value:
            i = next((i for i, c in enumerate(self.choices) if _same(c, v)), None)
            if i is None:
                self._fail(value, f"contains {v!r}, not one of {self.choices}")
            idx.append(i)
        if len(set(idx)) != len(idx):
            self._fail(value, "contains an element twice")
        return [self.choices[i] for i in sorted(idx)]

    def new(self):
        p = SubsetParameter(self.choices, self.min, self.max, self.name, self.rng)
        p.current_value = list(self.current_value)
        return p

    def cardinality(self):
        n = len(self.choices)
        return sum(math.comb(n, k) for k in range(self.min, self.max + 1))

    def domain(self):
        return f"subset of {self.choices} with {self.min} to {self.max} elements"


def all_values(p: Parameter, limit: int = 64) -> list:
    """The domain's values (a sample of at most ``limit`` for large or continuous domains)."""
    if isinstance(p, IntScalarParameter):
        vals = list(p.values())
    elif isinstance(p, CategoricalParameter):
        vals = list(p.choices)
    elif isinstance(p, SubsetParameter):
        vals = [list(c) for k in range(p.min, p.max + 1)
                for c in itertools.combinations(p.choices, k)]
    else:
        vals = list(np.linspace(p.min, p.max, limit))
    return vals if len(vals) <= limit else vals[:: max(1, len(vals) // limit)]
