"""QGraph: the integer-only network every stage after training reads.

JSON (structure, bit widths, scales as integer mantissa/exponent pairs) beside an ``.npz``
(integer weights, biases, multipliers, shifts). After lowering there are no floats: the
scales only say how to quantise inputs and dequantise outputs.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "hannah-hw-qgraph"
FORMAT_VERSION = 1
OPS = ("conv", "linear", "add", "avgpool", "maxpool", "global_avgpool", "relu")
REQUIRED = {"conv": ("stride", "padding", "dilation", "groups"), "add": ("m_a", "m_b", "sh"),
            "avgpool": ("kernel", "stride", "padding", "m", "sh"), "global_avgpool": ("m", "sh"),
            "maxpool": ("kernel", "stride", "padding")}
PARAMS = {"conv": ("weight", "bias", "m", "sh"), "linear": ("weight", "bias", "m", "sh")}


class QGraphError(ValueError):
    """A QGraph that is malformed or inconsistent."""


@dataclasses.dataclass(frozen=True)
class TensorInfo:
    shape: tuple[int, ...]  # per sample, no batch axis
    bits: int
    signed: bool
    scale_m: int = 1  # real = (q - zero_point) * scale_m * 2**scale_e
    scale_e: int = 0
    zero_point: int = 0

    @property
    def scale(self) -> float:
        return self.scale_m * 2.0 ** self.scale_e

    @property
    def range(self) -> tuple[int, int]:
        from .numerics import int_range

        return int_range(self.bits, self.signed)


@dataclasses.dataclass(frozen=True)
class Node:
    op: str
    name: str
    inputs: tuple[str, ...]
    output: str
    attrs: dict[str, Any] = dataclasses.field(default_factory=dict)
    params: dict[str, str] = dataclasses.field(default_factory=dict)  # role -> array key


@dataclasses.dataclass(frozen=True)
class QGraph:
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    tensors: dict[str, TensorInfo]
    nodes: tuple[Node, ...]
    arrays: dict[str, np.ndarray]
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)

    def param(self, node: Node, role: str) -> np.ndarray:
        return self.arrays[node.params[role]]

    def macs(self) -> int:
        """Multiply-accumulates per sample."""
        total = 0
        for n in self.nodes:
            if n.op == "conv":
                w = self.param(n, "weight")
                total += math.prod(self.tensors[n.output].shape[1:]) * w.size
            elif n.op == "linear":
                total += self.param(n, "weight").size
        return total

    # serialisation
    def to_dict(self) -> dict:
        return {
            "format": FORMAT, "format_version": FORMAT_VERSION, "name": self.name,
            "inputs": list(self.inputs), "outputs": list(self.outputs),
            "tensors": {k: {**dataclasses.asdict(t), "shape": list(t.shape)}
                        for k, t in self.tensors.items()},
            "nodes": [{**dataclasses.asdict(n), "inputs": list(n.inputs)} for n in self.nodes],
            "arrays": {k: {"dtype": str(a.dtype), "shape": list(a.shape)}
                       for k, a in self.arrays.items()},
            "meta": self.meta,
        }

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        np.savez_compressed(path.with_suffix(".npz"), **self.arrays)
        return path

    @classmethod
    def load(cls, path: str | Path) -> QGraph:
        path = Path(path)
        if not path.is_file():
            raise QGraphError(f"{path}: no such QGraph file")
        try:
            d = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise QGraphError(f"{path}: not JSON ({e})") from None
        npz = path.with_suffix(".npz")
        if not npz.is_file():
            raise QGraphError(f"{path}: its weights file {npz.name} is missing")
        try:
            with np.load(npz, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError) as e:
            raise QGraphError(f"{npz}: cannot be read ({e})") from None
        g = from_dict(d, arrays, str(path))
        check(g, str(path))
        return g


def from_dict(d: dict, arrays: dict[str, np.ndarray], where: str = "QGraph") -> QGraph:
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise QGraphError(f"{where}: not a hannah-hw QGraph (format is not {FORMAT!r})")
    if d.get("format_version") != FORMAT_VERSION:
        raise QGraphError(f"{where}: unsupported format_version {d.get('format_version')!r}")
    try:
        tensors = {k: TensorInfo(**{**t, "shape": tuple(t["shape"])})
                   for k, t in d["tensors"].items()}
        nodes = tuple(Node(**{**n, "inputs": tuple(n["inputs"])}) for n in d["nodes"])
        for k, spec in d["arrays"].items():
            if k not in arrays:
                raise QGraphError(f"{where}: array {k!r} missing from the .npz")
            if list(arrays[k].shape) != spec["shape"] or str(arrays[k].dtype) != spec["dtype"]:
                raise QGraphError(f"{where}: array {k!r} is {arrays[k].dtype}{arrays[k].shape}, "
                                  f"the graph says {spec['dtype']}{tuple(spec['shape'])}")
        return QGraph(d["name"], tuple(d["inputs"]), tuple(d["outputs"]), tensors, nodes,
                      arrays, d.get("meta", {}))
    except (KeyError, TypeError) as e:
        raise QGraphError(f"{where}: malformed ({type(e).__name__}: {e})") from None


def _out_size(size, k, s, p, d):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def infer_shape(g: QGraph, n: Node) -> tuple[int, ...]:
    """The output shape the node's attributes and inputs imply."""
    x = g.tensors[n.inputs[0]].shape
    a = n.attrs
    if n.op == "conv":
        w = g.param(n, "weight")
        sp = tuple(_out_size(x[1 + i], w.shape[2 + i], a["stride"][i], a["padding"][i],
                             a["dilation"][i]) for i in range(w.ndim - 2))
        return (w.shape[0], *sp)
    if n.op == "linear":
        return (g.param(n, "weight").shape[0],)
    if n.op in ("avgpool", "maxpool"):
        dil = a.get("dilation", [1] * len(a["kernel"]))
        return (x[0], *(_out_size(x[1 + i], a["kernel"][i], a["stride"][i], a["padding"][i],
                                  dil[i]) for i in range(len(a["kernel"]))))
    if n.op == "global_avgpool":
        return (x[0], *([1] * (len(x) - 1)))
    return x


