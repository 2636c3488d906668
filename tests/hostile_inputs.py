"""Hostile inputs for tests/test_hostile.py: hypothesis strategies that mutate valid artefacts
(JSON documents, .npy/.npz files, ONNX models, any file's bytes), and the bookkeeping of a run
of the CLI on them (outcome, traceback frame, writes outside the outputs).

Every strategy returns ``(content, note)``: the mutated content and a one-line description of
the mutation, used in the failure report as the case's reproduction."""

from __future__ import annotations

import copy
import io
import math

import numpy as np
from hypothesis import strategies as st

NAN, INF = float("nan"), float("inf")
# what a hostile editor puts in place of a value
HOSTILE_VALUES = (0, -1, 1, 2, 3, 2**31, 2**40, 2**70, -(2**70), 0.5, -0.5, NAN, INF, -INF, 1e-300,
                  "8", "", "../x", "/dev/null", None, True, False, [], [1], [-1, 0], [[]], {},
                  {"a": 1}, "x" * 3000)


class Special:
    """A file replaced by something that is not a regular file's bytes."""

    def __init__(self, kind: str):
        self.kind = kind

    def __repr__(self):
        return f"<{self.kind}>"


MISSING, DIRECTORY = Special("missing"), Special("directory")


def short(v, n: int = 48) -> str:
    r = repr(v)
    return r if len(r) <= n else r[:n - 3] + "..."


# JSON-like documents ---------------------------------------------------------------------

