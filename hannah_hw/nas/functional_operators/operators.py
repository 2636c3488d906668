"""The operators of the DSL. Each knows its output shape and MACs as expressions, the
conditions under which it is buildable, and its torch forward as an fx leaf call carrying the
node id (so a traced graph names every layer the way the space does)."""

from __future__ import annotations

import torch
import torch.fx
import torch.nn.functional as F

from hannah_hw.nas.expressions.arithmetic import Prod
from hannah_hw.nas.expressions.conditions import EQ

from .lazy import lazy
from .op import GraphError, Op
from .shapes import (
    adaptive_average_pooling_shape,
    conv_shape,
    identity_shape,
    linear_shape,
    padding_expression,
    pool_shape,
)


def _tuple(v, dims):
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * dims


@torch.fx.wrap
def conv(input, weight, stride, padding, dilation, groups, *, id):
    fn = F.conv1d if weight.dim() == 3 else F.conv2d
    return fn(input, weight, None, stride, padding, dilation, groups)


@torch.fx.wrap
def linear(input, weight, *, id):
    return F.linear(torch.flatten(input, 1), weight.t())


@torch.fx.wrap
def batch_norm(input, mean, var, weight, bias, *, id, training):
    return F.batch_norm(input, mean, var, weight, bias, training=training)


@torch.fx.wrap
def relu(input, *, id):
    return F.relu(input)


@torch.fx.wrap
def add(input, other, *, id):
    return input + other


@torch.fx.wrap
def max_pool(input, kernel_size, stride, padding, dilation, *, id):
    fn = F.max_pool1d if input.dim() == 3 else F.max_pool2d
    return fn(input, kernel_size, stride, padding, dilation)


@torch.fx.wrap
def avg_pool(input, kernel_size, stride, padding, *, id):
    fn = F.avg_pool1d if input.dim() == 3 else F.avg_pool2d
    return fn(input, kernel_size, stride, padding)


@torch.fx.wrap
def adaptive_avg_pool(input, output_size, *, id):
    fn = F.adaptive_avg_pool1d if input.dim() == 3 else F.adaptive_avg_pool2d
    return fn(input, output_size)


class _ConvNd(Op):
    dims = 2
    n_operands = (2, 2)
    operand_names = ("input", "weight")
    owned_operands = (1,)
    _attrs = ("stride", "dilation", "groups", "padding", "weight_bits", "act_bits")

    def __init__(self, stride=1, dilation=1, groups=1, padding=None, weight_bits=None,
                 act_bits=None):
        super().__init__()
        self.stride, self.dilation, self.groups, self.padding = stride, dilation, groups, padding
        # quantisation bit widths (None: the trainer's default); may be search parameters
        self.weight_bits, self.act_bits = weight_bits, act_bits

    def _connected(self):
        x, w = self.operands
        if len(x.shape()) != self.dims + 2 or len(w.shape()) != self.dims + 2:
            raise GraphError(
                f"{self.id}: {self.name} needs a {self.dims + 2}-d input and weight, got "
                f"input {len(x.shape())}-d and weight {len(w.shape())}-d")
        self.in_channels = x.shape()[1]
        self.out_channels = w.shape()[0]
        self.kernel_size = tuple(w.shape()[2:]) if self.dims > 1 else w.shape()[2]
        if self.padding is None:
            ks = _tuple(self.kernel_size, self.dims)
            strides, dils = _tuple(self.stride, self.dims), _tuple(self.dilation, self.dims)
            pads = tuple(padding_expression(k, s, d) for k, s, d in zip(ks, strides, dils))
            self.padding = pads if self.dims > 1 else pads[0]

    def shape_fun(self):
        return conv_shape(*self.operands, dims=self.dims, stride=self.stride,
                          padding=self.padding, dilation=self.dilation)

    def macs(self):
        w = self.operands[1].shape()
        return Prod(*self.shape()[1:], w[1], *w[2:])

    def structural_conditions(self):
        x, w = (o.shape() for o in self.operands)
        conds = [
            (f"{self.id}: input channels = weight in-channels x groups",
             EQ(x[1], w[1] * self.groups)),
            (f"{self.id}: output channels divisible by groups", EQ(w[0] % self.groups, 0)),
        ]
        conds += [(f"{self.id}: output size >= 1", s >= 1) for s in self.shape()[2:]]
        return conds

    def _forward_implementation(self, x, w):
        return conv(x, w, lazy(self.stride), lazy(self.padding), lazy(self.dilation),
                    lazy(self.groups), id=self.id)


class Conv1d(_ConvNd):
    dims = 1


class Conv2d(_ConvNd):
    dims = 2