def check(g: QGraph, where: str = "QGraph") -> None:
    """Validate structure, shapes, bit widths and value ranges; raise QGraphError naming the
    first problem and where it is."""
    def fail(msg, node=None):
        at = f" node {node.name} ({node.op}):" if node else ""
        raise QGraphError(f"{where}:{at} {msg}")

    defined = set(g.inputs)
    for t in (*g.inputs, *g.outputs):
        if t not in g.tensors:
            fail(f"tensor {t!r} is not declared")
    for name, t in g.tensors.items():
        if not 2 <= t.bits <= 16:
            fail(f"tensor {name!r} has {t.bits} bits; 2 to 16 are supported")
        lo, hi = t.range
        if not lo <= t.zero_point <= hi:
            fail(f"tensor {name!r}: zero point {t.zero_point} outside [{lo}, {hi}]")
    for n in g.nodes:
        if n.op not in OPS:
            fail(f"unknown op {n.op!r} (supported: {', '.join(OPS)})", n)
        for t in n.inputs:
            if t not in defined:
                fail(f"input {t!r} is not defined before use", n)
        if n.output in defined:
            fail(f"output {n.output!r} is written twice", n)
        if n.output not in g.tensors:
            fail(f"output {n.output!r} is not declared", n)
        lacking = [a for a in REQUIRED.get(n.op, ()) if a not in n.attrs] + \
            [p for p in PARAMS.get(n.op, ()) if p not in n.params]
        if lacking:
            fail(f"lacks {', '.join(lacking)}", n)
        for role, key in n.params.items():
            if key not in g.arrays:
                fail(f"{role} array {key!r} is missing", n)
        try:
            shape = infer_shape(g, n)
        except (KeyError, IndexError, TypeError) as e:
            fail(f"malformed attributes or parameters ({type(e).__name__}: {e})", n)
        if shape != g.tensors[n.output].shape:
            fail(f"output shape {g.tensors[n.output].shape} but inputs and attributes give "
                 f"{shape}", n)
        if n.attrs.get("rounding", "half_up") not in ("half_up", "half_even"):
            fail(f"rounding must be half_up or half_even, got {n.attrs['rounding']!r}", n)
        _check_params(g, n, fail)
        defined.add(n.output)
    for t in g.outputs:
        if t not in defined:
            fail(f"output {t!r} is never computed")


def _check_params(g: QGraph, n: Node, fail) -> None:
    if n.op not in ("conv", "linear"):
        if "sh" in n.attrs and int(n.attrs["sh"]) < 1:
            fail("shift sh must be >= 1", n)
        return
    w = g.param(n, "weight")
    wbits = n.attrs.get("wbits", 8)
    lo, hi = -(1 << (wbits - 1)), (1 << (wbits - 1)) - 1
    if w.size and (w.min() < lo or w.max() > hi):
        fail(f"weights outside the {wbits}-bit range [{lo}, {hi}]", n)
    o = w.shape[0]
    for role in ("bias", "m", "sh"):
        if g.param(n, role).shape != (o,):
            fail(f"{role} has shape {g.param(n, role).shape}, expected ({o},)", n)
    if (g.param(n, "sh") < 1).any() or (g.param(n, "m") < 0).any():
        fail("requantisation needs shifts >= 1 and multipliers >= 0", n)
    x = g.tensors[n.inputs[0]]
    fan_in = math.prod(w.shape[1:])
    bound = (1 << (x.bits + 1)) * (hi + 1) * fan_in + int(np.abs(g.param(n, "bias")).max())
    if bound * int(g.param(n, "m").max(initial=1)) >= 2 ** 62:
        fail("accumulator times multiplier could exceed 62 bits", n)
    if n.op == "conv" and x.shape[0] != w.shape[1] * n.attrs["groups"]:
        fail(f"input has {x.shape[0]} channels, weight expects {w.shape[1]} x "
             f"{n.attrs['groups']} groups", n)
    if n.op == "linear" and math.prod(x.shape) != w.shape[1]:
        fail(f"input has {math.prod(x.shape)} features, weight expects {w.shape[1]}", n)
