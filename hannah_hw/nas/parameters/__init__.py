"""Search-space parameters."""

from .parameters import (
    CategoricalParameter,
    FloatScalarParameter,
    IntScalarParameter,
    InvalidValueError,
    Parameter,
    SubsetParameter,
)

__all__ = [
    "CategoricalParameter", "FloatScalarParameter", "IntScalarParameter", "InvalidValueError",
    "Parameter", "SubsetParameter",
]
