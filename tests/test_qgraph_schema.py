"""The QGraph schema: every malformed field is one QGraphError naming the field and where it
is; a graph that passes runs through infer, cost and the Program compiler."""

from __future__ import annotations

import copy
import json
import random
import time

import numpy as np
import pytest

from conftest import run_cli
from hannah_hw.accel.config import ConfigError, derive_config
from hannah_hw.accel.cost import predict_cost
from hannah_hw.ir.interpreter import run
from hannah_hw.ir.qgraph import QGraph, QGraphError, check, from_dict


def _t(shape, bits=8, signed=True, e=-4, zp=0):
    return {"shape": list(shape), "bits": bits, "signed": signed, "scale_m": 1, "scale_e": e,
            "zero_point": zp}


def small_graph() -> tuple[dict, dict[str, np.ndarray]]:
    """Every op once: conv (relu) -> maxpool -> avgpool, add, relu -> global pool -> linear."""
    rng = np.random.default_rng(0)
    u = {"signed": False}
    tensors = {"x": _t((2, 6, 6)), "a": _t((4, 6, 6), **u), "b": _t((4, 3, 3), **u),
               "c": _t((4, 3, 3), **u), "d": _t((4, 3, 3)), "e": _t((4, 3, 3)),
               "f": _t((4, 1, 1)), "y": _t((3,), e=-3)}
    pool = {"kernel": [3, 3], "stride": [1, 1], "padding": [1, 1]}
    nodes = [
        {"op": "conv", "name": "c1", "inputs": ["x"], "output": "a",
         "attrs": {"stride": [1, 1], "padding": [1, 1], "dilation": [1, 1], "groups": 1,
                   "relu": True, "wbits": 4},
         "params": {"weight": "c1.w", "bias": "c1.b", "m": "c1.m", "sh": "c1.sh"}},
        {"op": "maxpool", "name": "mp", "inputs": ["a"], "output": "b",
         "attrs": {"kernel": [2, 2], "stride": [2, 2], "padding": [0, 0], "relu": False}},
        {"op": "avgpool", "name": "ap", "inputs": ["b"], "output": "c",
         "attrs": {**pool, "m": 7, "sh": 6, "relu": False}},
        {"op": "add", "name": "ad", "inputs": ["b", "c"], "output": "d",
         "attrs": {"m_a": 1, "m_b": 1, "sh": 1, "relu": False}},
        {"op": "relu", "name": "r", "inputs": ["d"], "output": "e", "attrs": {}},
        {"op": "global_avgpool", "name": "gp", "inputs": ["e"], "output": "f",
         "attrs": {"m": 57, "sh": 9, "relu": False}},
        {"op": "linear", "name": "fc", "inputs": ["f"], "output": "y",
         "attrs": {"relu": False, "wbits": 8},
         "params": {"weight": "fc.w", "bias": "fc.b", "m": "fc.m", "sh": "fc.sh"}},
    ]
    arrays = {"c1.w": rng.integers(-8, 8, (4, 2, 3, 3)).astype(np.int8),
              "c1.b": np.array([3, -5, 0, 9], np.int64), "c1.m": np.ones(4, np.int64),
              "c1.sh": np.full(4, 5, np.int32),
              "fc.w": rng.integers(-100, 100, (3, 4)).astype(np.int8),
              "fc.b": np.zeros(3, np.int64), "fc.m": np.array([1, 2, 3], np.int64),
              "fc.sh": np.full(3, 8, np.int32)}
    d = {"format": "hannah-hw-qgraph", "format_version": 1, "name": "small", "inputs": ["x"],
         "outputs": ["y"], "tensors": tensors, "nodes": nodes,
         "arrays": {k: {"dtype": str(a.dtype), "shape": list(a.shape)} for k, a in arrays.items()},
         "meta": {}}
    return d, arrays


def load(d, arrays):
    g = from_dict(d, arrays, "qgraph.json")
    check(g, "qgraph.json")
    return g


