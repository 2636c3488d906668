"""Comparison constructors; ``a < b`` on expressions builds the same nodes."""

import operator

from .core import Condition


def LT(a, b):
    return Condition("<", operator.lt, a, b)


def LE(a, b):
    return Condition("<=", operator.le, a, b)


def GT(a, b):
    return Condition(">", operator.gt, a, b)


def GE(a, b):
    return Condition(">=", operator.ge, a, b)


def EQ(a, b):
    return Condition("==", operator.eq, a, b, truth=lambda x, y: x is y)


def NE(a, b):
    return Condition("!=", operator.ne, a, b, truth=lambda x, y: x is not y)
