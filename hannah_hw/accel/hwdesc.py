"""The hardware's view of a Program: loop-nest descriptors, packed parameter and weight words,
and the bus map. One Python source for every hardware constant: the Amaranth design, the
C++ harness, the testbenches (and the firmware headers) take them from here.

Every layer runs as one loop nest, ``group / lane block / oy / ox / ci / ky / kx``, with the
input address ``ch_base + row_off + ix`` kept by additions only. Convolutions and linear
layers are ``mac`` mode (all lanes); pooling, ReLU and the residual add use one lane:
``sum`` mode (average pooling; the add as a two-"channel" reduction whose channel stride
is the distance between its operands) and ``max`` mode (max pooling; ReLU is a 1x1 max
clamped at the input's zero point)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .config import AccelConfig, ConfigError
from .program import OPS

MODES = {"mac": 0, "sum": 1, "max": 2}
# field: kind; every field occupies one 32-bit word of the descriptor memory
HW_FIELDS = {
    "mode": "mode", "groups": "cnt", "blocks": "cnt", "out_h": "cnt", "out_w": "cnt",
    "cin": "cnt", "k_h": "cnt", "k_w": "cnt", "in_h": "cnt", "in_w": "cnt",
    "stride_h": "cnt", "stride_w": "cnt", "dil_h": "cnt", "dil_w": "cnt",
    "iy_start": "sdim", "ix_start": "sdim", "row_start": "srow", "row_step": "srow",
    "dil_row": "srow", "in_addr": "addr", "ch_stride": "addr", "grp_stride": "addr",
    "out_addr": "addr", "out_lane_stride": "addr", "out_blk_stride": "addr",
    "out_grp_stride": "addr", "lanes_last": "lanes", "w_addr": "waddr", "p_addr": "paddr",
    "zp_a": "act", "zp_b": "act", "coef_a": "mult", "coef_b": "mult", "pad_val": "act",
    "zp_out": "act", "out_lo": "act", "out_hi": "act", "rq_m": "mult", "rq_sh": "shift",
    "half_even": "flag",
}
NF = len(HW_FIELDS)
COUNTERS = ("cycles", "busy", "stall", "macs", "act_reads", "act_writes", "weight_reads",
            "param_reads", "desc_reads")  # what every layer reports
# what the hardware counts (and a stats row holds): stall is always cycles - busy
HW_COUNTERS = tuple(c for c in COUNTERS if c != "stall")
# n_layers, timeout and dma_* are write-only (they read as 0: on the iCE40 their read-back
# mux cost ~180 logic cells); the counters are read from the stats rows, whose last row
# holds the Program's totals
REGS = {"ctrl": 0, "status": 1, "n_layers": 2, "magic": 3, "timeout": 4, "dma_src": 5,
        "dma_dst": 6, "dma_len": 7, "dma_cycles": 20}
READABLE = ("ctrl", "status", "magic", "dma_cycles")
CONST_BASE = 24  # configuration words for drivers to check: see const_words
MAGIC = 0x4848_5741  # "HHWA"
CTRL_START, CTRL_IRQ_EN, CTRL_DMA = 1, 2, 4
STATUS_BUSY, STATUS_DONE, STATUS_ERROR = 1, 2, 4
# input DMA: before the first layer, ``dma_len`` values are read from a host memory port
# (four bytes per 32-bit word from word address ``dma_src``) into activation address
# ``dma_dst``; bit 31 of dma_len marks unsigned bytes (zero- instead of sign-extended)
DMA_UNSIGNED = 1 << 31
# pipeline stages of the requantiser (hw/requant.py); the drain's operand select adds one
RQ_LATENCY = 4
REGIONS = ("regs", "desc", "stats", "param", "weight", "act")
# a layer's first input row and column (minus its padding) are "sdim" fields: padding up to
# 2**16 rows or columns
SDIM_BITS = 17


def layer_counts(row) -> dict[str, int]:
    """A layer's counters (COUNTERS) from its stats-row difference (HW_COUNTERS order)."""
    d = dict(zip(HW_COUNTERS, map(int, row)))
    d["stall"] = d["cycles"] - d["busy"]
    return {k: d[k] for k in COUNTERS}


def _bits(n: int) -> int:
    return max(1, (max(n, 1) - 1).bit_length())