def downstream(g: QGraph) -> None:
    """What infer and cost do with a graph (generate and simulate add the RTL on top)."""
    x = np.random.default_rng(1).integers(*g.tensors[g.inputs[0]].range, (2, *g.tensors["x"].shape),
                                          endpoint=True)
    run(g, x)
    predict_cost(g, derive_config(g))


def test_the_small_graph_is_valid_and_runs(tmp_path):
    d, arrays = small_graph()
    g = load(d, arrays)
    downstream(g)
    g.save(tmp_path / "g.json")
    assert QGraph.load(tmp_path / "g.json").to_dict() == g.to_dict()
    assert not list(tmp_path.glob("*.tmp"))  # written through temporary files, then renamed


def _set(d, path, value):
    *keys, last = path
    for k in keys:
        d = d[k]
    if value is DELETE:
        del d[last]
    else:
        d[last] = value


DELETE = object()
NODE = {name: i for i, name in enumerate(("c1", "mp", "ap", "ad", "r", "gp", "fc"))}


def node(name, *path):
    return ("nodes", NODE[name], *path)


# (where in the JSON, new value, what the error must say)
JSON_CASES = [
    (node("c1", "attrs", "stride"), [0, 1], r"node c1 \(conv\): attrs.stride\[0\] is 0; must "
                                            r"be >= 1"),
    (node("c1", "attrs", "wbits"), "8", r"node c1 \(conv\): attrs.wbits is '8' \(a string\); "
                                        "must be an integer"),
    (node("c1", "attrs", "wbits"), 8.0, r"attrs.wbits is 8.0 \(a number\)"),
    (node("c1", "attrs", "groups"), True, r"attrs.groups is True \(a boolean\)"),
    (node("c1", "attrs", "groups"), 2, r"node c1 \(conv\): input has 2 channels, weight expects"),
    (node("c1", "attrs", "groups"), 0, r"attrs.groups is 0; must be >= 1"),
    (node("c1", "attrs", "dilation"), [1, 0], r"attrs.dilation\[1\] is 0; must be >= 1"),
    (node("c1", "attrs", "padding"), [-1, 1], r"attrs.padding\[0\] is -1; must be >= 0"),
    (node("c1", "attrs", "padding"), [5000, 5000], "pads the input to .* elements; at most"),
    (node("c1", "attrs", "stride"), [1], r"attrs.stride has 1 entries; the input has 2 spatial"),
    (node("c1", "attrs", "stride"), [2**40, 1], r"attrs.stride\[0\] is 1099511627776; must be <="),
    (node("c1", "attrs", "strides"), [1, 1], r"attrs.strides is not an attribute of conv"),
    (node("c1", "attrs", "relu"), "yes", r"attrs.relu is 'yes'; must be true or false"),
    (node("c1", "attrs", "rounding"), "up", r"attrs.rounding is 'up'; must be one of half_up"),
    (node("c1", "attrs", "stride"), DELETE, r"node c1 \(conv\): lacks stride"),
    (node("c1", "params", "bias"), DELETE, r"node c1 \(conv\): lacks bias"),
    (node("c1", "params", "weight"), 3, r"nodes\[0\].params.weight is 3; must be an array name"),
    (node("mp", "attrs", "kernel"), [0, 2], r"node mp \(maxpool\): attrs.kernel\[0\] is 0"),
    (node("mp", "attrs", "relu"), True, r"node mp \(maxpool\): attrs.relu is true"),
    (node("ap", "attrs", "sh"), 10**6, r"node ap \(avgpool\): attrs.sh is 1000000; must be <= 62"),
    (node("ap", "attrs", "sh"), 0, r"node ap \(avgpool\): attrs.sh is 0; must be >= 1"),
    (node("ap", "attrs", "m"), -1, r"attrs.m is -1; must be >= 0"),
    (node("ap", "attrs", "dilation"), [2, 2], r"attrs.dilation is not an attribute of avgpool"),
    (node("ad", "attrs", "m_a"), 2**31, r"node ad \(add\): attrs.m_a is 2147483648; must be <="),
    (node("ad", "inputs"), ["b"], r"node ad \(add\): has inputs \['b'\]; add takes 2"),
    (node("ad", "inputs"), ["b", "f"], r"node ad \(add\): input 'f' is not defined before use"),
    (node("ad", "inputs"), ["b", "a"], r"node ad \(add\): inputs have shapes"),
    (node("gp", "attrs", "sh"), 2**40, r"node gp \(global_avgpool\): attrs.sh is 1099511627776"),
    (node("fc", "name"), "c1", r"node c1 \(linear\): name is used by an earlier node"),
    (node("fc", "op"), "softmax", r"unknown op 'softmax'"),
    (node("fc", "inputs"), "f", r"nodes\[6\].inputs is a string; must be a list"),
    (node("fc", "colour"), "red", r"nodes\[6\].colour is not a field"),
    (node("fc", "output"), "x", r"node fc \(linear\): output 'x' is written twice"),
    (("tensors", "x", "bits"), None, r"tensor 'x': bits is None \(null\); must be an integer"),
    (("tensors", "x", "bits"), 17, r"tensor 'x': bits is 17; must be <= 16"),
    (("tensors", "x", "signed"), 1, r"tensor 'x': signed is 1; must be true or false"),
    (("tensors", "x", "zero_point"), 0.5, r"tensor 'x': zero_point is 0.5 \(a number\); must be"),
    (("tensors", "x", "zero_point"), 200, r"tensor 'x': zero_point is 200; must be <= 127"),
    (("tensors", "x", "scale_m"), 0, r"tensor 'x': scale_m is 0; must be >= 1"),
    (("tensors", "x", "scale_e"), 5000, r"tensor 'x': scale 1 \* 2\*\*5000 is outside"),
    (("tensors", "x", "shape"), [2, 0, 6], r"tensor 'x': shape\[1\] is 0; must be >= 1"),
    (("tensors", "x", "shape"), [2, 6, 6, 1], r"tensor 'x': shape is \(2, 6, 6, 1\); must be 1 "),
    (("tensors", "x", "shape"), [2, 4096, 4096], r"tensor 'x': shape .* elements; at most"),
    (("tensors", "x", "shape"), "2,6,6", r"tensors\['x'\].shape is a string; must be a list"),
    (("tensors", "b", "bits"), 4, r"node mp \(maxpool\): output 'b' .* cannot hold"),
    (("tensors", "e", "zero_point"), 3, r"node r \(relu\): output 'e' .* cannot hold"),
    (("tensors",), [], r"graph.tensors is a list; must be an object"),
    (("nodes",), [], r"the graph has no nodes; at least one is needed"),
    (("nodes",), {}, r"graph.nodes is an object; must be a list"),
    (("inputs",), ["q"], r"inputs\[0\] is 'q', which is not a declared tensor"),
    (("outputs",), ["y", "e"], r"1 inputs and 2 outputs; .* exactly one of each"),
    (("outputs",), ["zz"], r"outputs\[0\] is 'zz', which is not a declared tensor"),
    (("name",), 3, r"graph.name is an integer; must be a string"),
    (("arrays", "c1.w", "shape"), [4, 2, 3], r"array 'c1.w' is int8\(4, 2, 3, 3\), the graph "),
]


