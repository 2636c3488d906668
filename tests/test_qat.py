"""QAT model vs integer interpreter: identical integers on every output."""

import numpy as np
import pytest
import torch

from hannah_hw.ir.interpreter import quantize_input, run
from hannah_hw.nas.blocks import batch_norm, conv1d, conv2d, input_tensor, linear, relu
from hannah_hw.nas.functional_operators.executor import BasicExecutor
from hannah_hw.nas.functional_operators.op import ChoiceOp, search_space
from hannah_hw.nas.functional_operators.operators import (
    AdaptiveAvgPooling,
    Add,
    AvgPooling,
    Identity,
    MaxPooling,
)
from hannah_hw.qat.lower import lower
from hannah_hw.qat.pipeline import check_bit_exact
from hannah_hw.qat.qnet import build_qnet


@search_space
def every_op_2d():
    x = input_tensor((1, 3, 12, 10))
    a = relu(batch_norm(conv2d(x, 8, 3)))
    b = relu(batch_norm(conv2d(a, 8, (3, 1), stride=2, groups=8)))  # depthwise, rectangular
    c = batch_norm(conv2d(a, 8, 1, stride=2))
    d = relu(Add()(b, c))
    e = MaxPooling(3, 1, dilation=2, padding=1)(d)
    f = AvgPooling(3, 1, padding=1)(e)  # a window of 9: a fixed-point rescale
    g = ChoiceOp(Identity(), relu)(conv2d(f, 6, 3, dilation=2))
    h = AvgPooling(2)(g)
    return linear(relu(AdaptiveAvgPooling()(h)), 5)


@search_space
def every_op_1d():
    x = input_tensor((1, 6, 33))
    a = relu(batch_norm(conv1d(x, 8, 5, stride=2)))
    b = batch_norm(conv1d(a, 8, 3, dilation=2))
    c = relu(Add()(a, b))
    d = MaxPooling(2)(AvgPooling(4, 2, padding=1)(c))
    return linear(AdaptiveAvgPooling()(d), 4)


def randomized(space, seed):
    torch.manual_seed(seed)
    g = space()
    g.sample(seed)
    ex = BasicExecutor(g)
    for name, buf in ex.named_buffers():  # give BatchNorm real statistics to fold
        buf.copy_(torch.rand_like(buf) + 0.5 if "var" in name else torch.randn_like(buf) * 0.1)
    for p in ex.parameters():
        if p.dim() == 1:
            p.data.uniform_(0.5, 1.5)
    return g, ex.eval()


@pytest.mark.parametrize("space", [every_op_2d, every_op_1d])
@pytest.mark.parametrize("wbits,abits", [(8, 8), (4, 8), (4, 4), (3, 5), (2, 2)])
@pytest.mark.parametrize("scales", ["pow2", "fixed"])
def test_every_operator_lowers_bit_exact(space, wbits, abits, scales):
    g, ex = randomized(space, wbits * 10 + abits)
    shape = ex.inputs[0].current_shape()[1:]
    x = torch.randn(64, *shape) * 1.5
    q = build_qnet(g, ex, wbits, abits, pow2=scales == "pow2")
    q.calibrate([x[:32]])
    qg = lower(q, x, "t")
    exact, _ = check_bit_exact(q, qg, x)
    assert exact["identical"] == exact["outputs"] > 0
    ops = {n.op for n in qg.nodes}
    assert {"conv", "linear", "add", "avgpool", "maxpool", "global_avgpool"} <= ops
    assert all(qg.tensors[n.output].bits in (abits, 8) for n in qg.nodes)


def test_quantised_model_tracks_the_float_model():
    g, ex = randomized(every_op_2d, 3)
    x = torch.randn(128, 3, 12, 10)
    q = build_qnet(g, ex, 8, 8)
    q.calibrate([x])
    ref = ex(x)
    out = q.eval()(x)
    err = (out - ref).abs().max() / ref.abs().max()
    assert err < 0.1


def test_lowering_rejects_a_standalone_batchnorm():
    from hannah_hw.nas.functional_operators.op import GraphError

    @search_space
    def s():
        return linear(batch_norm(relu(conv2d(input_tensor((1, 2, 4, 4)), 4, 3))), 3)

    g = s()
    with pytest.raises(GraphError, match="BatchNorm must follow"):
        build_qnet(g, BasicExecutor(g))


def test_interpreter_accepts_integer_and_float_inputs():
    g, ex = randomized(every_op_1d, 1)
    x = torch.randn(8, 6, 33)
    q = build_qnet(g, ex, 8, 8)
    q.calibrate([x])
    qg = lower(q, x, "t")
    xi = quantize_input(qg, x.numpy())
    assert xi.dtype == np.int64 and xi.min() >= -128 and xi.max() <= 127
    assert np.array_equal(run(qg, xi), q.int_outputs(x).numpy())
