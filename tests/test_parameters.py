import numpy as np
import pytest

from hannah_hw.nas.expressions import EQ, And, Ceil, Floor, If, Int, Max, Or
from hannah_hw.nas.functional_operators.lazy import lazy
from hannah_hw.nas.parameters import (
    CategoricalParameter,
    FloatScalarParameter,
    IntScalarParameter,
    InvalidValueError,
    SubsetParameter,
)


def test_int_parameter_respects_step_and_seed():
    p = IntScalarParameter(8, 64, step_size=8, name="ch")
    rng = np.random.default_rng(5)
    values = [p.sample(rng) for _ in range(200)]
    assert set(values) <= set(range(8, 65, 8)) and len(set(values)) == 8
    again = [p.sample(np.random.default_rng(5)) for _ in range(1)]
    assert again[0] == values[0]


def test_set_current_rejects_invalid_values_with_a_clear_error():
    p = IntScalarParameter(8, 64, step_size=8, name="ch")
    p.set_current(16)
    assert p.current_value == 16
    for bad in (12, 72, "16", 16.0, True):
        with pytest.raises(InvalidValueError, match="ch"):
            p.set_current(bad)
    c = CategoricalParameter([3, 5, 7], name="k")
    with pytest.raises(InvalidValueError, match=r"not one of \[3, 5, 7\]"):
        c.set_current(4)
    f = FloatScalarParameter(0.0, 1.0, name="drop")
    f.set_current(0.5)
    with pytest.raises(InvalidValueError):
        f.set_current(1.5)
    s = SubsetParameter(["a", "b", "c"], 1, 2, name="s")
    s.set_current(["c", "a"])
    assert s.current_value == ["a", "c"]
    for bad in ([], ["a", "b", "c"], ["d"], ["a", "a"]):
        with pytest.raises(InvalidValueError):
            s.set_current(bad)


def test_initial_values_are_deterministic():
    assert CategoricalParameter([5, 3]).current_value == 5
    assert IntScalarParameter(2, 9).current_value == 2
    assert SubsetParameter([1, 2, 3], 1, 3).current_value == [1]


def test_new_is_an_independent_copy():
    p = CategoricalParameter([1, 2, 3], name="k")
    q = p.new()
    q.set_current(3)
    assert p.current_value == 1 and q.current_value == 3
    assert q.choices == p.choices and q is not p and q.id is None


def test_subset_samples_within_size_bounds():
    s = SubsetParameter(list(range(6)), 2, 4)
    rng = np.random.default_rng(0)
    for _ in range(100):
        v = s.sample(rng)
        assert 2 <= len(v) <= 4 and v == sorted(set(v))
    assert s.cardinality() == 15 + 20 + 15


def test_expressions_evaluate_lazily():
    a = IntScalarParameter(1, 10, name="a")
    b = IntScalarParameter(1, 10, name="b")
    e = Ceil(a / b) + Floor(a / b) * 2 - Int(a / 3)
    a.set_current(7)
    b.set_current(2)
    assert lazy(e) == 4 + 3 * 2 - 2
    assert lazy(And(a > 5, b < 3)) is True
    assert lazy(Or(a < 5, b > 3)) is False
    assert lazy(If(a > b, a, b)) == 7
    assert lazy(Max(a, b, 9)) == 9
    assert lazy(a % b) == 1 and lazy(-a) == -7 and lazy(a ** 2) == 49
    assert lazy(EQ(a, 7)) is True and lazy(a == 7) is True and lazy(a != 7) is False
    assert set(map(id, e.parameters())) == {id(a), id(b)}


def test_truth_of_a_symbolic_comparison_is_an_error_but_membership_works():
    a, b = IntScalarParameter(1, 3), IntScalarParameter(1, 3)
    with pytest.raises(TypeError, match="lazy"):
        bool(a < b)
    assert a in [b, a] and b not in [a]
    assert {a: 1}[a] == 1
