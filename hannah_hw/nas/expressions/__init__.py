"""Symbolic expressions over search-space parameters."""

from .arithmetic import Add, Ceil, Floor, Floordiv, Max, Min, Mod, Mul, Prod, Sub, Sum, Truediv
from .choice import Choice
from .conditions import EQ, GE, GT, LE, LT, NE
from .core import Condition, Expression, evaluate
from .logic import And, If, Not, Or
from .types import Float, Int

__all__ = [
    "Add", "And", "Ceil", "Choice", "Condition", "EQ", "Expression", "Float", "Floor", "Floordiv",
    "GE", "GT", "If", "Int", "LE", "LT", "Max", "Min", "Mod", "Mul", "NE", "Not", "Or", "Prod",
    "Sub", "Sum", "Truediv", "evaluate",
]
