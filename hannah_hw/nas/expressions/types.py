"""Type casts as expressions."""

from .core import UnaryOp


def Int(a):
    return UnaryOp("Int", int, a)


def Float(a):
    return UnaryOp("Float", float, a)
