"""Whole-space behaviour: naming, sampling, constraints, costs, and ArchSpec round trips."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from hannah_hw.nas.archspec import ArchSpec, SpaceError, build_space, load_space
from hannah_hw.nas.blocks import conv2d, input_tensor, linear
from hannah_hw.nas.cost import cost_metrics, macs
from hannah_hw.nas.functional_operators.executor import BasicExecutor
from hannah_hw.nas.functional_operators.lazy import lazy
from hannah_hw.nas.functional_operators.op import search_space
from hannah_hw.nas.functional_operators.operators import Conv1d, Conv2d, Linear
from hannah_hw.nas.parameters import CategoricalParameter, IntScalarParameter, InvalidValueError
from hannah_hw.nas.space import SamplingError, active_nodes, current_values, violations


def test_sampling_is_deterministic_for_a_seed(spaces):
    a, b = build_space(spaces["kws"]), build_space(spaces["kws"])
    assert a.sample(7) == b.sample(7)
    assert a.sample(7) != a.sample(8)


def test_two_spaces_in_one_process_do_not_share_state(spaces):
    first = build_space(spaces["image"])
    build_space(spaces["kws"])
    second = build_space(spaces["image"])
    assert list(first.parametrization(flatten=True)) == list(second.parametrization(flatten=True))
    first.sample(1)
    assert current_values(second) != current_values(first)  # values are per space instance


def test_parametrization_is_keyed_by_node_id(spaces):
    g = build_space(spaces["kws"])
    flat = g.parametrization(flatten=True)
    assert "kws_tcresnet_0.dynamic_depth_0.ChoiceOp_0.depth" in flat
    assert all(p.id == k for k, p in flat.items())
    nested = g.parametrization()
    assert nested["kws_tcresnet_0"]["dynamic_depth_0"]["ChoiceOp_0"]["depth"] is \
        flat["kws_tcresnet_0.dynamic_depth_0.ChoiceOp_0.depth"]


def test_input_tensor_created_inside_the_space_is_fed():
    @search_space
    def net():
        return linear(conv2d(input_tensor((1, 2, 6, 6)), 3, 3), 4)

    g = net()
    assert g.operands[0].operands[0].id == "net_0.input"
    assert BasicExecutor(g)(torch.randn(5, 2, 6, 6)).shape == (5, 4)


def test_constrained_sampler_meets_user_constraints_quickly(spaces):
    g = build_space(spaces["image"], {"max_macs": 100_000})
    rng = np.random.default_rng(0)
    for _ in range(30):
        g.sample(rng)
        assert lazy(macs(g)) <= 100_000 and not violations(g)


def test_impossible_constraints_end_with_a_sampling_error():
    @search_space
    def net():
        c = IntScalarParameter(1, 4, name="c")
        out = conv2d(input_tensor((1, 1, 4, 4)), c, 1)
        out.cond(c > 10)
        return out

    with pytest.raises(SamplingError, match="c > 10"):
        net().sample(0)


def test_set_params_rejects_unknown_and_invalid_values(spaces):
    g = build_space(spaces["kws"])
    with pytest.raises(InvalidValueError, match="unknown parameter"):
        g.set_params({"nope": 1})
    with pytest.raises(InvalidValueError, match="depth"):
        g.set_params({"kws_tcresnet_0.dynamic_depth_0.ChoiceOp_0.depth": 9})


def _measured_macs(graph, x):
    """MACs counted from the tensors torch actually computed (independent of cost.py)."""
    total = 0
    ex = BasicExecutor(graph)
    for n in active_nodes(graph):
        if isinstance(n, (Conv1d, Conv2d)):
            w = ex.tensor(n.operands[1])
            out_per_sample = int(np.prod(lazy(n.shape())[1:]))
            total += out_per_sample * w[0].numel()
        elif isinstance(n, Linear):
            total += ex.tensor(n.operands[1]).numel()
    ex(x)
    return total


@pytest.mark.parametrize("name", ["kws", "image"])
def test_symbolic_costs_match_the_built_network(spaces, name):
    g = build_space(spaces[name])
    rng = np.random.default_rng(2)
    for _ in range(5):
        g.sample(rng)
        cost = cost_metrics(g)
        x = torch.randn(1, *lazy(BasicExecutor(g).inputs[0].shape())[1:])
        assert cost["macs"] == _measured_macs(g, x)
        weights = sum(BasicExecutor(g).tensor(n.operands[1]).numel() for n in active_nodes(g)
                      if isinstance(n, (Conv1d, Conv2d, Linear)))
        assert cost["weights"] == weights
        assert lazy(macs(g)) == cost["macs"]


def test_peak_memory_counts_the_live_residual_branch():
    @search_space
    def net():
        from hannah_hw.nas.functional_operators.operators import Add

        x = input_tensor((1, 2, 4, 4))  # 32 elements
        a = conv2d(x, 4, 1)  # 64
        b = conv2d(a, 4, 1)  # 64, while a is still needed by the add
        return Add()(a, b)

    assert cost_metrics(net())["peak_memory"] == 64 + 64 + 64


ROUND_TRIP = """
import json, sys, torch
from hannah_hw.nas.archspec import ArchSpec
from hannah_hw.nas.cost import cost_metrics
from hannah_hw.nas.functional_operators.executor import BasicExecutor
spec = ArchSpec.load(sys.argv[1])
g = spec.build()
torch.manual_seed(0)
ex = BasicExecutor(g).eval()
torch.manual_seed(1)
x = torch.randn(2, 40, 101)
print(json.dumps({"cost": cost_metrics(g), "out": ex(x).tolist()}))
"""


def test_archspec_rebuilds_the_same_network_in_another_process(tmp_path, spaces):
    g = build_space(spaces["kws"])
    g.sample(11)
    spec = ArchSpec.from_graph(spaces["kws"], g)
    spec.save(tmp_path / "arch.json")
    assert ArchSpec.load(tmp_path / "arch.json") == spec
    out = subprocess.run([sys.executable, "-c", ROUND_TRIP, str(tmp_path / "arch.json")],
                         capture_output=True, text=True, check=True, cwd=tmp_path)
    theirs = json.loads(out.stdout)
    torch.manual_seed(0)
    ex = BasicExecutor(g).eval()
    torch.manual_seed(1)
    x = torch.randn(2, 40, 101)
    assert theirs["cost"] == cost_metrics(g)
    assert torch.equal(torch.tensor(theirs["out"]), ex(x))


def test_archspec_refuses_a_changed_space(tmp_path):
    space_file = tmp_path / "s.py"
    space_file.write_text(
        "from hannah_hw.nas.blocks import conv2d, input_tensor\n"
        "from hannah_hw.nas.functional_operators.op import search_space\n"
        "from hannah_hw.nas.parameters import CategoricalParameter\n"
        "@search_space\n"
        "def s():\n"
        "    return conv2d(input_tensor((1, 1, 8, 8)), CategoricalParameter([2, 4]), 3)\n")
    g = build_space(f"{space_file}:s")
    spec = ArchSpec.from_graph(f"{space_file}:s", g)
    changed = ArchSpec(spec.space, spec.params, fingerprint="0" * 16)
    with pytest.raises(SpaceError, match="has changed"):
        changed.build()
    assert spec.build() is not None


@pytest.mark.parametrize("ref,msg", [
    ("nas/missing.py:space", "does not exist"),
    ("nas/kws_tcresnet.py:nothing", "has no function"),
    ("nas/kws_tcresnet.py:conv_bn", "not decorated with @search_space"),
    ("no_colon", "expected FILE.py:FUNCTION"),
    ("no_such_module_xyz:space", "cannot be imported"),
])
def test_bad_space_references(ref, msg):
    with pytest.raises(SpaceError, match=msg):
        load_space(ref)


def test_categorical_choices_survive_json():
    p = CategoricalParameter([(1, 2), (3, 3)])
    p.set_current(json.loads(json.dumps((3, 3))))
    assert p.current_value == (3, 3)
