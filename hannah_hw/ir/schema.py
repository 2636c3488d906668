"""The QGraph's schema: every field's type and range, checked whenever a graph is loaded,
lowered or imported. A graph that passes runs through ``infer``, ``cost``, ``generate`` and
``simulate`` without tracebacks and in bounded time; the accelerator's own limits (weight
bits, accumulator width, memory sizes) stay with AccelConfig, as one-line ConfigErrors.

The bounds come from the numerics (numerics.py: int64 requantisation, float64 convolution)
and from the 32-bit descriptor words; every error names the field and where it is."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np

from hannah_hw.util.names import printable

from .numerics import ACC_LIMIT, FLOAT_EXACT, MAX_MULT, MAX_SHIFT, int_range
from .records import Node, TensorInfo

if TYPE_CHECKING:
    from .qgraph import QGraph

BITS = (2, 16)  # activation and weight widths: products and sums stay exact in int64/float64
MAX_INT = (1 << 31) - 1  # attribute integers fit a 32-bit descriptor word
MAX_ELEMS = 1 << 24  # elements per tensor and per padded input: bounds memory
MAX_WORK = 1 << 32  # multiply-adds or window taps per node and sample: bounds run time
SCALE_M_MAX = (1 << 53) - 1  # a scale's mantissa is exact as a float
SCALE_LOG2 = (-126, 127)  # scales stay in float32's normal range, as ONNX writes them
ROUNDING = ("half_up", "half_even")

# op -> attribute -> (kind, min, max); "dims" is one integer per spatial axis
_MS = {"m": ("int", 0, MAX_MULT), "sh": ("int", 1, MAX_SHIFT)}
_WINDOW = {"kernel": ("dims", 1, MAX_INT), "stride": ("dims", 1, MAX_INT),
           "padding": ("dims", 0, MAX_INT)}
COMMON = {"relu": ("bool",), "rounding": ("enum", ROUNDING)}
ATTRS: dict[str, dict[str, tuple]] = {
    "conv": {"stride": ("dims", 1, MAX_INT), "padding": ("dims", 0, MAX_INT),
             "dilation": ("dims", 1, MAX_INT), "groups": ("int", 1, MAX_INT),
             "wbits": ("int", *BITS)},
    "linear": {"wbits": ("int", *BITS)},
    "add": {"m_a": ("int", 0, MAX_MULT), "m_b": ("int", 0, MAX_MULT), **_MS},
    "avgpool": {**_WINDOW, **_MS},
    "maxpool": {**_WINDOW, "dilation": ("dims", 1, MAX_INT)},
    "global_avgpool": dict(_MS),
    "relu": {},
}
OPS = tuple(ATTRS)
REQUIRED = {"conv": ("stride", "padding", "dilation", "groups"), "add": ("m_a", "m_b", "sh"),
            "avgpool": ("kernel", "stride", "padding", "m", "sh"), "global_avgpool": ("m", "sh"),
            "maxpool": ("kernel", "stride", "padding")}
PARAMS = {"conv": ("weight", "bias", "m", "sh"), "linear": ("weight", "bias", "m", "sh")}
PARAM_RANGE = {"bias": (1 - ACC_LIMIT, ACC_LIMIT - 1), "m": (0, MAX_MULT), "sh": (1, MAX_SHIFT)}
# raw JSON records: field -> (type, required)
_DOC = {"name": (str, True), "inputs": (list, True), "outputs": (list, True),
        "tensors": (dict, True), "nodes": (list, True), "arrays": (dict, True),
        "meta": (dict, False)}
_TENSOR = {"shape": (list, True), "bits": (object, True), "signed": (object, True),
           "scale_m": (object, False), "scale_e": (object, False), "zero_point": (object, False)}
_NODE = {"op": (str, True), "name": (str, True), "inputs": (list, True), "output": (str, True),
         "attrs": (dict, False), "params": (dict, False)}
_SPEC = {"dtype": (str, True), "shape": (list, True)}
_JSON = {str: "a string", list: "a list", dict: "an object"}


class QGraphError(ValueError):
    """A QGraph that is malformed or inconsistent."""


def is_int(v: Any) -> bool:
    """A real integer: not a bool, float or string."""
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _fail(where: str, at: str = "") -> Callable[[str], NoReturn]:
    def fail(msg: str) -> NoReturn:
        raise QGraphError(f"{where}: {at}{msg}")
    return fail


def _int(fail, field: str, v, lo: int | None = None, hi: int | None = None) -> int:
    if not is_int(v):
        fail(f"{field} is {_show(v)} ({_kind(v)}); must be an integer")
    if lo is not None and v < lo:
        fail(f"{field} is {v}; must be >= {lo}")
    if hi is not None and v > hi:
        fail(f"{field} is {v}; must be <= {hi}")
    return int(v)


def _record(fail, what: str, rec, fields: dict) -> None:
    """A JSON object with the given fields, of the given container types."""
    if not isinstance(rec, dict):
        fail(f"{what} is {_kind(rec)}; must be an object")
    for k in rec:
        if k not in fields:
            fail(f"{what}.{printable(k)} is not a field (known: {', '.join(fields)})")
    for k, (typ, required) in fields.items():
        if k not in rec:
            if required:
                fail(f"{what}.{k} is missing")
        elif typ is not object and not isinstance(rec[k], typ):
            fail(f"{what}.{k} is {_kind(rec[k])}; must be {_JSON[typ]}")


def _show(v) -> str:
    """A value for a one-line message, shortened."""
    return printable(repr(v), 40)


def _kind(v) -> str:
    """A JSON value's kind, for messages (values themselves may be long)."""
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
             type(None): "null", int: "an integer", float: "a number"}
    return names.get(type(v), type(v).__name__)


