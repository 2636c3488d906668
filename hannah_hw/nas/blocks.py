"""Building blocks for spaces: the seed tutorial's helper functions, plus 1-D variants and
the dynamic-depth choice. Weight layouts follow the seed (Linear: in_features x out_features).
"""

from __future__ import annotations

from hannah_hw.nas.functional_operators.op import ChoiceOp, Tensor, scope
from hannah_hw.nas.functional_operators.operators import (
    AdaptiveAvgPooling,
    Add,
    BatchNorm,
    Conv1d,
    Conv2d,
    Identity,
    Linear,
    Relu,
)


def input_tensor(shape=(1, 3, 32, 32), axis=None):
    axis = axis or ("N", "C", "H", "W")[: len(shape)] if len(shape) == 4 else ("N", "C", "L")
    return Tensor(name="input", shape=tuple(shape), axis=axis, grad=False)


def conv2d(input, out_channels, kernel_size=1, stride=1, dilation=1, groups=1, padding=None):
    in_channels = input.shape()[1]
    kh, kw = kernel_size if isinstance(kernel_size, tuple) else (kernel_size, kernel_size)
    weight = Tensor(name="weight", shape=(out_channels, in_channels // groups, kh, kw),
                    axis=("O", "I", "kH", "kW"), grad=True)
    return Conv2d(stride=stride, dilation=dilation, groups=groups, padding=padding)(input, weight)


def conv1d(input, out_channels, kernel_size=1, stride=1, dilation=1, groups=1, padding=None):
    in_channels = input.shape()[1]
    weight = Tensor(name="weight", shape=(out_channels, in_channels // groups, kernel_size),
                    axis=("O", "I", "k"), grad=True)
    return Conv1d(stride=stride, dilation=dilation, groups=groups, padding=padding)(input, weight)


def linear(input, out_features):
    shape = input.shape()
    in_features = shape[1]
    for s in shape[2:]:
        in_features = in_features * s
    weight = Tensor(name="weight", shape=(in_features, out_features),
                    axis=("in_features", "out_features"), grad=True)
    return Linear()(input, weight)


def batch_norm(input):
    n_chans = input.shape()[1]
    running_mu = Tensor(name="running_mean", shape=(n_chans,), axis=("c",))
    running_var = Tensor(name="running_var", shape=(n_chans,), axis=("c",))
    return BatchNorm()(input, running_mu, running_var)


def relu(input):
    return Relu()(input)


def add(input, other):
    return Add()(input, other)


def identity(input):
    return Identity()(input)


def adaptive_avg_pooling(input, output_size=1):
    return AdaptiveAvgPooling(output_size)(input)


@scope
def conv_relu(input, out_channels, kernel_size, stride):
    out = conv2d(input, out_channels=out_channels, stride=stride, kernel_size=kernel_size)
    return relu(out)


@scope
def dynamic_depth(*exits, switch):
    """Exit after block ``switch`` (0 = after the first)."""
    return ChoiceOp(*exits, switch=switch)()
