"""Boolean connectives and the conditional expression."""

from .core import Expression, NaryOp, evaluate, fmt


def And(*args):
    return NaryOp("And", lambda vals: all(bool(v) for v in vals), args)


def Or(*args):
    return NaryOp("Or", lambda vals: any(bool(v) for v in vals), args)


def Not(a):
    return NaryOp("Not", lambda vals: not vals[0], (a,))


class If(Expression):
    """``If(cond, then, otherwise)``: only the taken branch is evaluated."""

    def __init__(self, cond, then, otherwise):
        self.cond, self.then, self.otherwise = cond, then, otherwise

    def children(self):
        return (self.cond, self.then, self.otherwise)

    def _eval(self):
        return evaluate(self.then) if evaluate(self.cond) else evaluate(self.otherwise)

    def _str(self):
        return f"If({fmt(self.cond)}, {fmt(self.then)}, {fmt(self.otherwise)})"

    __repr__ = _str
