"""Shape inference of every operator against the executor's real output shapes."""

from functools import partial

import numpy as np
import pytest
import torch

from hannah_hw.nas.archspec import build_space
from hannah_hw.nas.blocks import batch_norm, conv1d, conv2d, input_tensor, linear
from hannah_hw.nas.functional_operators.executor import BasicExecutor
from hannah_hw.nas.functional_operators.lazy import lazy
from hannah_hw.nas.functional_operators.op import (
    ChoiceOp,
    GraphError,
    OptionalOp,
    Tensor,
    search_space,
)
from hannah_hw.nas.functional_operators.operators import (
    AdaptiveAvgPooling,
    Add,
    AvgPooling,
    Identity,
    MaxPooling,
    Relu,
)
from hannah_hw.nas.parameters import CategoricalParameter, IntScalarParameter
from hannah_hw.nas.space import active_nodes, violations


def run_and_check(graph, batch=2):
    """Every active node's symbolic shape equals the shape torch produced."""
    ex = BasicExecutor(graph)
    seen = {}
    x = torch.randn(batch, *[int(s) for s in lazy(ex.inputs[0].shape())[1:]])

    def spy(node, fwd):
        return lambda *a: seen.setdefault(node.id, fwd(*a))

    orig = {n: n.forward for n in active_nodes(graph) if hasattr(n, "forward")}
    for n, fwd in orig.items():
        n.forward = spy(n, fwd)
    try:
        out = ex(x)
    finally:
        for n in orig:
            del n.forward
    for n in active_nodes(graph):
        if n.id in seen:
            assert tuple(seen[n.id].shape[1:]) == tuple(lazy(n.shape()))[1:], n.id
    assert tuple(out.shape) == (batch, *lazy(graph.shape())[1:])
    return ex, out


CONV2D_CASES = [  # in_shape, out_ch, kernel (h, w), stride, padding, dilation, groups
    ((1, 3, 17, 12), 8, (3, 3), 1, None, 1, 1),
    ((1, 4, 16, 16), 6, (5, 3), 2, None, 1, 2),
    ((1, 6, 15, 9), 6, (3, 1), 1, 0, 2, 6),  # depthwise, dilated, rectangular
    ((1, 8, 20, 20), 4, (1, 1), 3, 0, 1, 1),
    ((1, 2, 9, 11), 4, (4, 2), 2, 1, 1, 1),  # even kernel
    ((1, 3, 32, 32), 16, (5, 5), 1, 0, 1, 1),
]


@pytest.mark.parametrize("case", CONV2D_CASES)
def test_conv2d_shapes(case):
    in_shape, out_ch, k, stride, padding, dilation, groups = case

    @search_space
    def space():
        return conv2d(input_tensor(in_shape), out_ch, k, stride, dilation, groups, padding)

    g = space()
    assert not violations(g)
    run_and_check(g)


@pytest.mark.parametrize("length,k,stride,dilation,groups", [
    (101, 3, 1, 1, 1), (101, 9, 2, 1, 1), (50, 5, 1, 2, 4), (40, 1, 4, 1, 1), (7, 7, 1, 1, 8)])
def test_conv1d_shapes(length, k, stride, dilation, groups):
    @search_space
    def space():
        return conv1d(input_tensor((1, 8, length)), 16, k, stride, dilation, groups)

    run_and_check(space())


def test_pooling_linear_norm_add_identity_relu_shapes():
    @search_space
    def space():
        x = input_tensor((1, 4, 13, 10))
        a = MaxPooling(3, 2)(x)
        b = AvgPooling(2)(x)
        a = AvgPooling(3, 1, padding=1)(a)
        m = MaxPooling(3, 2)(Identity()(x))
        c = Add()(Relu()(batch_norm(a)), m)
        d = AdaptiveAvgPooling((2, 3))(MaxPooling(2, 1, padding=0, dilation=2)(b))
        e = AdaptiveAvgPooling()(c)
        return Add()(linear(d, 5), linear(e, 5))

    g = space()
    assert not violations(g)
    run_and_check(g)


def test_one_dimensional_pooling():
    @search_space
    def space():
        x = input_tensor((1, 4, 31))
        return AdaptiveAvgPooling()(AvgPooling(2)(MaxPooling(3, 2)(x)))

    run_and_check(space())


def test_choice_optional_and_dynamic_depth_shapes():
    @search_space
    def space():
        x = input_tensor((1, 3, 16, 16))
        k = CategoricalParameter([1, 3, 5], name="k")
        ch = IntScalarParameter(4, 12, step_size=4, name="ch")
        a = ChoiceOp(partial(conv2d, out_channels=ch, kernel_size=k, stride=2),
                     partial(conv2d, out_channels=ch, kernel_size=1, stride=2))(x)
        b = OptionalOp(Relu())(a)
        c = conv2d(b, ch.new(), 3)
        return ChoiceOp(a, b, c, switch=IntScalarParameter(0, 2, name="depth"))()

    g = space()
    rng = np.random.default_rng(0)
    for _ in range(15):
        g.sample(rng)
        run_and_check(g)


@pytest.mark.parametrize("name", ["kws", "image"])
def test_shipped_spaces_shapes_on_many_samples(spaces, name):
    g = build_space(spaces[name])
    rng = np.random.default_rng(1)
    for _ in range(8):
        g.sample(rng)
        assert not violations(g)
        run_and_check(g)


def test_executor_is_traceable_with_fx(spaces):
    g = build_space(spaces["image"])
    g.sample(3)
    torch.manual_seed(0)
    ex = BasicExecutor(g).eval()
    gm = torch.fx.symbolic_trace(ex)
    x = torch.randn(2, 1, 28, 28)
    assert torch.equal(gm(x), ex(x))
    ids = {n.kwargs.get("id") for n in gm.graph.nodes if n.op == "call_function"}
    assert any(i and i.endswith("Linear_0") for i in ids)


def test_shape_mismatch_names_the_node_and_both_shapes():
    @search_space
    def space():
        x = input_tensor((1, 4, 8, 8))
        return Add()(conv2d(x, 4, 3), conv2d(x, 4, 3, stride=2))

    g = space()
    assert any("Add_0" in d for d, _ in violations(g))
    with pytest.raises(GraphError, match=r"Add_0.*\(2, 4, 8, 8\).*\(2, 4, 4, 4\)"):
        BasicExecutor(g)(torch.randn(2, 4, 8, 8))
    with pytest.raises(GraphError, match=r"space_0\.input: input shape \(2, 3, 8, 8\).*"
                                         r"\(1, 4, 8, 8\)"):
        BasicExecutor(g)(torch.randn(2, 3, 8, 8))


def test_wrong_operands_are_clear_errors():
    x = Tensor("input", (1, 3, 8, 8), ("N", "C", "H", "W"))
    with pytest.raises(GraphError, match="Add takes 2..2 operands"):
        Add()(x)
    with pytest.raises(GraphError, match="not a Tensor or an Op"):
        Relu()(3)