@pytest.mark.parametrize("path,value,msg", JSON_CASES,
                         ids=[f"{'.'.join(map(str, p))}={v!r}"[:60] for p, v, _ in JSON_CASES])
def test_malformed_json_fields_are_named(path, value, msg):
    d, arrays = small_graph()
    _set(d, path, value)
    with pytest.raises(QGraphError, match=msg) as e:
        load(d, arrays)
    assert str(e.value).startswith("qgraph.json: ") and "\n" not in str(e.value)


ARRAY_CASES = [
    ("c1.sh", np.full(4, 63, np.int32), r"node c1 \(conv\): sh array 'c1.sh' holds 63; must be "
                                         r"in \[1, 62\]"),
    ("c1.sh", np.zeros(4, np.int32), r"sh array 'c1.sh' holds 0"),
    ("c1.m", np.full(4, -1, np.int64), r"m array 'c1.m' holds -1; must be in \[0, 2147483647\]"),
    ("c1.m", np.full(4, 2**31, np.int64), r"m array 'c1.m' holds 2147483648"),
    ("c1.m", np.ones(3, np.int64), r"m has shape \(3,\), expected \(4,\)"),
    ("c1.w", np.full((4, 2, 3, 3), 9, np.int8), r"weights outside the 4-bit range \[-8, 7\]"),
    ("c1.w", np.zeros((4, 2, 3, 3), np.float32), r"array 'c1.w' has dtype float32; must be an "
                                                  "integer type"),
    ("c1.w", np.zeros((4, 2, 3), np.int8), r"input 'x' has shape \(2, 6, 6\); a 1-D conv takes"),
    ("c1.w", np.zeros((4, 2, 0, 3), np.int8), r"weight has shape \(4, 2, 0, 3\)"),
    ("c1.b", np.full(4, 2**63 - 1, np.int64), r"bias array 'c1.b' holds 9223372036854775807"),
    ("c1.b", np.full(4, 2**62 - 9, np.int64), r"node c1 \(conv\): accumulator times multiplier "
                                           r"could exceed 62 bits"),
    ("fc.w", np.zeros((3, 5), np.int8), r"node fc \(linear\): input has 4 features, weight "),
]


