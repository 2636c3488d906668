"""The Program: what the accelerator executes. Layer descriptors (one per QGraph node), the
activation memory map, and weights packed in lane words (``pe_cols`` weights per word, in
the order the MAC loop reads them) with per-channel parameters.

Activations are stored channel-major (C, H, W) or (C, L), one per word. Tensors share one
activation memory; the planner places each tensor so that no two live at once overlap.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np

from hannah_hw.ir.qgraph import QGraph

from .config import AccelConfig, ConfigError, lane_blocks, plan_memory

OPCODES = {"conv": 1, "linear": 2, "add": 3, "avgpool": 4, "maxpool": 5, "global_avgpool": 6,
           "relu": 7}
OPS = {v: k for k, v in OPCODES.items()}  # opcode -> op name
# descriptor fields, in order; each is one 32-bit word (signed where it can be negative)
FIELDS = ("op", "in_addr", "in2_addr", "out_addr", "cin", "in_h", "in_w", "cout", "out_h",
          "out_w", "k_h", "k_w", "stride_h", "stride_w", "pad_h", "pad_w", "dil_h", "dil_w",
          "groups", "w_addr", "p_addr", "relu", "out_lo", "out_hi", "zp_in", "zp_in2",
          "zp_out", "m", "m_b", "sh", "half_even")


@dataclasses.dataclass(frozen=True)
class Program:
    descriptors: tuple[dict[str, int], ...]
    names: tuple[str, ...]  # QGraph node per descriptor
    weights: np.ndarray  # (words, pe_cols) int
    params: np.ndarray  # (blocks, lanes, 3): bias, multiplier, shift per lane block
    act_addr: dict[str, int]
    act_depth: int
    input: str
    output: str

    def words(self) -> np.ndarray:
        """Descriptors as 32-bit words in FIELDS order (the reference kernels' layout; what
        the accelerator reads is accel.bus.bus_words)."""
        return np.array([[d[f] for f in FIELDS] for d in self.descriptors], np.int64) \
            .astype(np.uint32)

    def save(self, path: Path) -> None:
        path = Path(path)
        path.write_text(json.dumps({"fields": list(FIELDS), "descriptors": list(self.descriptors),
                                    "names": list(self.names), "act_addr": self.act_addr,
                                    "act_depth": self.act_depth, "input": self.input,
                                    "output": self.output}, indent=1) + "\n")
        np.savez_compressed(path.with_suffix(".npz"), weights=self.weights, params=self.params)

    @classmethod
    def load(cls, path: Path) -> Program:
        path = Path(path)
        try:
            d = json.loads(path.read_text())
        except (OSError, ValueError, RecursionError) as e:
            raise ConfigError(f"{path}: not a hannah-hw program ({e})") from None
        try:
            with np.load(path.with_suffix(".npz"), allow_pickle=False) as z:
                w, p = z["weights"], z["params"]
        except Exception as e:  # zipfile, zlib and numpy raise many types on corrupt archives
            raise ConfigError(f"{path.with_suffix('.npz')}: cannot be read "
                              f"({type(e).__name__}: {e})") from None
        _check_program(d, w, p, str(path))
        return cls(tuple(d["descriptors"]), tuple(d["names"]), w, p, d["act_addr"],
                   d["act_depth"], d["input"], d["output"])


def _is_int(v, lo: int = -(1 << 31), hi: int = (1 << 32) - 1) -> bool:
    """An integer that fits a 32-bit descriptor word (signed or unsigned)."""
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _check_program(d, w: np.ndarray, p: np.ndarray, where: str) -> None:
    """A saved Program's structure and field types: what the firmware and the simulator
    index without further checks."""
    def fail(msg: str):
        raise ConfigError(f"{where}: {msg}")

    if not isinstance(d, dict):
        fail("not a hannah-hw program (not a JSON object)")
    missing = [k for k in ("fields", "descriptors", "names", "act_addr", "act_depth", "input",
                           "output") if k not in d]
    if missing:
        fail(f"not a hannah-hw program (lacks {', '.join(missing)})")
    if d["fields"] != list(FIELDS):
        fail("descriptor layout differs from this version")
    descs, names, addr = d["descriptors"], d["names"], d["act_addr"]
    if not isinstance(descs, list) or not isinstance(names, list) or len(descs) != len(names) \
            or not all(isinstance(n, str) for n in names):
        fail("descriptors and names must be lists of equal length")
    for i, desc in enumerate(descs):
        if not isinstance(desc, dict) or set(desc) != set(FIELDS):
            fail(f"descriptor {i} must have exactly the fields {', '.join(FIELDS)}")
        bad = next((f for f in FIELDS if not _is_int(desc[f])), None)
        if bad:
            fail(f"descriptor {i}: {bad} is {desc[bad]!r}; must be a 32-bit integer")
        if desc["op"] not in OPCODES.values():
            fail(f"descriptor {i}: op {desc['op']} is not an opcode")
    if not isinstance(addr, dict) or not all(_is_int(a, 0) for a in addr.values()):
        fail("act_addr must map tensor names to addresses")
    if not _is_int(d["act_depth"], 1) or not all(isinstance(d[k], str) and d[k] in addr
                                                 for k in ("input", "output")):
        fail("act_depth, input and output must be a depth and two tensors of act_addr")
    for name, a, ndim in (("weights", w, 2), ("params", p, 3)):
        if not np.issubdtype(a.dtype, np.integer) or a.ndim != ndim:
            fail(f"{name} is {a.dtype}{list(a.shape)}; must be {ndim}-D integers")
    if p.shape[2] != 3 or w.shape[1] != p.shape[1]:
        fail(f"weights {list(w.shape)} and params {list(p.shape)} disagree on the lanes")


def _spatial(shape: tuple[int, ...]) -> tuple[int, int]:
    """(H, W) of a (C, H, W) or (C, L) tensor; 1-D data is a single row."""
    return (shape[1], shape[2]) if len(shape) == 3 else (1, shape[1] if len(shape) > 1 else 1)


def pack_weights(w: np.ndarray, groups: int, lanes: int) -> np.ndarray:
    """(Cout, Cin/g, *k) -> words (blocks x reduction, lanes): per group, per block of
    ``lanes`` output channels, one word per reduction step (ci, ky, kx)."""
    cout = w.shape[0]
    per_group = cout // groups
    red = int(np.prod(w.shape[1:]))
    flat = w.reshape(cout, red)
    words = []
    for g in range(groups):
        for b in range(math.ceil(per_group / lanes)):
            lo = g * per_group + b * lanes
            hi = min(lo + lanes, (g + 1) * per_group)
            block = np.zeros((red, lanes), np.int64)
            block[:, :hi - lo] = flat[lo:hi].T
            words.append(block)
    return np.concatenate(words) if words else np.zeros((0, lanes), np.int64)


def pack_params(p: np.ndarray, groups: int, lanes: int) -> np.ndarray:
    """(Cout, 3) -> (blocks, lanes, 3): the parameters of each lane block, idle lanes zero."""
    per_group = len(p) // groups
    out = []
    for g in range(groups):
        for b in range(0, per_group, lanes):
            block = np.zeros((lanes, 3), np.int64)
            chans = p[g * per_group + b:g * per_group + min(b + lanes, per_group)]
            block[:len(chans)] = chans
            out.append(block)
    return np.stack(out)


def compile_program(g: QGraph, cfg: AccelConfig) -> Program:
    """Descriptors, memory map and packed weights of ``g`` for ``cfg``."""
    addr, depth = plan_memory(g)
    if depth > cfg.act_depth:
        raise ConfigError(f"activation memory too small: the network needs {depth} words, "
                          f"the configuration has {cfg.act_depth}")
    missing = sorted({n.op for n in g.nodes} - set(cfg.units))
    if missing:
        raise ConfigError(f"the configuration lacks the unit(s) {', '.join(missing)}")
    zps = sorted(t for t, v in g.tensors.items() if v.zero_point)
    if zps and not cfg.zero_points:  # the RTL then has no zero-point datapath
        raise ConfigError(f"tensor {zps[0]} has zero point {g.tensors[zps[0]].zero_point}: "
                          "the configuration has none (zero_points false)")
    even = [n.name for n in g.nodes if n.attrs.get("rounding") == "half_even"]
    if even and not cfg.half_even:
        raise ConfigError(f"node {even[0]} rounds half to even: the configuration does not "
                          "(half_even false)")
    weights, params, descs = [], [], []
    w_addr = p_addr = 0
    for n in g.nodes:
        x, y = g.tensors[n.inputs[0]], g.tensors[n.output]
        (in_h, in_w), (out_h, out_w) = _spatial(x.shape), _spatial(y.shape)
        a = n.attrs
        lo, hi = y.range
        d = {f: 0 for f in FIELDS}
        d.update(op=OPCODES[n.op], in_addr=addr[n.inputs[0]], out_addr=addr[n.output],
                 cin=x.shape[0], in_h=in_h, in_w=in_w, cout=y.shape[0], out_h=out_h,
                 out_w=out_w, relu=int(bool(a.get("relu")) or n.op == "relu"),
                 out_lo=max(lo, y.zero_point) if a.get("relu") else lo, out_hi=hi,
                 zp_in=x.zero_point, zp_out=y.zero_point, groups=1, stride_h=1, stride_w=1,
                 dil_h=1, dil_w=1, k_h=1, k_w=1,
                 half_even=int(a.get("rounding") == "half_even"))
        if n.op in ("conv", "linear"):
            w = g.param(n, "weight")
            if n.op == "linear":
                d.update(cin=int(np.prod(x.shape)), in_h=1, in_w=1)
            groups = a.get("groups", 1)
            k = list(w.shape[2:]) if n.op == "conv" else []
            k_h, k_w = (k[0], k[1]) if len(k) == 2 else (1, k[0] if k else 1)
            if n.op == "conv":
                s, p, dl = a["stride"], a["padding"], a["dilation"]
                two = len(k) == 2
                d.update(stride_h=s[0] if two else 1, stride_w=s[-1], pad_h=p[0] if two else 0,
                         pad_w=p[-1], dil_h=dl[0] if two else 1, dil_w=dl[-1])
            packed = pack_weights(w, groups, cfg.pe_cols)
            d.update(k_h=k_h, k_w=k_w, groups=groups, w_addr=w_addr, p_addr=p_addr)
            weights.append(packed)
            params.append(pack_params(np.stack([g.param(n, "bias"), g.param(n, "m"),
                                                g.param(n, "sh")], 1), groups, cfg.pe_cols))
            w_addr += len(packed)
            p_addr += len(params[-1])
            assert len(packed) == lane_blocks(w.shape[0], groups, cfg.pe_cols) * \
                int(np.prod(w.shape[1:]))
        elif n.op == "add":
            z = g.tensors[n.inputs[1]]
            d.update(in2_addr=addr[n.inputs[1]], zp_in2=z.zero_point, m=a["m_a"], m_b=a["m_b"],
                     sh=a["sh"])
        elif n.op in ("avgpool", "maxpool"):
            kk = list(a["kernel"])
            two = len(kk) == 2
            s, p = a["stride"], a["padding"]
            dl = a.get("dilation", [1] * len(kk))
            d.update(k_h=kk[0] if two else 1, k_w=kk[-1], stride_h=s[0] if two else 1,
                     stride_w=s[-1], pad_h=p[0] if two else 0, pad_w=p[-1],
                     dil_h=dl[0] if two else 1, dil_w=dl[-1])
            if n.op == "avgpool":
                d.update(m=a["m"], sh=a["sh"])
            else:
                d.update(out_lo=lo, zp_out=x.zero_point)
        elif n.op == "global_avgpool":
            d.update(k_h=in_h, k_w=in_w, stride_h=in_h, stride_w=in_w, m=a["m"], sh=a["sh"])
        descs.append(d)
    if w_addr > cfg.weight_depth or p_addr > cfg.param_depth or len(descs) > cfg.desc_depth:
        raise ConfigError(f"the network does not fit: {w_addr}/{cfg.weight_depth} weight words, "
                          f"{p_addr}/{cfg.param_depth} parameter entries, {len(descs)}/"
                          f"{cfg.desc_depth} descriptors")
    return Program(tuple(descs), tuple(n.name for n in g.nodes),
                   np.concatenate(weights) if weights else np.zeros((0, cfg.pe_cols), np.int64),
                   np.concatenate(params) if params else np.zeros((0, cfg.pe_cols, 3), np.int64),
                   addr, depth, g.inputs[0], g.outputs[0])
