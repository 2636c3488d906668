"""A small 2-D CNN space for image classification: a stem, then up to three stages whose block
type (residual, plain conv, depthwise-separable) is a ChoiceOp, global pooling, a classifier.

``max_macs`` adds a constraint written with the DSL's symbolic cost.
"""

from functools import partial

from hannah_hw.nas.blocks import (
    adaptive_avg_pooling,
    add,
    batch_norm,
    conv2d,
    dynamic_depth,
    input_tensor,
    linear,
    relu,
)
from hannah_hw.nas.cost import macs
from hannah_hw.nas.functional_operators.op import ChoiceOp, scope, search_space
from hannah_hw.nas.parameters import CategoricalParameter, IntScalarParameter


@scope
def conv_bn_relu(input, channels, kernel_size, stride, groups=1):
    out = conv2d(input, channels, kernel_size=kernel_size, stride=stride, groups=groups)
    return relu(batch_norm(out))


@scope
def residual(input, channels, kernel_size, stride):
    main = conv_bn_relu(input, channels, kernel_size, stride)
    main = batch_norm(conv2d(main, channels, kernel_size=kernel_size))
    skip = batch_norm(conv2d(input, channels, kernel_size=1, stride=stride))
    return relu(add(main, skip))


@scope
def plain(input, channels, kernel_size, stride):
    return conv_bn_relu(input, channels, kernel_size, stride)


@scope
def separable(input, channels, kernel_size, stride):
    depthwise = conv_bn_relu(input, input.shape()[1], kernel_size, stride,
                             groups=input.shape()[1])
    return conv_bn_relu(depthwise, channels, 1, 1)


@scope
def stage(input, channels, kernel_size, stride):
    blocks = [partial(b, channels=channels, kernel_size=kernel_size, stride=stride)
              for b in (residual, plain, separable)]
    return ChoiceOp(*blocks)(input)


@search_space
def image_cnn(input_shape=(1, 1, 28, 28), num_classes=10, max_macs=None):
    out = input_tensor(tuple(input_shape))
    out = conv_bn_relu(out, IntScalarParameter(8, 32, step_size=8, name="channels"), 3, 1)
    exits = []
    for _ in range(3):
        out = stage(out, IntScalarParameter(8, 64, step_size=8, name="channels"),
                    CategoricalParameter([3, 5], name="kernel_size"),
                    CategoricalParameter([1, 2], name="stride"))
        exits.append(out)
    out = dynamic_depth(*exits, switch=IntScalarParameter(0, 2, name="depth"))
    out = linear(adaptive_avg_pooling(out), num_classes)
    if max_macs is not None:
        out.cond(macs(out) <= max_macs)
    return out