def check_document(d: dict, where: str) -> None:
    """The JSON's structure: the records and containers the dataclasses are built from."""
    fail = _fail(where)
    _record(fail, "graph", {k: v for k, v in d.items() if k not in ("format", "format_version")},
            _DOC)
    for name, t in d["tensors"].items():
        _record(fail, f"tensors[{name!r}]", t, _TENSOR)
    for i, n in enumerate(d["nodes"]):
        _record(fail, f"nodes[{i}]", n, _NODE)
        for j, t in enumerate(n["inputs"]):
            if not isinstance(t, str):
                fail(f"nodes[{i}].inputs[{j}] is {_show(t)}; must be a tensor name")
        for role, key in n.get("params", {}).items():
            if not isinstance(key, str):
                fail(f"nodes[{i}].params.{printable(role)} is {_show(key)}; must be an array "
                     "name")
    for k, spec in d["arrays"].items():
        _record(fail, f"arrays[{k!r}]", spec, _SPEC)
        for i, s in enumerate(spec["shape"]):
            _int(fail, f"arrays[{k!r}].shape[{i}]", s, 0)


def _check_tensor(fail, t: TensorInfo) -> None:
    if not isinstance(t.shape, (tuple, list)) or not 1 <= len(t.shape) <= 3:
        fail(f"shape is {t.shape!r}; must be 1 to 3 sizes (C), (C, L) or (C, H, W)")
    for i, s in enumerate(t.shape):
        _int(fail, f"shape[{i}]", s, 1)
    if math.prod(t.shape) > MAX_ELEMS:
        fail(f"shape {tuple(t.shape)} has {math.prod(t.shape)} elements; at most {MAX_ELEMS}")
    _int(fail, "bits", t.bits, *BITS)
    if not isinstance(t.signed, (bool, np.bool_)):
        fail(f"signed is {t.signed!r}; must be true or false")
    m = _int(fail, "scale_m", t.scale_m, 1, SCALE_M_MAX)
    e = _int(fail, "scale_e", t.scale_e)
    if not SCALE_LOG2[0] <= e + m.bit_length() - 1 <= SCALE_LOG2[1]:
        fail(f"scale {m} * 2**{e} is outside [2**{SCALE_LOG2[0]}, 2**{SCALE_LOG2[1]}]")
    _int(fail, "zero_point", t.zero_point, *int_range(t.bits, t.signed))


def _xmax(t: TensorInfo) -> int:
    lo, hi = t.range
    return max(hi - t.zero_point, t.zero_point - lo)


def check_graph(g: QGraph, where: str) -> None:
    """Types, ranges and consistency of a whole graph; raises QGraphError naming the first
    problem and where it is."""
    fail = _fail(where)
    if not isinstance(g.name, str):
        fail(f"name is {g.name!r}; must be a string")
    for name, t in g.tensors.items():
        if not isinstance(t, TensorInfo):
            fail(f"tensors[{name!r}] is not a tensor record")
        _check_tensor(_fail(where, f"tensor {name!r}: "), t)
    for field in ("inputs", "outputs"):
        for i, t in enumerate(getattr(g, field)):
            if not isinstance(t, str) or t not in g.tensors:
                fail(f"{field}[{i}] is {_show(t)}, which is not a declared tensor")
    if len(g.inputs) != 1 or len(g.outputs) != 1:
        fail(f"{len(g.inputs)} inputs and {len(g.outputs)} outputs; the interpreter's CLI, "
             "the accelerator and the firmware take exactly one of each")
    if not g.nodes:
        fail("the graph has no nodes; at least one is needed")
    for k, a in g.arrays.items():
        if not np.issubdtype(a.dtype, np.integer):
            fail(f"array {k!r} has dtype {a.dtype}; must be an integer type")
    defined, names = set(g.inputs), set()
    for i, n in enumerate(g.nodes):
        if not isinstance(n, Node) or not isinstance(n.name, str) or not isinstance(n.op, str):
            fail(f"nodes[{i}] is not a node record with a string name and op")
        nfail = _fail(where, f"node {printable(n.name)} ({printable(n.op)}): ")
        if n.name in names:
            nfail("name is used by an earlier node")
        names.add(n.name)
        _check_node(g, n, defined, nfail)
        defined.add(n.output)
    for t in g.outputs:
        if t not in defined:
            fail(f"output {t!r} is never computed")