def json_paths(doc, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += json_paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += json_paths(v, (*prefix, i))
    return out


def get_at(doc, path):
    for k in path:
        doc = doc[k]
    return doc


def set_at(doc, path, value):
    if not path:
        return value
    get_at(doc, path[:-1])[path[-1]] = value
    return doc


def del_at(doc, path):
    parent = get_at(doc, path[:-1])
    if isinstance(parent, list):
        parent.pop(path[-1])
    else:
        del parent[path[-1]]
    return doc


def strings_in(doc) -> set[str]:
    if isinstance(doc, str):
        return {doc}
    if isinstance(doc, dict):
        return set(doc).union(*(strings_in(v) for v in doc.values())) if doc else set()
    if isinstance(doc, list):
        return set().union(*(strings_in(v) for v in doc)) if doc else set()
    return set()


def fmt_path(path) -> str:
    return "/" + "/".join(map(str, path))


@st.composite
def json_mutation(draw, doc, max_edits: int = 2):
    """One or two edits of ``doc``: a value replaced by a hostile one, nudged (int +-1, sign,
    x 2**20), replaced by another string of the document, a list reversed, emptied or with an
    element dropped or duplicated, or a key deleted."""
    doc, notes = copy.deepcopy(doc), []
    for _ in range(draw(st.integers(1, max_edits))):
        path = draw(st.sampled_from(json_paths(doc)))
        old = get_at(doc, path)
        kinds = ["replace"]
        if path:
            kinds.append("delete")
        if isinstance(old, int) and not isinstance(old, bool):
            kinds += ["nudge", "nudge"]
        if isinstance(old, float):
            kinds.append("fnudge")
        if isinstance(old, str):
            kinds.append("other-string")
        if isinstance(old, list) and old:
            kinds.append("list-edit")
        kind = draw(st.sampled_from(kinds))
        if kind == "delete":
            doc = del_at(doc, path)
            notes.append(f"delete {fmt_path(path)} (was {short(old)})")
            continue
        if kind == "replace":
            new = copy.deepcopy(draw(st.sampled_from(HOSTILE_VALUES)))
        elif kind == "nudge":
            new = draw(st.sampled_from([old + 1, old - 1, -old, old * 2**20, old // 2,
                                        old + 2**31]))
        elif kind == "fnudge":
            new = draw(st.sampled_from([old * 2, -old, old + 1e-9, 0.0, old * 1e300]))
        elif kind == "other-string":
            new = draw(st.sampled_from(sorted(strings_in(doc))))
        else:
            op = draw(st.sampled_from(["reverse", "dup-first", "drop-last", "clear"]))
            new = {"reverse": old[::-1], "dup-first": [old[0], *old],
                   "drop-last": old[:-1], "clear": []}[op]
            new = copy.deepcopy(new)
            kind = f"list-{op}"
        doc = set_at(doc, path, new)
        notes.append(f"{kind} {fmt_path(path)}: {short(old)} -> {short(new)}")
    return doc, "; ".join(notes)


# bytes of any file ------------------------------------------------------------------------

@st.composite
def bytes_mutation(draw, data: bytes):
    """Truncated, garbled, prefixed with invalid UTF-8, appended to, removed, or a directory."""
    kind = draw(st.sampled_from(["truncate", "truncate", "garble", "garble", "invalid-utf8",
                                 "append", "missing", "directory", "empty"]))
    if kind == "truncate":
        k = draw(st.sampled_from(sorted({1, 8, len(data) // 3, len(data) // 2,
                                         max(len(data) - 1, 0)})))
        return data[:k], f"truncated to {k} of {len(data)} bytes"
    if kind == "garble":
        buf = bytearray(data)
        n = draw(st.integers(1, 8))
        for _ in range(n):
            if not buf:
                break
            i = draw(st.integers(0, len(buf) - 1))
            buf[i] = draw(st.integers(0, 255))
        return bytes(buf), f"{n} bytes garbled"
    if kind == "invalid-utf8":
        return b"\xff\xfe\x00" + data, "prefixed with invalid UTF-8"
    if kind == "append":
        return data + b"\x00\xffgarbage", "garbage appended"
    if kind == "empty":
        return b"", "emptied"
    return {"missing": MISSING, "directory": DIRECTORY}[kind], f"replaced: {kind}"


def write_content(path, content) -> None:
    """Write ``content`` (bytes, str, or a Special) at ``path``, replacing what is there."""
    import shutil
    from pathlib import Path

    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
    if content is MISSING:
        return
    if content is DIRECTORY:
        path.mkdir(parents=True)
        (path / "inside").write_text("x")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        path.write_text(content)
    else:
        path.write_bytes(content)


# .npy inputs ------------------------------------------------------------------------------

def npy_bytes(a, allow_pickle: bool = False) -> bytes:
    f = io.BytesIO()
    np.save(f, a, allow_pickle=allow_pickle)
    return f.getvalue()


@st.composite
def npy_mutation(draw, x: np.ndarray, lo: int = -128, hi: int = 127):
    """X.npy (float32 batch ``x``) with another dtype, NaN/inf/huge values, integers in and out
    of the input's range, empty, other shapes, truncated or garbled bytes, pickled objects."""
    kind = draw(st.sampled_from([
        "dtype", "dtype", "value", "value", "int-in-range", "int-out-of-range", "shape",
        "shape", "object", "str", "structured", "datetime", "bytes", "bytes", "npz", "text",
        "big-endian", "fortran", "one-sample"]))
    if kind == "dtype":
        t = draw(st.sampled_from(["int8", "int16", "int32", "int64", "uint8", "uint64",
                                  "float16", "float64", "bool", "complex64"]))
        return npy_bytes(x.astype(t)), f"X as {t}"
    if kind == "value":
        v = draw(st.sampled_from([NAN, INF, -INF, 1e30, -1e30, 3.4e38]))
        y = x.astype(np.float32).copy()
        i = draw(st.integers(0, y.size - 1))
        y.flat[i] = v
        return npy_bytes(y), f"X[{i}] = {v}"
    if kind == "int-in-range":
        q = np.clip(np.round(x * 16), lo, hi).astype(np.int64)
        return npy_bytes(q), "X as integers in range"
    if kind == "int-out-of-range":
        q = np.clip(np.round(x * 16), lo, hi).astype(np.int64)
        i = draw(st.integers(0, q.size - 1))
        v = draw(st.sampled_from([hi + 1, lo - 1, 2**40, -(2**63), 2**63 - 1]))
        q.flat[i] = v
        return npy_bytes(q), f"integer X[{i}] = {v}"
    if kind == "shape":
        op = draw(st.sampled_from(["empty-batch", "scalar", "flat", "extra-dim", "swap-axes",
                                   "zero-length", "longer", "big-batch", "batch-of-batches"]))
        y = {"empty-batch": lambda: x[:0], "scalar": lambda: np.array(1.0, np.float32),
             "flat": lambda: x.reshape(-1), "extra-dim": lambda: x[..., None],
             "swap-axes": lambda: np.ascontiguousarray(x.swapaxes(-1, -2)),
             "zero-length": lambda: np.zeros((len(x), x.shape[1], 0), np.float32),
             "longer": lambda: np.concatenate([x, x[..., :1]], -1),
             "big-batch": lambda: np.repeat(x, 64, 0),
             "batch-of-batches": lambda: x[None]}[op]()
        return npy_bytes(y), f"X shape {op} {y.shape}"
    if kind == "object":
        return npy_bytes(x.astype(object), allow_pickle=True), "X pickled object array"
    if kind == "str":
        return npy_bytes(x.astype("U8")), "X as unicode strings"
    if kind == "structured":
        return npy_bytes(np.zeros(len(x), dtype=[("a", "<i4"), ("b", "<f4")])), "structured X"
    if kind == "datetime":
        return npy_bytes(np.zeros(x.shape, "datetime64[s]")), "X as datetime64"
    if kind == "bytes":
        data, note = draw(bytes_mutation(npy_bytes(x)))
        return data, f"X.npy {note}"
    if kind == "npz":
        f = io.BytesIO()
        np.savez(f, x=x)
        return f.getvalue(), "X.npy is an .npz"
    if kind == "text":
        return b"1.0, 2.0, 3.0\n", "X.npy is text"
    if kind == "big-endian":
        return npy_bytes(x.astype(">f4")), "X big-endian float32"
    if kind == "fortran":
        return npy_bytes(np.asfortranarray(x)), "X in Fortran order"
    return npy_bytes(x[0]), "one sample without a batch axis"


# .npz arrays (QGraph weights, Program) ------------------------------------------------------

def npz_bytes(arrays: dict) -> bytes:
    f = io.BytesIO()
    np.savez(f, **arrays)
    return f.getvalue()


ARRAY_EDITS = ("dtype", "nan", "flat", "drop", "empty", "extra-axis", "huge", "negate", "zero",
               "scalar", "object")


def edit_array(draw, a: np.ndarray) -> tuple[np.ndarray, str]:
    op = draw(st.sampled_from(ARRAY_EDITS))
    if op == "dtype":
        t = draw(st.sampled_from(["float32", "float64", "int8", "int16", "uint8", "uint64",
                                  "bool", "complex64", "int32"]))
        return a.astype(t), f"as {t}"
    if op == "nan":
        b = a.astype(np.float64).copy()
        if b.size:
            b.flat[draw(st.integers(0, b.size - 1))] = draw(st.sampled_from([NAN, INF, -INF]))
        return b, "a NaN/inf value (as float64)"
    if op == "flat":
        return a.reshape(-1), "flattened"
    if op == "drop":
        return a[:-1] if a.ndim else a, "last row dropped"
    if op == "empty":
        return a[:0] if a.ndim else np.zeros(0, a.dtype), "emptied"
    if op == "extra-axis":
        return a[None], "extra leading axis"
    if op == "huge":
        b = a.astype(np.int64).copy()
        if b.size:
            b.flat[draw(st.integers(0, b.size - 1))] = draw(st.sampled_from(
                [2**40, -(2**62), 2**63 - 1, -(2**63), 2**31, 255, -129]))
        return b, "a huge value (as int64)"
    if op == "negate":
        return (-a.astype(np.int64) - 1), "negated - 1 (as int64)"
    if op == "zero":
        return np.zeros_like(a), "all zeros"
    if op == "scalar":
        return np.array(7, a.dtype), "a scalar"
    return a.astype(object), "pickled object array"


@st.composite
def npz_mutation(draw, arrays: dict, spec: dict | None = None):
    """An .npz with one array edited (dtype, NaN, shape, huge values, object), deleted or an
    extra one added. With ``spec`` (a QGraph's ``arrays`` section) it may be updated to match,
    so the edit reaches the checks behind the dtype/shape check; returns (bytes, spec, note)."""
    arrays = dict(arrays)
    spec = copy.deepcopy(spec)
    key = draw(st.sampled_from(sorted(arrays)))
    what = draw(st.sampled_from(["edit", "edit", "edit", "delete", "extra"]))
    if what == "delete":
        del arrays[key]
        note = f"array {key!r} deleted"
    elif what == "extra":
        arrays["zz_extra"] = np.zeros(3)
        note = "extra array added"
    else:
        arrays[key], how = edit_array(draw, arrays[key])
        note = f"array {key!r} {how}"
        if spec is not None and key in spec and arrays[key].dtype != object \
                and draw(st.booleans()):
            spec[key] = {"dtype": str(arrays[key].dtype), "shape": list(arrays[key].shape)}
            note += " (and the JSON's spec updated to match)"
    return npz_bytes(arrays), spec, note


# ONNX models ------------------------------------------------------------------------------

@st.composite
def onnx_mutation(draw, model_bytes: bytes):
    """A quantised ONNX model with an initializer (scale 0/neg/NaN/inf, zero point out of
    range, shape, dtype), an attribute (strides 0, pads negative, ...), an input dimension,
    a node (deleted, duplicated, retyped, rewired), the opset or its bytes mutated."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    m = onnx.load_from_string(model_bytes)
    g = m.graph
    kind = draw(st.sampled_from(["initializer", "initializer", "initializer", "attribute",
                                 "attribute", "add-attribute", "dim", "delete-node",
                                 "duplicate-node", "op-type", "rewire", "rewire", "opset",
                                 "domain", "delete-initializer", "input-dtype", "bytes"]))
    if kind == "bytes":
        data, note = draw(bytes_mutation(model_bytes))
        return data, f"model file {note}"
    if kind == "initializer":
        i = draw(st.integers(0, len(g.initializer) - 1))
        init = g.initializer[i]
        a = numpy_helper.to_array(init)
        op = draw(st.sampled_from(["value", "value", "shape", "dtype", "empty"]))
        if op == "value":
            if np.issubdtype(a.dtype, np.floating):
                v = draw(st.sampled_from([0.0, -1.0, NAN, INF, -INF, 1e-45, 1e38]))
            else:
                v = draw(st.sampled_from([0, 1, -1, 127, -128, 255]))
                info = np.iinfo(a.dtype)
                v = min(max(v, info.min), info.max)
            b = a.copy()
            if b.size and draw(st.booleans()):
                b.flat[draw(st.integers(0, b.size - 1))] = v
            else:
                b = np.full_like(a, v)
            note = f"initializer {init.name} {a.dtype}{a.shape} <- {v}"
        elif op == "shape":
            b = a.reshape(-1)[:-1] if a.size > 1 else np.stack([a, a])
            note = f"initializer {init.name} reshaped {a.shape} -> {b.shape}"
        elif op == "dtype":
            t = draw(st.sampled_from(["int32", "float64", "int16", "uint16", "float16"]))
            b = a.astype(t)
            if np.issubdtype(b.dtype, np.integer) and b.size:
                b.flat[0] = 300
            note = f"initializer {init.name} as {t} (first value 300 if integer)"
        else:
            b = a.reshape(-1)[:0]
            note = f"initializer {init.name} emptied"
        g.initializer[i].CopyFrom(numpy_helper.from_array(b, init.name))
    elif kind in ("attribute", "add-attribute"):
        nodes = [n for n in g.node if n.attribute] if kind == "attribute" else list(g.node)
        n = draw(st.sampled_from(nodes))
        if kind == "attribute":
            j = draw(st.integers(0, len(n.attribute) - 1))
            at = n.attribute[j]
            name = at.name
            val = helper.get_attribute_value(at)
            if isinstance(val, list):
                new = draw(st.sampled_from([[0] * len(val), [-1] * len(val), [2**31 - 1] * len(val),
                                            [], [*val, 1], val[:-1]]))
            elif isinstance(val, int):
                new = draw(st.sampled_from([0, -1, 2**40, 2]))
            elif isinstance(val, float):
                new = draw(st.sampled_from([NAN, -1.0, INF, 0.0]))
            elif isinstance(val, bytes):
                new = draw(st.sampled_from(["", "FOO", "SAME_UPPER"]))
            else:
                new = 7
            del n.attribute[j]
        else:
            name, new = draw(st.sampled_from([
                ("foo", 1), ("auto_pad", "SAME_UPPER"), ("ceil_mode", 1), ("group", 2),
                ("dilations", [2, 2]), ("axis", 5), ("count_include_pad", 1),
                ("storage_order", 1), ("saturate", 0)]))
            val = None
            for j, at in enumerate(n.attribute):
                if at.name == name:
                    val = helper.get_attribute_value(at)
                    del n.attribute[j]
                    break
        if isinstance(new, list) and not new:
            from onnx import AttributeProto

            n.attribute.append(helper.make_attribute(name, new, attr_type=AttributeProto.INTS))
        else:
            n.attribute.append(helper.make_attribute(name, new))
        note = f"node {n.name} ({n.op_type}) attribute {name}: {short(val)} -> {short(new)}"
    elif kind == "dim":
        vi = draw(st.sampled_from([*g.input, *g.output]))
        dims = vi.type.tensor_type.shape.dim
        j = draw(st.integers(0, len(dims) - 1))
        v = draw(st.sampled_from(["M", 0, -1, 2**40, 1, 3, "clear"]))
        if v == "clear":
            vi.type.tensor_type.ClearField("shape")
        elif isinstance(v, str):
            dims[j].dim_param = v
        else:
            dims[j].dim_value = v
        note = f"{vi.name} dim {j} -> {v}"
    elif kind == "delete-node":
        i = draw(st.integers(0, len(g.node) - 1))
        note = f"node {g.node[i].name} ({g.node[i].op_type}) deleted"
        del g.node[i]
    elif kind == "duplicate-node":
        i = draw(st.integers(0, len(g.node) - 1))
        g.node.append(copy.deepcopy(g.node[i]))
        note = f"node {g.node[i].name} ({g.node[i].op_type}) duplicated"
    elif kind == "op-type":
        n = draw(st.sampled_from(list(g.node)))
        t = draw(st.sampled_from(["Foo", "Softmax", "Conv", "Relu", "QuantizeLinear",
                                  "DequantizeLinear", "Identity", "MaxPool", "Add"]))
        note = f"node {n.name} op {n.op_type} -> {t}"
        n.op_type = t
    elif kind == "rewire":
        n = draw(st.sampled_from([n for n in g.node if n.input]))
        j = draw(st.integers(0, len(n.input) - 1))
        names = sorted({*(o for x in g.node for o in x.output), *(i.name for i in g.initializer),
                        *(i.name for i in g.input), "undefined_tensor", ""})
        t = draw(st.sampled_from(names))
        note = f"node {n.name} input {j}: {n.input[j]} -> {t!r}"
        n.input[j] = t
    elif kind == "opset":
        if draw(st.booleans()):
            v = draw(st.sampled_from([1, 7, 10, 99]))
            note = f"opset {m.opset_import[0].version} -> {v}"
            m.opset_import[0].version = v
        else:
            v = draw(st.sampled_from([0, 3, 99]))
            note = f"ir_version {m.ir_version} -> {v}"
            m.ir_version = v
    elif kind == "domain":
        n = draw(st.sampled_from(list(g.node)))
        n.domain = draw(st.sampled_from(["com.microsoft", "ai.onnx.ml", "x"]))
        note = f"node {n.name} domain -> {n.domain}"
    elif kind == "delete-initializer":
        i = draw(st.integers(0, len(g.initializer) - 1))
        note = f"initializer {g.initializer[i].name} deleted"
        del g.initializer[i]
    else:
        vi = draw(st.sampled_from(list(g.input)))
        t = draw(st.sampled_from([TensorProto.INT8, TensorProto.STRING, TensorProto.UNDEFINED,
                                  TensorProto.DOUBLE]))
        note = f"input {vi.name} elem_type -> {t}"
        vi.type.tensor_type.elem_type = t
    return m.SerializeToString(), note


def is_finite_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
