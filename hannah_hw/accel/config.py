"""AccelConfig: every hardware number, derived from the QGraph it must run. The Amaranth
design, the C headers and the testbenches all take their constants from here."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np

from hannah_hw.ir.qgraph import OPS, QGraph

VERSION = 1  # the family field came later: a file without it reads as None, as it meant
LANE_CHOICES = (4, 8, 16)
# memory depths the generator builds in seconds (2**20 activation words take ~30 s and fit
# no supported board); beyond, elaboration runs for minutes and tens of GB
MAX_DEPTH = {"act_depth": 1 << 20, "weight_depth": 1 << 20, "param_depth": 1 << 16,
             "desc_depth": 1 << 16}
# the FPGA families the accelerator is elaborated for (fpga.boards' Board.family); None:
# generic memories, for simulation and ASIC flows
FAMILIES = ("ecp5", "ice40")  # sorted: the choices a config.json may name


class ConfigError(ValueError):
    """A configuration that is invalid or does not fit the network."""


@dataclasses.dataclass(frozen=True)
class AccelConfig:
    pe_rows: int  # output positions computed in parallel
    pe_cols: int  # output channels computed in parallel (lanes)
    act_bits: int  # activation container width (signed)
    weight_bits: int
    acc_bits: int
    mult_bits: int  # requantisation multiplier width; 1 means shifts only
    shift_bits: int
    act_depth: int  # activation memory words (one activation each)
    weight_depth: int  # weight memory words (pe_cols weights each)
    param_depth: int  # lane blocks of per-channel parameters (bias, multiplier, shift)
    desc_depth: int  # layer descriptor slots
    units: tuple[str, ...]  # functional units present
    half_even: bool  # rounding half to even needed (imported ONNX graphs)
    zero_points: bool  # nonzero zero points present
    family: str | None = None  # FPGA family it is built as (FAMILIES), None: generic memories
    version: int = VERSION

    @property
    def mac_units(self) -> int:
        return self.pe_rows * self.pe_cols

    def validate(self) -> None:
        problems = []
        if self.pe_rows != 1:
            problems.append(f"pe_rows={self.pe_rows}: only 1 row is implemented")
        if not 1 <= self.pe_cols <= 64:
            problems.append(f"pe_cols={self.pe_cols} outside 1..64")
        if not 2 <= self.weight_bits <= 8 or not 2 <= self.act_bits <= 16:
            problems.append("weight bits must be 2..8 and activation bits 2..16")
        if not 2 <= self.acc_bits <= 48:
            problems.append(f"acc_bits={self.acc_bits} outside 2..48")
        if not 1 <= self.mult_bits <= 32 or not 1 <= self.shift_bits <= 8:
            problems.append(f"mult_bits={self.mult_bits} / shift_bits={self.shift_bits} outside "
                            "1..32 / 1..8")
        for f, hi in MAX_DEPTH.items():
            if not 1 <= getattr(self, f) <= hi:
                problems.append(f"{f}={getattr(self, f)} outside 1..{hi}")
        if not set(self.units) <= set(OPS):
            problems.append(f"units {list(self.units)} are not all of {', '.join(OPS)}")
        if self.family not in (None, *FAMILIES):
            problems.append(f"family={self.family!r}: one of null, {', '.join(FAMILIES)}")
        if problems:
            raise ConfigError("invalid accelerator configuration: " + "; ".join(problems))

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)

    def save(self, path: Path) -> None:
        Path(path).write_text(self.to_json() + "\n")

    @classmethod
    def load(cls, path: Path) -> AccelConfig:
        """Read and validate: field types first (ints are ints, flags booleans), then the
        ranges of ``validate``."""
        try:
            d = json.loads(Path(path).read_text())
            d["units"] = tuple(d["units"])
            cfg = cls(**d)
        except (OSError, ValueError, RecursionError, TypeError, KeyError) as e:
            raise ConfigError(f"{path}: not an accelerator configuration ({e})") from None
        for f in dataclasses.fields(cls):
            v = getattr(cfg, f.name)
            ok = all(isinstance(u, str) for u in v) if f.name == "units" else \
                isinstance(v, bool) if f.type == "bool" else \
                v is None or isinstance(v, str) if f.name == "family" else \
                isinstance(v, int) and not isinstance(v, bool)
            if not ok:
                raise ConfigError(f"{path}: {f.name} is {v!r}; must be {f.type}")
        if cfg.version != VERSION:
            raise ConfigError(f"{path}: version {cfg.version}; this hannah-hw writes {VERSION}")
        try:
            cfg.validate()
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from None
        return cfg


def _bits_signed(maxabs: int) -> int:
    return max(2, int(maxabs).bit_length() + 1)


def _xmax(g: QGraph, t: str) -> int:
    x = g.tensors[t]
    lo, hi = x.range
    return max(abs(lo - x.zero_point), abs(hi - x.zero_point))


def acc_bound(g: QGraph, n) -> int:
    """Largest |accumulator| a node can reach, from bit widths, fan-in and multipliers."""
    if n.op == "add":
        return _xmax(g, n.inputs[0]) * n.attrs["m_a"] + _xmax(g, n.inputs[1]) * n.attrs["m_b"]
    if n.op in ("avgpool", "global_avgpool"):
        shape = g.tensors[n.inputs[0]].shape
        window = int(np.prod(n.attrs["kernel"])) if n.op == "avgpool" else \
            int(np.prod(shape[1:]))
        return window * _xmax(g, n.inputs[0])
    if n.op not in ("conv", "linear"):
        return _xmax(g, n.inputs[0]) * 2
    w = g.param(n, "weight")
    xmax = _xmax(g, n.inputs[0])
    fan_in = int(np.prod(w.shape[1:]))
    wmax = int(np.abs(w).max(initial=0))
    return fan_in * xmax * wmax + int(np.abs(g.param(n, "bias")).max(initial=0))


def lane_blocks(cout: int, groups: int, lanes: int) -> int:
    """Passes over the output channels: per group, ceil(channels per group / lanes)."""
    return groups * math.ceil(cout // groups / lanes)


def ideal_utilization(g: QGraph, lanes: int) -> float:
    """MACs / (MAC units x cycles of the MAC loops) for a lane count, ignoring overheads."""
    work = cycles = 0
    for n in g.nodes:
        if n.op not in ("conv", "linear"):
            continue
        w = g.param(n, "weight")
        positions = int(np.prod(g.tensors[n.output].shape[1:])) if n.op == "conv" else 1
        red = int(np.prod(w.shape[1:]))
        groups = n.attrs.get("groups", 1)
        work += w.shape[0] * red * positions
        cycles += lane_blocks(w.shape[0], groups, lanes) * red * positions
    return work / (cycles * lanes) if cycles else 1.0


def plan_memory(g: QGraph) -> tuple[dict[str, int], int]:
    """First-fit placement of every tensor by liveness; returns addresses and the depth."""
    size = {t: int(np.prod(info.shape)) for t, info in g.tensors.items()}
    last_use = {t: -1 for t in g.tensors}
    for i, n in enumerate(g.nodes):
        for t in n.inputs:
            last_use[t] = i
    for t in g.outputs:
        last_use[t] = len(g.nodes)
    addr: dict[str, int] = {}
    live: dict[str, tuple[int, int]] = {}

    def place(t: str) -> None:
        start = 0
        for a, e in sorted(live.values()):
            if start + size[t] <= a:
                break
            start = max(start, e)
        addr[t] = start
        live[t] = (start, start + size[t])

    for t in g.inputs:
        place(t)
    for i, n in enumerate(g.nodes):
        place(n.output)  # inputs are still live here: input and output never overlap
        for t in list(live):
            if last_use[t] <= i and t not in g.outputs and t != n.output:
                del live[t]
    depth = max((addr[t] + size[t] for t in addr), default=1)
    return addr, depth


def derive_config(g: QGraph, pe_rows: int | None = None, pe_cols: int | None = None,
                  family: str | None = None) -> AccelConfig:
    """The smallest accelerator that runs ``g``: units it uses, widths it needs, memories
    sized to its largest demand; lanes default to the widest of 4/8/16 that keeps the MAC
    loops at least 90 % busy. ``family``: the FPGA family it is built as (None: generic)."""
    if pe_cols is None:
        ok = [p for p in LANE_CHOICES if ideal_utilization(g, p) >= 0.9]
        pe_cols = max(ok) if ok else max(LANE_CHOICES, key=lambda p: ideal_utilization(g, p))
    weighted = [n for n in g.nodes if n.op in ("conv", "linear")]
    wbits = max((n.attrs.get("wbits", 8) for n in weighted), default=2)
    act_bits = max(t.bits for t in g.tensors.values())
    acc = max(_bits_signed(acc_bound(g, n)) for n in g.nodes)
    mults = [int(v) for n in weighted for v in g.param(n, "m")]
    mults += [int(n.attrs[k]) for n in g.nodes for k in ("m", "m_a", "m_b") if k in n.attrs]
    shifts = [int(v) for n in weighted for v in g.param(n, "sh")]
    shifts += [int(n.attrs["sh"]) for n in g.nodes if "sh" in n.attrs]
    pow2_only = all(m & (m - 1) == 0 for m in mults)
    mult_bits = 1 if pow2_only else max(m.bit_length() for m in mults) + 1
    if pow2_only:  # a power-of-two multiplier is a left shift: fold it into the shift range
        shifts += [m.bit_length() for m in mults]
    _, act_depth = plan_memory(g)
    weight_depth = sum(lane_blocks(g.param(n, "weight").shape[0], n.attrs.get("groups", 1),
                                   pe_cols) * int(np.prod(g.param(n, "weight").shape[1:]))
                       for n in weighted)
    cfg = AccelConfig(
        pe_rows=pe_rows or 1, pe_cols=pe_cols, act_bits=max(8, act_bits), weight_bits=wbits,
        acc_bits=acc, mult_bits=mult_bits, shift_bits=max(shifts, default=1).bit_length() + 1,
        act_depth=act_depth, weight_depth=max(1, weight_depth),
        param_depth=max(1, sum(lane_blocks(g.param(n, "weight").shape[0],
                                           n.attrs.get("groups", 1), pe_cols) for n in weighted)),
        desc_depth=len(g.nodes), units=tuple(sorted({n.op for n in g.nodes})),
        half_even=any(n.attrs.get("rounding") == "half_even" for n in g.nodes),
        zero_points=any(t.zero_point for t in g.tensors.values()), family=family)
    cfg.validate()
    return cfg


def merge_configs(cfgs: list[AccelConfig]) -> AccelConfig:
    """One accelerator that runs every network the given configurations were derived for
    (same lane count and FPGA family): widest widths, deepest memories, all units."""
    for what, values in (("lane counts", {c.pe_cols for c in cfgs}),
                         ("FPGA families", {c.family for c in cfgs})):
        if len(values) != 1:
            raise ConfigError(f"cannot merge configurations with different {what} {values}")
    fields = {f.name for f in dataclasses.fields(AccelConfig)} - {
        "units", "half_even", "zero_points", "family", "version"}
    merged = {f: max(getattr(c, f) for c in cfgs) for f in fields}
    cfg = AccelConfig(**merged, units=tuple(sorted({u for c in cfgs for u in c.units})),
                      half_even=any(c.half_even for c in cfgs),
                      zero_points=any(c.zero_points for c in cfgs), family=cfgs[0].family)
    cfg.validate()
    return cfg