@pytest.mark.parametrize("key,value,msg", ARRAY_CASES, ids=[f"{k}-{i}" for i, (k, _, _)
                                                            in enumerate(ARRAY_CASES)])
def test_malformed_arrays_are_named(key, value, msg):
    d, arrays = small_graph()
    arrays[key] = value
    d["arrays"][key] = {"dtype": str(value.dtype), "shape": list(value.shape)}
    with pytest.raises(QGraphError, match=msg):
        load(d, arrays)


def test_random_mutations_fail_cleanly_or_run():
    """Whatever passes the check runs through the interpreter and the cost model; whatever
    does not is one QGraphError. Seeded, so a failure reproduces."""
    rng = random.Random(14)
    values = [0, -1, 1, 2, 3, 7, 62, 63, 2**31, 2**62, 0.5, "8", None, True, [], [0], [1, 1],
              [2, 2], [0, 1], {}, "x", "half_even"]
    base, arrays = small_graph()
    leaves = []

    def walk(v, path):
        if isinstance(v, dict):
            for k in v:
                walk(v[k], (*path, k))
        elif isinstance(v, list) and path[-1:] != ("nodes",):
            for i, x in enumerate(v):
                walk(x, (*path, i))
        if path and path[0] not in ("format", "format_version"):
            leaves.append(path)

    walk(base, ())
    t0, passed = time.perf_counter(), 0
    for _ in range(400):
        d = copy.deepcopy(base)
        path = rng.choice(leaves)
        _set(d, path, rng.choice(values))
        try:
            g = load(json.loads(json.dumps(d)), arrays)
        except QGraphError as e:
            assert "\n" not in str(e)
            continue
        passed += 1
        try:
            downstream(g)
        except ConfigError:
            pass  # the accelerator's own limits, one line like a QGraphError
    assert passed > 20 and time.perf_counter() - t0 < 15


def test_cli_reports_schema_errors_in_one_line(tmp_path):
    d, arrays = small_graph()
    bad = copy.deepcopy(d)
    bad["nodes"][0]["attrs"]["stride"] = [0, 1]
    from_dict(d, arrays).save(tmp_path / "ok.json")
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    (tmp_path / "bad.npz").write_bytes((tmp_path / "ok.npz").read_bytes())
    empty = {**d, "nodes": [], "outputs": ["x"]}
    (tmp_path / "empty.json").write_text(json.dumps(empty))
    (tmp_path / "empty.npz").write_bytes((tmp_path / "ok.npz").read_bytes())
    nomac = {**d, "nodes": d["nodes"][1:2], "inputs": ["a"], "outputs": ["b"]}  # maxpool only
    from_dict(nomac, arrays).save(tmp_path / "nomac.json")
    np.save(tmp_path / "x.npy", np.zeros((1, 2, 6, 6), np.float32))
    for args, msg in (
            (["infer", tmp_path / "bad.json", "--input", tmp_path / "x.npy", "--output",
              tmp_path / "y.npy"], "node c1 (conv): attrs.stride[0] is 0; must be >= 1"),
            (["cost", tmp_path / "empty.json"], "the graph has no nodes"),
            (["cost", tmp_path / "nomac.json"], None),
            (["generate", tmp_path / "empty.json", "--out", tmp_path / "hw"],
             "the graph has no nodes")):
        r = run_cli(*args)
        if msg is None:  # a graph without MACs has a cost, too
            assert r.returncode == 0 and "no MACs" in r.stdout, r.stderr
            continue
        assert r.returncode == 2 and msg in r.stderr and len(r.stderr.splitlines()) == 1, \
            r.stderr
    assert not (tmp_path / "hw").exists()