def _check_node(g: QGraph, n: Node, defined: set, fail) -> None:
    if n.op not in ATTRS:
        fail(f"unknown op {_show(n.op)} (supported: {', '.join(OPS)})")
    arity = 2 if n.op == "add" else 1
    if not isinstance(n.inputs, (tuple, list)) or len(n.inputs) != arity:
        fail(f"has inputs {list(n.inputs)!r}; {n.op} takes {arity}")
    for t in n.inputs:
        if t not in defined:
            fail(f"input {t!r} is not defined before use")
    if n.output in defined:
        fail(f"output {n.output!r} is written twice")
    if n.output not in g.tensors:
        fail(f"output {n.output!r} is not declared")
    _check_attrs(n, fail)
    if not isinstance(n.params, dict):
        fail("params must be an object of role: array name")
    for role in n.params:
        if role not in PARAMS.get(n.op, ()):
            fail(f"params.{printable(role)} is not a parameter of {n.op}")
    lacking = [a for a in REQUIRED.get(n.op, ()) if a not in n.attrs] + \
        [p for p in PARAMS.get(n.op, ()) if p not in n.params]
    if lacking:
        fail(f"lacks {', '.join(lacking)}")
    for role, key in n.params.items():
        if key not in g.arrays:
            fail(f"{role} array {key!r} is missing")
    _check_shapes(g, n, fail)
    _check_values(g, n, fail)


def _check_attrs(n: Node, fail) -> None:
    if not isinstance(n.attrs, dict):
        fail("attrs must be an object")
    table = {**COMMON, **ATTRS[n.op]}
    for k, v in n.attrs.items():
        spec = table.get(k)
        if spec is None:
            fail(f"attrs.{printable(k)} is not an attribute of {n.op} (known: "
                 f"{', '.join(table)})")
        if spec[0] == "bool" and not isinstance(v, (bool, np.bool_)):
            fail(f"attrs.{k} is {_show(v)}; must be true or false")
        elif spec[0] == "enum" and (not isinstance(v, str) or v not in spec[1]):
            fail(f"attrs.{k} is {_show(v)}; must be one of {', '.join(spec[1])}")
        elif spec[0] == "int":
            _int(fail, f"attrs.{k}", v, spec[1], spec[2])
        elif spec[0] == "dims":
            if not isinstance(v, (list, tuple)) or not 1 <= len(v) <= 2:
                fail(f"attrs.{k} is {_show(v)}; must be a list of 1 or 2 integers")
            for i, x in enumerate(v):
                _int(fail, f"attrs.{k}[{i}]", x, spec[1], spec[2])
    if n.op == "maxpool" and n.attrs.get("relu"):
        fail("attrs.relu is true; maxpool applies no ReLU")


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
    return tuple(x)


