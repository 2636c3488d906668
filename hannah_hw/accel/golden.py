"""Behavioural model of the accelerator: executes a Program from its descriptors, packed
weights and flat activation memory alone (never the QGraph), with the numerics of
ir/numerics.py, and counts the events of the planned datapath per layer. The RTL is held to
its outputs and its counts; its outputs are held to the reference interpreter."""

from __future__ import annotations

import numpy as np

from hannah_hw.ir import numerics as nx

from .config import AccelConfig
from .program import OPCODES, Program

OPS = {v: k for k, v in OPCODES.items()}


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


def layer_events(d: dict, cfg: AccelConfig) -> dict:
    """Event counts of one descriptor on the planned datapath: one broadcast activation and
    one weight word per MAC cycle, lanes idle past the channels of a block, one activation
    written per output, outputs leaving ``pe_cols`` per cycle."""
    op = OPS[d["op"]]
    n_in = d["cin"] * d["in_h"] * d["in_w"]
    n_out = d["cout"] * d["out_h"] * d["out_w"]
    window = d["k_h"] * d["k_w"]
    ev = {"op": op, "macs": 0, "mac_cycles": 0, "act_reads": 0, "act_writes": n_out,
          "weight_reads": 0, "param_reads": 0, "weight_words": 0, "inputs": n_in}
    if op in ("conv", "linear"):
        g = d["groups"]
        per_group = d["cout"] // g
        red = d["cin"] // g * window
        pos = d["out_h"] * d["out_w"]
        blocks = g * -(-per_group // cfg.pe_cols)
        ev.update(macs=d["cout"] * red * pos, mac_cycles=blocks * red * pos,
                  act_reads=blocks * red * pos, weight_reads=blocks * red * pos,
                  param_reads=d["cout"], weight_words=blocks * red)
    elif op == "add":
        ev["act_reads"] = 2 * n_in
    elif op in ("avgpool", "global_avgpool", "maxpool"):
        ev["act_reads"] = n_out * window
    else:
        ev["act_reads"] = n_in
    ev["cycles"] = max(ev["mac_cycles"], ev["act_reads"]) + -(-n_out // cfg.pe_cols)
    return ev


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
        word = d["w_addr"]
        params = prog.params[d["p_addr"]:d["p_addr"] + d["cout"]]
        for gi in range(g):
            cols = patches[gi * cin_g:(gi + 1) * cin_g].reshape(red, pos)
            for b in range(0, per_group, lanes):
                w = prog.weights[word:word + red]  # red, lanes
                word += red
                n = min(lanes, per_group - b)
                oc = gi * per_group + b
                acc = w[:, :n].T.astype(np.float64) @ cols.astype(np.float64)
                acc = np.rint(acc).astype(np.int64) + \
                    params[oc:oc + n, 0:1]
                out[oc:oc + n] = _round(d, acc, params[oc:oc + n, 1:2], params[oc:oc + n, 2:3])
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
