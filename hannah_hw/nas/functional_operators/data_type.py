"""Element types of tensors in a search space (HANNAH's ``data_type``)."""

from dataclasses import dataclass


@dataclass(frozen=True)
class FloatType:
    bits: int = 32

    def __str__(self):
        return f"float{self.bits}"


@dataclass(frozen=True)
class IntType:
    bits: int = 8
    signed: bool = True

    def __str__(self):
        return f"{'' if self.signed else 'u'}int{self.bits}"
