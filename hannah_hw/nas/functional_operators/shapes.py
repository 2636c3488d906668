"""Shape functions: output shapes as expressions of the parameters."""

from hannah_hw.nas.expressions.arithmetic import Ceil, Floor, Max
from hannah_hw.nas.expressions.core import Expression


def _per_dim(value, dims: int) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * dims


def _simplify(value):
    """Fold expressions without free parameters into plain numbers."""
    if isinstance(value, Expression) and not value.parameters():
        return value.evaluate()
    return value


def conv_out(size, kernel, stride, padding, dilation):
    return _simplify(Floor((size + 2 * padding - dilation * (kernel - 1) - 1) / stride) + 1)


def padding_expression(kernel_size, stride, dilation=1):
    """Padding that keeps the size at stride 1 (odd kernels) and divides it by the stride."""
    return _simplify(Max(0, Ceil((dilation * (kernel_size - 1) - stride + 1) / 2)))


def conv_shape(input, weight, dims, stride, padding, dilation) -> tuple:
    in_shape, w_shape = input.shape(), weight.shape()
    kernel = w_shape[2:2 + dims]
    strides, pads, dils = (_per_dim(v, dims) for v in (stride, padding, dilation))
    spatial = tuple(
        conv_out(in_shape[2 + d], kernel[d], strides[d], pads[d], dils[d]) for d in range(dims)
    )
    return (in_shape[0], w_shape[0], *spatial)


def pool_shape(input, dims, kernel_size, stride, padding, dilation) -> tuple:
    in_shape = input.shape()
    ks, strides, pads, dils = (_per_dim(v, dims) for v in (kernel_size, stride, padding, dilation))
    spatial = tuple(
        conv_out(in_shape[2 + d], ks[d], strides[d], pads[d], dils[d]) for d in range(dims)
    )
    return (in_shape[0], in_shape[1], *spatial)


def linear_shape(input, weight) -> tuple:
    return (input.shape()[0], weight.shape()[1])


def identity_shape(input, *_ignored) -> tuple:
    return tuple(input.shape())


def adaptive_average_pooling_shape(input, output_size) -> tuple:
    in_shape = input.shape()
    return (in_shape[0], in_shape[1], *_per_dim(output_size, len(in_shape) - 2))
