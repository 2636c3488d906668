"""Select one of several values by an integer switch (used for ChoiceOp shapes)."""

from .core import Expression, evaluate, fmt


class Choice(Expression):
    def __init__(self, values, choice):
        self.values, self.choice = list(values), choice

    def children(self):
        return (*self.values, self.choice)

    def _eval(self):
        return evaluate(self.values[int(evaluate(self.choice))])

    def _str(self):
        return f"Choice([{', '.join(fmt(v) for v in self.values)}], {fmt(self.choice)})"

    __repr__ = _str