class HwLayout:
    """Widths, word counts and the bus map of one AccelConfig."""

    def __init__(self, cfg: AccelConfig):
        self.cfg = cfg
        self.lanes = cfg.pe_cols
        self.act_w = cfg.act_bits + 1  # signed container: unsigned tensors fit as well
        self.aw = _bits(cfg.act_depth) + 1  # one spare bit: addresses wrap modulo 2**aw
        # counts (sizes, channels, kernel taps, strides) are at most an activation count
        self.cnt_w = max(self.aw, 4)
        # the sequencer's input row and column run from the first (an sdim field, down to
        # -2**16) to the last input (< 2**cnt_w) plus the padding (< 2**16): signed, the wider
        # of the two ranges and one bit more
        self.pos_w = max(SDIM_BITS, self.cnt_w + 1) + 1
        self.waw = _bits(cfg.weight_depth + 1)
        self.paw = _bits(cfg.param_depth + 1)
        self.mult_w = cfg.shift_bits if cfg.mult_bits == 1 else cfg.mult_bits
        self.lane_param_w = cfg.acc_bits + self.mult_w + cfg.shift_bits
        self.param_words = math.ceil(self.lanes * self.lane_param_w / 32)
        self.weight_words = math.ceil(self.lanes * cfg.weight_bits / 32)
        # bus words per memory row: a power of two, so a row's words are address bits
        self.param_stride = 1 << (self.param_words - 1).bit_length()
        self.weight_stride = 1 << (self.weight_words - 1).bit_length()
        self.stats_stride = 1 << (len(HW_COUNTERS) - 1).bit_length()
        sizes = {"regs": 64, "desc": cfg.desc_depth * NF,
                 "stats": cfg.desc_depth * self.stats_stride,
                 "param": cfg.param_depth * self.param_stride,
                 "weight": cfg.weight_depth * self.weight_stride, "act": cfg.act_depth}
        self.region_bits = max(_bits(s) for s in sizes.values())
        self.bus_addr_w = self.region_bits + 3
        self.sizes = sizes

    def kind_shape(self, kind: str) -> tuple[int, bool]:
        """(width, signed) of a descriptor field kind."""
        return {"mode": (2, False), "cnt": (self.cnt_w, False), "sdim": (SDIM_BITS, True),
                "srow": (self.aw + 2, True), "addr": (self.aw, False), "waddr": (self.waw, False),
                "paddr": (self.paw, False), "act": (self.act_w, True),
                "mult": (self.mult_w, False), "shift": (self.cfg.shift_bits, False),
                "lanes": (self.lanes.bit_length(), False),
                "flag": (1, False)}[kind]

    def base(self, region: str) -> int:
        """Bus word address of a region."""
        return REGIONS.index(region) << self.region_bits

    def reg(self, name: str) -> int:
        """Bus word address of a register (REGS)."""
        return self.base("regs") + REGS[name]

    def const_words(self) -> list[int]:
        c = self.cfg
        return [c.pe_cols, c.act_bits, c.weight_bits, c.acc_bits, c.mult_bits, c.shift_bits,
                c.act_depth, c.weight_depth, c.param_depth, c.desc_depth, NF, len(HW_COUNTERS)]


def encode_mult(m: int, cfg: AccelConfig) -> int:
    """A multiplier in the hardware's encoding: log2 for shift-only designs."""
    if cfg.mult_bits == 1:
        if m & (m - 1) or m <= 0:
            raise ConfigError(f"multiplier {m} is not a power of two, but the design has no "
                              "multiplier (shifts only)")
        return m.bit_length() - 1
    return m