class Linear(Op):
    """``out = flatten(input) @ weight`` with the weight laid out (in_features, out_features)."""

    n_operands = (2, 2)
    operand_names = ("input", "weight")
    owned_operands = (1,)
    _attrs = ("weight_bits", "act_bits")

    def __init__(self, weight_bits=None, act_bits=None):
        super().__init__()
        self.weight_bits, self.act_bits = weight_bits, act_bits

    def _connected(self):
        self.in_features, self.out_features = self.operands[1].shape()[:2]

    def shape_fun(self):
        return linear_shape(*self.operands)

    def macs(self):
        return Prod(self.in_features, self.out_features)

    def structural_conditions(self):
        flat = Prod(*self.operands[0].shape()[1:])
        return [(f"{self.id}: flattened input size = in_features", EQ(flat, self.in_features))]

    def _forward_implementation(self, x, w):
        return linear(x, w, id=self.id)


class Relu(Op):
    def shape_fun(self):
        return identity_shape(*self.operands)

    def _forward_implementation(self, x):
        return relu(x, id=self.id)


class Identity(Op):
    def shape_fun(self):
        return identity_shape(*self.operands)

    def _forward_implementation(self, x):
        return x


class Add(Op):
    n_operands = (2, 2)
    operand_names = ("input", "other")

    def shape_fun(self):
        return identity_shape(*self.operands)

    def structural_conditions(self):
        a, b = (o.shape() for o in self.operands)
        if len(a) != len(b):
            raise GraphError(f"{self.id}: adds a {len(a)}-d and a {len(b)}-d tensor")
        return [(f"{self.id}: operand sizes match in dim {d}", EQ(a[d], b[d]))
                for d in range(1, len(a))]

    def _forward_implementation(self, x, y):
        return add(x, y, id=self.id)


class BatchNorm(Op):
    """Batch norm over channels: operands (input, running_mean, running_var[, weight, bias]).

    The third operand is a variance (HANNAH names it ``running_std`` but used it as a
    variance); affine weight and bias are learned by the executor when not given.
    """

    n_operands = (3, 5)
    operand_names = ("input", "running_mean", "running_var", "weight", "bias")
    owned_operands = (1, 2, 3, 4)

    def __init__(self, affine: bool = True, track_running_stats: bool = True):
        super().__init__()
        self.affine, self.track_running_stats = affine, track_running_stats
        self.training = True  # set by the executor's train()/eval()

    def shape_fun(self):
        return identity_shape(*self.operands)

    def structural_conditions(self):
        c = self.operands[0].shape()[1]
        return [(f"{self.id}: {self.operand_names[i]} has one value per channel",
                 EQ(o.shape()[0], c)) for i, o in enumerate(self.operands[1:], 1)]

    def _forward_implementation(self, x, mean, var, weight=None, bias=None):
        return batch_norm(x, mean, var, weight, bias, id=self.id, training=self.training)


class _Pool(Op):
    _attrs = ("kernel_size", "stride", "padding", "dilation")

    def __init__(self, kernel_size, stride=None, padding=None, dilation=1):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.dilation = dilation
        self.padding = padding_expression(kernel_size, self.stride, dilation) \
            if padding is None else padding

    def _dims(self) -> int:
        return len(self.operands[0].shape()) - 2

    def shape_fun(self):
        return pool_shape(self.operands[0], self._dims(), self.kernel_size, self.stride,
                          self.padding, self.dilation)

    def structural_conditions(self):
        return [(f"{self.id}: padding at most half the kernel",
                 2 * self.padding <= self.kernel_size)] + [
            (f"{self.id}: output size >= 1", s >= 1) for s in self.shape()[2:]]


class MaxPooling(_Pool):
    def _forward_implementation(self, x):
        return max_pool(x, lazy(self.kernel_size), lazy(self.stride), lazy(self.padding),
                        lazy(self.dilation), id=self.id)


class AvgPooling(_Pool):
    """Average pooling; padded positions count as zeros (the window is always k wide)."""

    def structural_conditions(self):
        return super().structural_conditions() + [(f"{self.id}: no dilation", EQ(self.dilation, 1))]

    def _forward_implementation(self, x):
        return avg_pool(x, lazy(self.kernel_size), lazy(self.stride), lazy(self.padding),
                        id=self.id)


class AdaptiveAvgPooling(Op):
    """Average to a fixed output size; the default (1) is global average pooling."""

    _attrs = ("output_size",)

    def __init__(self, output_size=1):
        super().__init__()
        self.output_size = output_size

    def shape_fun(self):
        return adaptive_average_pooling_shape(self.operands[0], self.output_size)

    def _forward_implementation(self, x):
        dims = len(self.operands[0].shape()) - 2
        size = lazy(self.output_size)
        return adaptive_avg_pool(x, size if dims > 1 else _tuple(size, 1)[0], id=self.id)
