"""A fast resource model for the search: LUTs, flip-flops and DSPs from a linear model
whose coefficients are least-squares fitted on real builds (``resource_fit.json``, refit
by ``benchmarks/fpga.py``); block RAMs and SPRAMs from the memories' shapes (fit.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hannah_hw.accel.config import LANE_CHOICES, AccelConfig, ConfigError, derive_config
from hannah_hw.accel.hwdesc import HwLayout
from hannah_hw.fpga.fit import FitError, fit_message

from .boards import board
from .fit import memory_blocks

FIT_FILE = Path(__file__).with_name("resource_fit.json")
FEATURES = ("one", "lane_bits", "addr_bits", "mult")


def features(cfg: AccelConfig) -> dict[str, float]:
    """What the logic grows with: per-lane accumulator, shadow and parameter bits, the
    address adders of the sequencer, and whether a requantisation multiplier exists."""
    lay = HwLayout(cfg)
    return {"one": 1.0, "lane_bits": float(cfg.pe_cols * (2 * cfg.acc_bits + lay.lane_param_w)),
            "addr_bits": float(lay.aw + lay.waw + lay.paw),
            "mult": float(cfg.mult_bits > 1)}


def fit(rows: list[dict]) -> dict[str, dict[str, float]]:
    """Least-squares coefficients per resource (lut, ff) from measured builds; DSPs are
    one per lane plus those of the requantiser's multiplier."""
    x = np.array([[features(AccelConfig(**{**r["config"], "units": tuple(r["config"]["units"])}))
                   [f] for f in FEATURES] for r in rows])
    out = {}
    for res in ("lut", "ff"):
        y = np.array([r["measured"][res] for r in rows], float)
        coef, *_ = np.linalg.lstsq(x, y, rcond=None)
        out[res] = dict(zip(FEATURES, map(float, coef)))
    placed = [i for i, r in enumerate(rows) if (r.get("placed") or {}).get("lc")]
    if placed:  # iCE40 logic cells (LUT4 + FF pairs), from the builds nextpnr placed
        y = np.array([rows[i]["placed"]["lc"] for i in placed], float)
        coef, *_ = np.linalg.lstsq(x[placed], y, rcond=None)
        out["lc"] = dict(zip(FEATURES, map(float, coef)))
    lanes = np.array([r["config"]["pe_cols"] for r in rows], float)
    extra = np.array([r["measured"]["dsp"] for r in rows], float) - lanes
    mult = x[:, FEATURES.index("mult")]
    out["dsp"] = {"lanes": 1.0,
                  "mult": float(extra[mult > 0].mean()) if (mult > 0).any() else 0.0,
                  "one": float(extra[mult == 0].mean()) if (mult == 0).any() else 0.0}
    return out


def load_fit(family: str) -> dict:

    try:
        return json.loads(FIT_FILE.read_text())["coefficients"][family]
    except KeyError:
        raise ConfigError(f"no resource model fitted for {family} yet: run "
                          f"'benchmarks/fpga.py --board BOARD --refit'") from None


def estimate_resources(cfg: AccelConfig, board_name: str) -> dict[str, int]:
    """LUTs, FFs, DSPs, block RAMs and SPRAMs of the accelerator on a board; no tools run."""
    b = board(board_name)
    c = load_fit(b.family)
    f = features(cfg)
    est = {res: max(0, round(sum(c[res][k] * f[k] for k in FEATURES)))
           for res in ("lut", "ff", "lc") if res in c}
    d = c["dsp"]
    est["dsp"] = round(cfg.pe_cols * d["lanes"] + d["mult"] * f["mult"]
                       + d["one"] * (1 - f["mult"]))
    est.update(memory_blocks(cfg, b))
    return est


def fit_config(g, board_name: str, pe_rows: int | None = None, pe_cols: int | None = None
               ) -> AccelConfig:
    """The widest accelerator for ``g`` (the given lanes, else 16/8/4) whose estimate fits
    the board, built as its FPGA family; FitError naming the most overflowed resource of the
    smallest otherwise."""


    b = board(board_name)
    worst = None
    for lanes in [pe_cols] if pe_cols else sorted(LANE_CHOICES, reverse=True):
        cfg = derive_config(g, pe_rows, lanes, b.family)
        est = estimate_resources(cfg, board_name)
        have = {**b.resources, "lc": b.resources["lut"]}
        over = {r: est[r] / have[r] for r in est if have.get(r) and est[r] > have[r]}
        if not over:
            return cfg
        res = max(over, key=over.get)
        worst = (res, est[res], lanes)
    res, need, lanes = worst
    unit = "logic cells (LUT4 + FF, estimated)" if res == "lc" else None
    raise FitError(fit_message(b, "lut" if res == "lc" else res, need, unit)
                   + f" at {lanes} lanes, the smallest tried")
