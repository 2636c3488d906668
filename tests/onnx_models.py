"""Float ONNX models built by hand and quantised by onnxruntime, for the importer's tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def float_cnn(path: Path, seed: int = 0, dims: int = 2, pools: bool = True
              ) -> tuple[Path, tuple[int, ...]]:
    """conv-relu, a residual conv branch with add, max pool, (average pool, global pool,)
    gemm."""
    rng = np.random.default_rng(seed)
    shape = (1, 3, 12, 12) if dims == 2 else (1, 6, 32)
    k = (3,) * dims
    inits, nodes = [], []

    def w(name, *s, scale=None):
        scale = scale or 1 / np.sqrt(np.prod(s[1:]))
        inits.append(numpy_helper.from_array(rng.normal(0, scale, s).astype(np.float32), name))
        return name

    def conv(x, out, cin, cout, name, stride=1, relu=True):
        nodes.append(helper.make_node("Conv", [x, w(f"{name}_w", cout, cin, *k),
                                               w(f"{name}_b", cout, scale=0.1)],
                                      [f"{name}_c" if relu else out],
                                      pads=[1] * (2 * dims), strides=[stride] * dims))
        if relu:
            nodes.append(helper.make_node("Relu", [f"{name}_c"], [out]))

    c = shape[1]
    conv("input", "a", c, 8, "c1")
    conv("a", "b", 8, 8, "c2", relu=False)
    nodes.append(helper.make_node("Add", ["a", "b"], ["s"]))
    nodes.append(helper.make_node("Relu", ["s"], ["r"]))
    nodes.append(helper.make_node("MaxPool", ["r"], ["m"], kernel_shape=[2] * dims,
                                  strides=[2] * dims))
    conv("m", "d", 8, 12, "c3", stride=2 if pools else 3)
    if pools:
        nodes.append(helper.make_node("AveragePool", ["d"], ["p"], kernel_shape=[2] * dims,
                                      strides=[2] * dims))
        nodes.append(helper.make_node("GlobalAveragePool", ["p"], ["g"]))
        nodes.append(helper.make_node("Flatten", ["g"], ["f"], axis=1))
    else:
        nodes.append(helper.make_node("Flatten", ["d"], ["f"], axis=1))
    n_in = 12 if pools else (48 if dims == 2 else 72)
    nodes.append(helper.make_node("Gemm", ["f", w("fc_w", 5, n_in), w("fc_b", 5, scale=0.1)],
                                  ["output"], transB=1))
    graph = helper.make_graph(
        nodes, "float_cnn", [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                           ["N", *shape[1:]])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 5])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path, shape[1:]


def quantize(src: Path, dst: Path, shape, fmt: str, per_channel: bool, seed: int = 1,
             activation: str = "uint8", reduce_range: bool = False) -> np.ndarray:
    """onnxruntime.quantization.quantize_static; returns the calibration/test inputs."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    x = np.random.default_rng(seed).normal(0, 1, (64, *shape)).astype(np.float32)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(x[i:i + 1] for i in range(32))

        def get_next(self):
            v = next(self.it, None)
            return None if v is None else {"input": v}

    quantize_static(str(src), str(dst), Reader(),
                    quant_format=QuantFormat.QDQ if fmt == "qdq" else QuantFormat.QOperator,
                    per_channel=per_channel, weight_type=QuantType.QInt8,
                    reduce_range=reduce_range,
                    activation_type=QuantType.QUInt8 if activation == "uint8" else QuantType.QInt8)
    return x


def edited(src: Path, dst: Path, edit) -> Path:
    """A copy of the model at ``src`` changed in place by ``edit(model)``, saved to ``dst``."""
    model = onnx.load(str(src))
    edit(model)
    onnx.save(model, str(dst))
    return dst


def set_initializer(model: onnx.ModelProto, name: str, value) -> None:
    """Replace an initializer's values, keeping its dtype and shape."""
    for i, init in enumerate(model.graph.initializer):
        if init.name == name:
            old = numpy_helper.to_array(init)
            new = np.broadcast_to(np.asarray(value, old.dtype), old.shape).copy()
            model.graph.initializer[i].CopyFrom(numpy_helper.from_array(new, name))
            return
    raise KeyError(name)


def set_attribute(node: onnx.NodeProto, name: str, value) -> None:
    for i, a in enumerate(node.attribute):
        if a.name == name:
            del node.attribute[i]
            break
    node.attribute.append(helper.make_attribute(name, value))