def test_corrupt_weight_archives_are_one_error(tmp_path):
    d, arrays = small_graph()
    from_dict(d, arrays).save(tmp_path / "g.json")
    good = (tmp_path / "g.npz").read_bytes()
    for name, data in (("empty", b""), ("truncated", good[:len(good) // 2]),
                       ("garbled", good[:200] + bytes(b ^ 0x5A for b in good[200:260]) +
                        good[260:]), ("npy", b"\x93NUMPY\x01\x00v\x00{'descr': '<i8', "
                                              b"'fortran_order': False, 'shape': (), }")):
        (tmp_path / "g.npz").write_bytes(data)
        with pytest.raises(QGraphError, match=r"g.npz: cannot be read") as e:
            QGraph.load(tmp_path / "g.json")
        assert "\n" not in str(e.value), name


def test_saved_configs_and_programs_are_validated(tmp_path):
    from hannah_hw.accel.config import AccelConfig
    from hannah_hw.accel.program import Program, compile_program

    d, arrays = small_graph()
    g = load(d, arrays)
    cfg = derive_config(g)
    cfg.save(tmp_path / "c.json")
    assert AccelConfig.load(tmp_path / "c.json") == cfg
    for field, value, msg in (("pe_cols", {"a": 1}, r"pe_cols is \{'a': 1\}; must be int"),
                              ("half_even", 1, "half_even is 1; must be bool"),
                              ("shift_bits", 40, "shift_bits=40"),
                              ("act_depth", 1 << 30, "act_depth=1073741824 outside")):
        (tmp_path / "bad.json").write_text(json.dumps({**json.loads(cfg.to_json()),
                                                       field: value}))
        with pytest.raises(ConfigError, match=msg):
            AccelConfig.load(tmp_path / "bad.json")
    prog = compile_program(g, cfg)
    prog.save(tmp_path / "p.json")
    doc = json.loads((tmp_path / "p.json").read_text())
    doc["descriptors"][1]["in_h"] = [1]
    (tmp_path / "p.json").write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match=r"descriptor 1: in_h is \[1\]; must be a 32-bit"):
        Program.load(tmp_path / "p.json")
    np.savez(tmp_path / "p.npz", weights=np.zeros(3), params=prog.params)
    with pytest.raises(ConfigError, match=r"weights is float64\[3\]; must be 2-D integers"):
        prog.save(tmp_path / "q.json")
        np.savez(tmp_path / "q.npz", weights=np.zeros(3), params=prog.params)
        Program.load(tmp_path / "q.json")


def test_graphs_too_large_to_generate_stop_at_the_config():
    """An activation memory of 2**21 words takes generate minutes and tens of GB: refused
    in the configuration, which cost and generate both derive."""
    d, arrays = small_graph()
    d["tensors"] = {"x": _t((2, 1024, 1024)), "e": _t((2, 1024, 1024))}
    d["nodes"] = [{"op": "relu", "name": "r", "inputs": ["x"], "output": "e", "attrs": {}}]
    d["outputs"] = ["e"]
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match=r"act_depth=4194304 outside 1..1048576"):
        derive_config(load(d, arrays))
    assert time.perf_counter() - t0 < 5
