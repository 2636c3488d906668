"""Evaluate a value that may be (or contain) expressions with the current parameter values."""

from hannah_hw.nas.expressions.core import evaluate


def lazy(value):
    return evaluate(value)
