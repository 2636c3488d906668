"""A TC-ResNet-like keyword-spotting space (Choi et al. 2019): 1-D temporal convolutions over
MFCC frames, residual blocks with a 1x1 shortcut, depth chosen by a dynamic-depth ChoiceOp.

Input: (1, n_mfcc, frames) as the KWS data set produces it; output: class logits.
"""

from hannah_hw.nas.blocks import (
    adaptive_avg_pooling,
    add,
    batch_norm,
    conv1d,
    dynamic_depth,
    input_tensor,
    linear,
    relu,
)
from hannah_hw.nas.functional_operators.op import scope, search_space
from hannah_hw.nas.parameters import CategoricalParameter, IntScalarParameter


@scope
def conv_bn(input, channels, kernel_size, stride):
    return batch_norm(conv1d(input, channels, kernel_size=kernel_size, stride=stride))


@scope
def residual(input, channels, kernel_size, stride):
    main = relu(conv_bn(input, channels, kernel_size, stride))
    main = conv_bn(main, channels, kernel_size, 1)
    skip = conv_bn(input, channels, 1, stride)
    return relu(add(main, skip))


@search_space
def kws_tcresnet(input_shape=(1, 40, 101), num_classes=12, max_blocks=4):
    channels = IntScalarParameter(8, 64, step_size=8, name="channels")
    kernel = CategoricalParameter([3, 5, 7, 9], name="kernel_size")
    stride = CategoricalParameter([1, 2], name="stride")
    out = input_tensor(tuple(input_shape))
    out = relu(conv_bn(out, IntScalarParameter(8, 32, step_size=8, name="channels"), 3, 1))
    exits = []
    for _ in range(max_blocks):
        out = residual(out, channels.new(), kernel.new(), stride.new())
        exits.append(out)
    depth = IntScalarParameter(0, max_blocks - 1, name="depth")
    out = dynamic_depth(*exits, switch=depth)
    out = adaptive_avg_pooling(out)
    return linear(out, num_classes)