def _check_shapes(g: QGraph, n: Node, fail) -> None:
    """Ranks that agree, then the output shape the node implies, within the size bounds."""
    x = tuple(g.tensors[n.inputs[0]].shape)
    a = n.attrs
    spatial = 0
    if n.op in ("conv", "linear"):
        w = g.param(n, "weight")
        ndim = (3, 4) if n.op == "conv" else (2,)
        if w.ndim not in ndim or 0 in w.shape:
            fail(f"weight has shape {w.shape}; a {n.op} weight has "
                 f"{' or '.join(map(str, ndim))} non-empty axes")
    if n.op == "conv":
        spatial = w.ndim - 2
        if len(x) != spatial + 1:
            fail(f"input {n.inputs[0]!r} has shape {x}; a {spatial}-D conv takes "
                 f"{'(C, L)' if spatial == 1 else '(C, H, W)'}")
        if x[0] != w.shape[1] * a["groups"]:
            fail(f"input has {x[0]} channels, weight expects {w.shape[1]} x {a['groups']} "
                 "groups")
        if w.shape[0] % a["groups"]:
            fail(f"{w.shape[0]} output channels do not divide into {a['groups']} groups")
    elif n.op == "linear" and math.prod(x) != w.shape[1]:
        fail(f"input has {math.prod(x)} features, weight expects {w.shape[1]}")
    elif n.op == "add" and tuple(g.tensors[n.inputs[1]].shape) != x:
        fail(f"inputs have shapes {x} and {tuple(g.tensors[n.inputs[1]].shape)}; they must "
             "be equal")
    elif n.op in ("avgpool", "maxpool", "global_avgpool"):
        spatial = len(x) - 1
        if spatial not in (1, 2):
            fail(f"input {n.inputs[0]!r} has shape {x}; pooling takes (C, L) or (C, H, W)")
    for k, spec in ATTRS[n.op].items():
        if spec[0] == "dims" and k in a and len(a[k]) != spatial:
            fail(f"attrs.{k} has {len(a[k])} entries; the input has {spatial} spatial axes")
    if "padding" in a:
        padded = x[0] * math.prod(x[1 + i] + 2 * p for i, p in enumerate(a["padding"]))
        if padded > MAX_ELEMS:
            fail(f"attrs.padding {list(a['padding'])} pads the input to {padded} elements; at "
                 f"most {MAX_ELEMS}")
    shape = infer_shape(g, n)
    if shape != tuple(g.tensors[n.output].shape):
        fail(f"output shape {tuple(g.tensors[n.output].shape)} but inputs and attributes give "
             f"{shape}")
    window = {"conv": lambda: math.prod(g.param(n, "weight").shape[1:]),
              "avgpool": lambda: math.prod(a["kernel"]), "maxpool": lambda: math.prod(a["kernel"]),
              "linear": lambda: g.param(n, "weight").shape[1]}.get(n.op, lambda: 1)()
    work = math.prod(x if n.op == "global_avgpool" else shape) * window
    if work > MAX_WORK:
        fail(f"needs {work} operations per sample; at most {MAX_WORK}")


def _check_values(g: QGraph, n: Node, fail) -> None:
    """Parameter ranges, and accumulators that stay inside what the numerics compute
    exactly (float64 below 2**53, requantisation products below 2**62)."""
    a = n.attrs
    x = g.tensors[n.inputs[0]]
    m = 1
    if n.op in ("conv", "linear"):
        w = g.param(n, "weight")
        wbits = a.get("wbits", 8)
        lo, hi = -(1 << (wbits - 1)), (1 << (wbits - 1)) - 1
        if int(w.min()) < lo or int(w.max()) > hi:
            fail(f"weights outside the {wbits}-bit range [{lo}, {hi}]")
        for role, (plo, phi) in PARAM_RANGE.items():
            p = g.param(n, role)
            if p.shape != (w.shape[0],):
                fail(f"{role} has shape {p.shape}, expected ({w.shape[0]},)")
            if int(p.min()) < plo or int(p.max()) > phi:
                bad = int(p.min()) if int(p.min()) < plo else int(p.max())
                fail(f"{role} array {n.params[role]!r} holds {bad}; must be in [{plo}, {phi}]")
        products = math.prod(w.shape[1:]) * _xmax(x) * max(-int(w.min()), int(w.max()))
        if products >= FLOAT_EXACT:
            fail(f"accumulator could reach {products}; float64 accumulation is exact below "
                 "2**53")
        acc = products + int(np.abs(g.param(n, "bias").astype(np.int64)).max())
        m = int(g.param(n, "m").max())
    elif n.op == "add":
        acc = _xmax(x) * a["m_a"] + _xmax(g.tensors[n.inputs[1]]) * a["m_b"]
    elif n.op in ("avgpool", "global_avgpool"):
        window = math.prod(a["kernel"]) if n.op == "avgpool" else math.prod(x.shape[1:])
        acc, m = window * _xmax(x), a["m"]
    else:
        acc = 0
    if acc * max(m, 1) >= ACC_LIMIT:
        fail("accumulator times multiplier could exceed 62 bits")
    if n.op in ("maxpool", "relu"):  # values pass through: the output must hold them
        y = g.tensors[n.output]
        lo, hi = x.range
        if y.zero_point != x.zero_point or y.range[0] > (x.zero_point if n.op == "relu" else lo) \
                or y.range[1] < hi:
            fail(f"output {n.output!r} ({y.bits}-bit, zero point {y.zero_point}) cannot hold "
                 f"the input's values ({x.bits}-bit, zero point {x.zero_point})")