def hw_descriptor(d: dict, cfg: AccelConfig) -> dict[str, int]:
    """The loop-nest descriptor of one semantic descriptor (program.FIELDS)."""
    op = OPS[d["op"]]
    lay = HwLayout(cfg)
    in_hw, out_hw = d["in_h"] * d["in_w"], d["out_h"] * d["out_w"]
    h = {f: 0 for f in HW_FIELDS}
    h.update(groups=1, blocks=1, out_h=d["out_h"], out_w=d["out_w"], cin=d["cin"], k_h=d["k_h"],
             k_w=d["k_w"], in_h=d["in_h"], in_w=d["in_w"], stride_h=d["stride_h"],
             stride_w=d["stride_w"], dil_h=d["dil_h"], dil_w=d["dil_w"], in_addr=d["in_addr"],
             ch_stride=in_hw, out_addr=d["out_addr"], out_lane_stride=out_hw, lanes_last=1,
             zp_a=d["zp_in"], zp_b=d["zp_in"], coef_a=encode_mult(1, cfg),
             coef_b=encode_mult(1, cfg), zp_out=d["zp_out"], out_lo=d["out_lo"],
             out_hi=d["out_hi"], rq_m=encode_mult(1, cfg), rq_sh=1, half_even=d["half_even"],
             pad_val=d["out_lo"])
    n_elem = d["cin"] * in_hw
    if op in ("conv", "linear"):
        g = d["groups"]
        if g < 1:
            raise ConfigError(f"groups={g}: must be at least 1")
        cout_g = d["cout"] // g
        blocks = -(-cout_g // cfg.pe_cols)
        h.update(mode=MODES["mac"], groups=g, blocks=blocks, cin=d["cin"] // g,
                 grp_stride=d["cin"] // g * in_hw, out_blk_stride=cfg.pe_cols * out_hw,
                 out_grp_stride=cout_g * out_hw, lanes_last=cout_g - (blocks - 1) * cfg.pe_cols,
                 w_addr=d["w_addr"], p_addr=d["p_addr"])
    elif op in ("avgpool", "global_avgpool", "maxpool"):
        h.update(mode=MODES["max" if op == "maxpool" else "sum"], groups=d["cin"], cin=1,
                 grp_stride=in_hw, out_grp_stride=out_hw)
        if op != "maxpool":
            h.update(rq_m=encode_mult(d["m"], cfg), rq_sh=d["sh"])
    elif op == "add":
        h.update(mode=MODES["sum"], out_h=1, out_w=n_elem, cin=2, in_h=1, in_w=n_elem,
                 ch_stride=(d["in2_addr"] - d["in_addr"]) % (1 << lay.aw),
                 zp_b=d["zp_in2"], coef_a=encode_mult(d["m"], cfg),
                 coef_b=encode_mult(d["m_b"], cfg), rq_sh=d["sh"])
    else:  # relu: max(x, zp) is a 1x1 max clamped at the zero point
        h.update(mode=MODES["max"], out_h=1, out_w=n_elem, cin=1, in_h=1, in_w=n_elem,
                 out_lo=max(d["out_lo"], d["zp_in"]))
    h.update(iy_start=-d["pad_h"], ix_start=-d["pad_w"], row_start=-d["pad_h"] * h["in_w"],
             row_step=h["stride_h"] * h["in_w"], dil_row=h["dil_h"] * h["in_w"])
    for f, kind in HW_FIELDS.items():
        w, signed = lay.kind_shape(kind)
        lo, hi = (-(1 << (w - 1)), (1 << (w - 1)) - 1) if signed else (0, (1 << w) - 1)
        if kind in ("cnt", "lanes"):  # loop bounds, sizes and steps: a 0 would wrap around
            lo = 1
        if not lo <= h[f] <= hi:
            raise ConfigError(f"descriptor field {f}={h[f]} is outside {lo}..{hi}, what the "
                              f"configuration's {w}-bit field holds")
    return h


def hw_words(descs: list[dict[str, int]]) -> np.ndarray:
    """Descriptors as the 32-bit words of the descriptor memory (two's complement)."""
    return (np.array([[h[f] for f in HW_FIELDS] for h in descs], np.int64).reshape(-1)
            & 0xFFFF_FFFF).astype(np.uint32)


def _pack(values: np.ndarray, widths: list[int], words: int) -> np.ndarray:
    """Rows of fields (lane-major, LSB first) into ``words`` 32-bit words per row."""
    out = np.zeros((len(values), words), np.uint32)
    for r, row in enumerate(values):
        acc, pos = 0, 0
        for v, w in zip(row, widths):
            acc |= (int(v) & ((1 << w) - 1)) << pos
            pos += w
        out[r] = [(acc >> (32 * i)) & 0xFFFF_FFFF for i in range(words)]
    return out


def _check_rows(a: np.ndarray, name: str, shape: tuple[int, ...], depth: int) -> None:
    """``a`` as (rows, *shape) integers, at most ``depth`` rows (the memory's)."""
    if not np.issubdtype(a.dtype, np.integer) or a.shape[1:] != shape:
        raise ConfigError(f"{name} are {a.dtype}{list(a.shape)}; the configuration takes "
                          f"integers of shape [rows, {', '.join(map(str, shape))}]")
    if len(a) > depth:
        raise ConfigError(f"{len(a)} rows of {name} do not fit the configuration's {depth}")


def check_weights(weights: np.ndarray, cfg: AccelConfig) -> None:
    """(entries, lanes) signed weights of the configuration's width, in its memory."""
    _check_rows(weights, "weights", (cfg.pe_cols,), cfg.weight_depth)
    lo, hi = -(1 << (cfg.weight_bits - 1)), (1 << (cfg.weight_bits - 1)) - 1
    if weights.size and (weights.min() < lo or weights.max() > hi):
        raise ConfigError(f"a weight does not fit the configuration's {cfg.weight_bits} bits")


def weight_words(weights: np.ndarray, cfg: AccelConfig) -> np.ndarray:
    """(entries, lanes) weights -> (entries, words) bus words."""
    check_weights(weights, cfg)
    return _pack(weights, [cfg.weight_bits] * cfg.pe_cols, HwLayout(cfg).weight_words)


def param_words(params: np.ndarray, cfg: AccelConfig) -> np.ndarray:
    """(blocks, lanes, 3) bias/multiplier/shift -> (blocks, words) bus words."""
    lay = HwLayout(cfg)
    _check_rows(params, "parameters", (cfg.pe_cols, 3), cfg.param_depth)
    enc = params.copy()
    if cfg.mult_bits == 1:
        enc[..., 1] = np.array([encode_mult(int(m), cfg) if m else 0
                                for m in enc[..., 1].reshape(-1)], np.int64).reshape(enc.shape[:-1])
    for col, (name, w, signed) in enumerate((("bias", cfg.acc_bits, True),
                                             ("multiplier", lay.mult_w, False),
                                             ("shift", cfg.shift_bits, False))):
        lo, hi = (-(1 << (w - 1)), (1 << (w - 1)) - 1) if signed else (0, (1 << w) - 1)
        v = enc[..., col]
        if v.size and (v.min() < lo or v.max() > hi):
            raise ConfigError(f"a {name} does not fit the configuration's {w} bits")
    widths = [cfg.acc_bits, lay.mult_w, cfg.shift_bits] * cfg.pe_cols
    return _pack(enc.reshape(len(enc), 3 * cfg.pe_cols), widths, lay.param_words)


def check_fits(prog, cfg: AccelConfig, where) -> None:
    """A loaded Program (program.Program) against its configuration, as the simulator and
    the firmware will pack it: descriptors that fit the descriptor memory and their fields,
    parameters and weights that fit their memories and widths. Errors name ``where`` and
    the descriptor."""
    if not prog.descriptors:
        raise ConfigError(f"{where}: the Program has no layers")
    if len(prog.descriptors) > cfg.desc_depth:
        raise ConfigError(f"{where}: {len(prog.descriptors)} layers do not fit the "
                          f"configuration's {cfg.desc_depth} descriptors")
    for i, d in enumerate(prog.descriptors):
        if OPS[d["op"]] not in cfg.units:
            raise ConfigError(f"{where}: descriptor {i} is a {OPS[d['op']]}; the configuration "
                              f"has no such unit (units {', '.join(cfg.units)})")
        try:
            h = hw_descriptor(d, cfg)
        except ConfigError as e:
            raise ConfigError(f"{where}: descriptor {i}: {e}") from None
        if h["mode"] == MODES["mac"]:  # its lane blocks' parameter rows and weight words
            rows = h["groups"] * h["blocks"]
            for name, start, n, have in (
                    ("parameter rows", d["p_addr"], rows, len(prog.params)),
                    ("weight words", d["w_addr"], rows * h["cin"] * h["k_h"] * h["k_w"],
                     len(prog.weights))):
                if start + n > have:
                    raise ConfigError(f"{where}: descriptor {i} reads {name} {start}.."
                                      f"{start + n - 1}; the Program has {have}")
    try:
        param_words(prog.params, cfg)
        check_weights(prog.weights, cfg)
    except ConfigError as e:
        raise ConfigError(f"{Path(where).with_suffix('.npz')}: {e}") from None
