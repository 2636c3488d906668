"""The accelerator's schedule, in closed form: every performance counter of the RTL
(hw/accel.py) for one layer, computed from its loop-nest descriptor in microseconds. This
is the analytical cost model the search uses; tests hold it to the RTL's counters.

Timing of the RTL: loading a descriptor takes NF + 1 cycles, starting 1, writing the
counters 1 (counted in the next layer; the first layer counts the start command). A lane
block of ``n`` lanes issues one step per cycle, except that an output position ends no
sooner than ``n`` cycles after the previous one (the drain writes one output per cycle)
and, for ``n > 1``, not in the cycle after it. Between lane blocks of a ``mac`` layer the
pipeline empties and the parameters are read (``n + 4`` cycles); the last block's outputs
drain in ``n + 3 + RQ_LATENCY`` cycles more (the requantiser's pipeline). On an iCE40
(``cfg.family == "ice40"``) a lane block's parameter row is read one 32-bit word per cycle: each
block of a ``mac`` layer takes ``param_words + 1`` cycles more."""

from __future__ import annotations

import numpy as np

from .config import AccelConfig
from .hwdesc import MODES, NF, RQ_LATENCY, HwLayout, hw_descriptor
from .program import OPS

LOAD, START, SNAP = NF + 1, 1, 1


def _valid_taps(out: int, k: int, stride: int, dil: int, start: int, size: int) -> int:
    """Pairs (output index, kernel tap) that land inside the input along one axis."""
    pos = start + np.arange(out)[:, None] * stride + np.arange(k)[None, :] * dil
    return int(((pos >= 0) & (pos < size)).sum())


def layer_events(d: dict, cfg: AccelConfig) -> dict:
    """Counter values of one semantic descriptor (program.FIELDS) on ``cfg``, as built for
    its FPGA family (None: the generic memories of ``accel.v``)."""
    h = hw_descriptor(d, cfg)
    mac = h["mode"] == MODES["mac"]
    red = h["cin"] * h["k_h"] * h["k_w"]
    pos = h["out_h"] * h["out_w"]
    lanes = [cfg.pe_cols] * (h["blocks"] - 1) + [h["lanes_last"]]
    lanes = lanes * h["groups"]
    taps = _valid_taps(h["out_h"], h["k_h"], h["stride_h"], h["dil_h"], h["iy_start"],
                       h["in_h"]) * _valid_taps(h["out_w"], h["k_w"], h["stride_w"], h["dil_w"],
                                                h["ix_start"], h["in_w"])
    steps = len(lanes) * red * pos
    run = 0
    for n in lanes:
        period = max(red, n, 2) if n > 1 else red
        run += red + (pos - 1) * period
    if mac:
        run += 2 + sum(n + 4 for n in lanes[:-1])
    run += lanes[-1] + 3 + RQ_LATENCY
    if mac and cfg.family == "ice40":
        run += len(lanes) * (HwLayout(cfg).param_words + 1)
    cycles = LOAD + START + run + SNAP
    macs = sum(lanes) * red * pos if mac else 0
    return {"op": OPS[d["op"]], "cycles": cycles, "busy": steps, "stall": cycles - steps,
            "macs": macs, "act_reads": len(lanes) * h["cin"] * taps,
            "act_writes": sum(lanes) * pos, "weight_reads": steps if mac else 0,
            "param_reads": len(lanes) if mac else 0, "desc_reads": NF,
            "mac_cycles": steps if mac else 0, "weight_words": len(lanes) * red if mac else 0,
            "inputs": d["cin"] * d["in_h"] * d["in_w"]}
