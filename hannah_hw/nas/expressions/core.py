"""Symbolic expressions over search-space parameters.

Everything that depends on a choice (shapes, costs, constraints) is an expression, so it can
be evaluated for the current point (``lazy``) and inspected for the parameters it reads.
Equality operators build conditions, but their truth value (``bool(a == b)``) is identity, so
parameters still work as dict keys and in ``in`` tests; use ``lazy(a == b)`` for the value.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import Any

# Bumped whenever a parameter changes value; expression values are cached per epoch, so a
# shape chain through a deep network is evaluated once per point, not once per use.
EPOCH = [0]


class Expression:
    """Base of all symbolic values. Subclasses implement ``_eval`` and ``children``."""

    __hash__ = object.__hash__
    _cache_epoch = -1
    _cache: Any = None

    def evaluate(self) -> Any:
        if self._cache_epoch != EPOCH[0]:
            self._cache = self._eval()
            self._cache_epoch = EPOCH[0]
        return self._cache

    def _eval(self) -> Any:
        raise NotImplementedError

    def children(self) -> tuple:
        return ()

    def parameters(self) -> list:
        """Free parameters read by this expression, each once, in first-use order."""
        from hannah_hw.nas.parameters.parameters import Parameter

        seen: dict[int, Any] = {}
        stack: list = [self]
        while stack:
            e = stack.pop()
            if isinstance(e, Parameter):
                seen.setdefault(id(e), e)
                continue
            if isinstance(e, Expression):
                stack.extend(reversed(e.children()))
            elif isinstance(e, (tuple, list)):
                stack.extend(reversed(e))
        return list(seen.values())

    # arithmetic
    def __add__(self, o):
        return BinaryOp("+", operator.add, self, o)

    def __radd__(self, o):
        return BinaryOp("+", operator.add, o, self)

    def __sub__(self, o):
        return BinaryOp("-", operator.sub, self, o)

    def __rsub__(self, o):
        return BinaryOp("-", operator.sub, o, self)

    def __mul__(self, o):
        return BinaryOp("*", operator.mul, self, o)

    def __rmul__(self, o):
        return BinaryOp("*", operator.mul, o, self)

    def __truediv__(self, o):
        return BinaryOp("/", operator.truediv, self, o)

    def __rtruediv__(self, o):
        return BinaryOp("/", operator.truediv, o, self)

    def __floordiv__(self, o):
        return BinaryOp("//", operator.floordiv, self, o)

    def __rfloordiv__(self, o):
        return BinaryOp("//", operator.floordiv, o, self)

    def __mod__(self, o):
        return BinaryOp("%", operator.mod, self, o)

    def __rmod__(self, o):
        return BinaryOp("%", operator.mod, o, self)

    def __pow__(self, o):
        return BinaryOp("**", operator.pow, self, o)

    def __neg__(self):
        return UnaryOp("-", operator.neg, self)

    # comparisons
    def __lt__(self, o):
        return Condition("<", operator.lt, self, o)

    def __le__(self, o):
        return Condition("<=", operator.le, self, o)

    def __gt__(self, o):
        return Condition(">", operator.gt, self, o)

    def __ge__(self, o):
        return Condition(">=", operator.ge, self, o)

    def __eq__(self, o):  # type: ignore[override]
        return Condition("==", operator.eq, self, o, truth=lambda a, b: a is b)

    def __ne__(self, o):  # type: ignore[override]
        return Condition("!=", operator.ne, self, o, truth=lambda a, b: a is not b)

    # logic (``&``/``|`` read like HANNAH's; And/Or are the named forms)
    def __and__(self, o):
        return BinaryOp("&", lambda a, b: bool(a) and bool(b), self, o)

    def __or__(self, o):
        return BinaryOp("|", lambda a, b: bool(a) or bool(b), self, o)

    def __bool__(self):
        raise TypeError(
            f"the truth value of the expression {self!r} depends on the chosen parameters; "
            "use lazy(expr) to evaluate it"
        )


def evaluate(value: Any) -> Any:
    """Evaluate expressions nested anywhere in tuples and lists; plain values pass through."""
    if isinstance(value, Expression):
        return value.evaluate()
    if isinstance(value, tuple):
        return tuple(evaluate(v) for v in value)
    if isinstance(value, list):
        return [evaluate(v) for v in value]
    return value


def fmt(value: Any) -> str:
    return repr(value) if not isinstance(value, Expression) else value._str()


class BinaryOp(Expression):
    def __init__(self, sym: str, fn: Callable, lhs: Any, rhs: Any):
        self.sym, self.fn, self.lhs, self.rhs = sym, fn, lhs, rhs

    def children(self):
        return (self.lhs, self.rhs)

    def _eval(self):
        return self.fn(evaluate(self.lhs), evaluate(self.rhs))

    def _str(self):
        return f"({fmt(self.lhs)} {self.sym} {fmt(self.rhs)})"

    def __repr__(self):
        return self._str()


class Condition(BinaryOp):
    """A comparison; ``truth`` gives the Python truth value used by ``in`` and dict lookups."""

    def __init__(self, sym, fn, lhs, rhs, truth: Callable | None = None):
        super().__init__(sym, fn, lhs, rhs)
        self._truth = truth

    def __bool__(self):
        if self._truth is None:
            return Expression.__bool__(self)
        return self._truth(self.lhs, self.rhs)


class UnaryOp(Expression):
    def __init__(self, sym: str, fn: Callable, arg: Any):
        self.sym, self.fn, self.arg = sym, fn, arg

    def children(self):
        return (self.arg,)

    def _eval(self):
        return self.fn(evaluate(self.arg))

    def _str(self):
        return f"{self.sym}({fmt(self.arg)})"

    def __repr__(self):
        return self._str()


class NaryOp(Expression):
    def __init__(self, sym: str, fn: Callable, args: tuple):
        self.sym, self.fn, self.args = sym, fn, tuple(args)

    def children(self):
        return self.args

    def _eval(self):
        return self.fn([evaluate(a) for a in self.args])

    def _str(self):
        return f"{self.sym}({', '.join(fmt(a) for a in self.args)})"

    def __repr__(self):
        return self._str()


def ceil_int(x: Any) -> int:
    return int(math.ceil(x))


def floor_int(x: Any) -> int:
    return int(math.floor(x))
