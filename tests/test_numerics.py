"""The torch fake-quant primitives are exact twins of the integer numerics."""

import numpy as np
import pytest
import torch

from hannah_hw.ir import numerics as nx
from hannah_hw.qat.quant import fake_quant, requant_params, round_shift


def test_round_shift_twins_agree_on_ties_and_negatives():
    rng = np.random.default_rng(0)
    acc = np.concatenate([rng.integers(-2**20, 2**20, 5000), np.arange(-64, 65)])
    for m, sh in [(1, 1), (1, 3), (1, 7), (8, 1), (23170, 15), (3, 2)]:
        ref = nx.round_shift(acc, m, sh)
        got = round_shift(torch.tensor(acc, dtype=torch.float64), torch.tensor(float(m)),
                          torch.tensor(float(sh))).numpy()
        assert np.array_equal(ref, got.astype(np.int64)), (m, sh)
    # round half up, arithmetic shift: -3/2 = -1.5 -> -1, 3/2 -> 2, -1/2 -> 0
    assert nx.round_shift(np.array([-3, 3, -1, 1]), 1, 1).tolist() == [-1, 2, 0, 1]


def test_pow2_multiplier_is_exact_both_ways():
    x = np.arange(-1000, 1000)
    for s in range(-4, 8):
        m, sh = nx.pow2_multiplier(s)
        assert sh >= 1
        expected = np.floor(x * 2.0 ** -s + 0.5).astype(np.int64)
        assert np.array_equal(nx.round_shift(x, m, sh), expected)


@pytest.mark.parametrize("ratio", [1 / 3, 0.0123, 0.75, 1.5, 2 ** -20, 3.9])
def test_fixed_multiplier_is_close(ratio):
    m, sh = nx.fixed_multiplier(ratio)
    assert m < 2 ** 15 and sh >= 1
    assert abs(m / 2 ** sh - ratio) <= ratio * 2 ** -13


def test_fake_quant_matches_quantize_with_round_half_up():
    noise = np.random.default_rng(1).normal(0, 3, 999)
    x = np.concatenate([np.arange(-20, 20) / 8 + 1 / 16, noise])
    for bits, signed, f in [(8, True, 4), (4, False, 2), (2, True, 0)]:
        lo, hi = nx.int_range(bits, signed)
        ref = nx.quantize(x, 2.0 ** -f, 0, lo, hi)
        got = fake_quant(torch.tensor(x), f, bits, signed).numpy() * 2.0 ** f
        assert np.array_equal(ref, got.astype(np.int64))
    assert nx.quantize(np.array([0.5, 1.5, 2.5, -0.5]), 1.0, 0, -8, 7).tolist() == [1, 2, 3, 0]


def test_requant_params_exact_for_powers_of_two():
    ms, shs = requant_params(torch.tensor([0.25, 1.0, 8.0]), pow2=True)
    assert list(zip(ms, shs)) == [(1, 2), (2, 1), (16, 1)]
