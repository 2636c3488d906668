"""Behavioural model of the accelerator: executes a Program from its descriptors, packed
weights and flat activation memory alone (never the QGraph), with the numerics of
ir/numerics.py, and counts the events of the planned datapath per layer. The RTL is held to
its outputs (and to the counts of accel/schedule.py); its outputs are held to the reference
interpreter."""

from __future__ import annotations

import numpy as np

from hannah_hw.ir import numerics as nx

from .config import AccelConfig
from .program import OPS, Program
from .schedule import layer_events


def _round(d, acc, m, sh):
    fn = nx.round_shift_even if d["half_even"] else nx.round_shift
    return fn(acc, m, sh)


def _patches(x, d, pad_value):
    """(C, kh*kw, out_h*out_w) gathered input windows of a (C, H, W) tensor."""
    xp = np.pad(x, ((0, 0), (d["pad_h"], d["pad_h"]), (d["pad_w"], d["pad_w"])),
                constant_values=pad_value)
    ys = np.arange(d["out_h"]) * d["stride_h"]
    xs = np.arange(d["out_w"]) * d["stride_w"]
    ky = np.arange(d["k_h"]) * d["dil_h"]
    kx = np.arange(d["k_w"]) * d["dil_w"]
    rows = (ys[None, :, None, None] + ky[:, None, None, None])  # kh, oh, 1, 1
    cols = (xs[None, None, None, :] + kx[None, None, :, None])  # 1, 1, kw, ow
    win = xp[:, rows, cols]  # C, kh, oh, kw, ow
    c = x.shape[0]
    return win.transpose(0, 1, 3, 2, 4).reshape(c, d["k_h"] * d["k_w"], -1)


def run_layer(d: dict, mem: np.ndarray, prog: Program, cfg: AccelConfig) -> dict:
    """Execute one descriptor on ``mem`` in place; return its event counts."""
    op = OPS[d["op"]]
    lanes = cfg.pe_cols
    n_in = d["cin"] * d["in_h"] * d["in_w"]
    n_out = d["cout"] * d["out_h"] * d["out_w"]
    x = mem[d["in_addr"]:d["in_addr"] + n_in].reshape(d["cin"], d["in_h"], d["in_w"])
    macs = 0
    if op in ("conv", "linear"):
        g = d["groups"]
        cin_g, per_group = d["cin"] // g, d["cout"] // g
        red = cin_g * d["k_h"] * d["k_w"]
        pos = d["out_h"] * d["out_w"]
        patches = _patches(x, d, d["zp_in"]) - d["zp_in"]  # C, k, P
        out = np.empty((d["cout"], pos), np.int64)
        word, block = d["w_addr"], d["p_addr"]
        for gi in range(g):
            cols = patches[gi * cin_g:(gi + 1) * cin_g].reshape(red, pos)
            for b in range(0, per_group, lanes):
                w = prog.weights[word:word + red]  # red, lanes
                word += red
                n = min(lanes, per_group - b)
                oc = gi * per_group + b
                acc = w[:, :n].T.astype(np.float64) @ cols.astype(np.float64)
                p = prog.params[block, :n]
                block += 1
                acc = np.rint(acc).astype(np.int64) + p[:, 0:1]
                out[oc:oc + n] = _round(d, acc, p[:, 1:2], p[:, 2:3])
                macs += n * red * pos
        y = np.clip(out + d["zp_out"], d["out_lo"], d["out_hi"])
    elif op == "add":
        z = mem[d["in2_addr"]:d["in2_addr"] + n_in]
        acc = (x.reshape(-1) - d["zp_in"]) * d["m"] + (z - d["zp_in2"]) * d["m_b"]
        y = np.clip(_round(d, acc, 1, d["sh"]) + d["zp_out"], d["out_lo"], d["out_hi"])
    elif op in ("avgpool", "global_avgpool"):
        s = (_patches(x, d, d["zp_in"]) - d["zp_in"]).sum(axis=1)
        y = np.clip(_round(d, s, d["m"], d["sh"]) + d["zp_out"], d["out_lo"], d["out_hi"])
    elif op == "maxpool":
        y = _patches(x, d, d["out_lo"]).max(axis=1)
    else:  # relu
        y = np.maximum(x.reshape(-1), d["zp_in"])
    mem[d["out_addr"]:d["out_addr"] + n_out] = np.asarray(y).reshape(-1)
    ev = layer_events(d, cfg)
    assert ev["macs"] == macs  # the count model and the execution agree
    return ev


def run_program(prog: Program, cfg: AccelConfig, x: np.ndarray, shapes: dict[str, tuple]
                ) -> tuple[np.ndarray, list[list[dict]]]:
    """Integer outputs for a batch of integer inputs, and per-sample per-layer events."""
    out_shape = shapes[prog.output]
    outs, events = [], []
    for sample in np.asarray(x, np.int64):
        mem = np.zeros(prog.act_depth, np.int64)
        a = prog.act_addr[prog.input]
        mem[a:a + sample.size] = sample.reshape(-1)
        events.append([run_layer(d, mem, prog, cfg) for d in prog.descriptors])
        b = prog.act_addr[prog.output]
        outs.append(mem[b:b + int(np.prod(out_shape))].reshape(out_shape))
    return np.stack(outs), events
