"""Arithmetic expression constructors (HANNAH's ``hannah.nas.expressions.arithmetic``)."""

import operator

from .core import BinaryOp, NaryOp, UnaryOp, ceil_int, floor_int


def Add(a, b):
    return BinaryOp("+", operator.add, a, b)


def Sub(a, b):
    return BinaryOp("-", operator.sub, a, b)


def Mul(a, b):
    return BinaryOp("*", operator.mul, a, b)


def Truediv(a, b):
    return BinaryOp("/", operator.truediv, a, b)


def Floordiv(a, b):
    return BinaryOp("//", operator.floordiv, a, b)


def Mod(a, b):
    return BinaryOp("%", operator.mod, a, b)


def Ceil(a):
    return UnaryOp("Ceil", ceil_int, a)


def Floor(a):
    return UnaryOp("Floor", floor_int, a)


def Max(*args):
    return NaryOp("Max", max, args)


def Min(*args):
    return NaryOp("Min", min, args)


def Sum(*args):
    return NaryOp("Sum", sum, args)


def Prod(*args):
    def prod(vals):
        out = 1
        for v in vals:
            out *= v
        return out

    return NaryOp("Prod", prod, args)
