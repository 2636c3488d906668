"""FPGA builds of shipped and test networks: measured resources and fmax against the
resource model's estimate, and the refit of its coefficients; with --soc RUNDIR, the SoC of a
flow's chosen network on the board for each core (accelerator-only firmware), with its
cycles from the SoC simulated as the board builds it.

    .venv/bin/python benchmarks/fpga.py [--board icebreaker] [--refit] [--soc runs/kws]

Writes benchmarks/results/fpga.json (key BOARD, or BOARD-soc); with --refit also
hannah_hw/fpga/resource_fit.json.
A build that does not fit still gives its synthesis counts (yosys stat) and the logic
cells nextpnr asked for, which is what the model is fitted on."""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from hannah_hw.accel.config import AccelConfig, ConfigError  # noqa: E402
from hannah_hw.accel.cost import predict_cost  # noqa: E402
from hannah_hw.fpga.boards import board  # noqa: E402
from hannah_hw.fpga.build import build_bitstream, cell_counts  # noqa: E402
from hannah_hw.fpga.fit import FitError  # noqa: E402
from hannah_hw.fpga.resources import FIT_FILE, estimate_resources, fit  # noqa: E402
from hannah_hw.stages.generate import generate  # noqa: E402

BUILD = ROOT / "build" / "fpga"


def networks():
    from test_accel_model import lowered
    from test_accel_rtl import _shipped
    from test_qat import every_op_1d

    small, _ = lowered(every_op_1d)
    kws, _ = _shipped("nas/kws_tcresnet8.json")
    return [(name, g, lanes) for name, g in (("every_op_1d", small), ("kws_tcresnet8", kws))
            for lanes in (2, 4, 8)]


def one(name, g, lanes, board_name):
    hw = BUILD / f"{name}-{lanes}-hw"
    generate(g, hw, pe_cols=lanes)
    cfg = AccelConfig.load(hw / "config.json")
    out = BUILD / f"{name}-{lanes}-{board_name}"
    t = time.monotonic()
    row = {"network": name, "lanes": lanes, "board": board_name,
           "config": json.loads(cfg.to_json()),
           "cycles": predict_cost(g, dataclasses.replace(cfg, family=board(board_name).family)
                                  )["cycles"]}
    try:
        rep = build_bitstream(hw, board_name, out, progress=lambda s: print(f"  {s}"))
        row.update(fits=True, measured={k: v["used"] for k, v in rep["resources"].items()},
                   placed=rep["placed"], fmax_mhz=rep["fmax_mhz"],
                   build_seconds=rep["build_seconds"], step_seconds=rep["step_seconds"])
        row["latency_ms"] = row["cycles"] / (min(rep["fmax_mhz"], rep["target_mhz"]) * 1e3)
    except FitError as e:
        stat = json.loads((out / "build" / "stat.json").read_text())
        row.update(fits=False, error=str(e), build_seconds=round(time.monotonic() - t, 1),
                   measured=cell_counts(stat, board(board_name).family))
        tim = out / "build" / "top.tim"
        lc = re.search(r"ICESTORM_LC: +(\d+)/", tim.read_text()) if tim.is_file() else None
        if lc:
            row["placed"] = {"lc": int(lc[1])}
    try:
        row["estimated"] = estimate_resources(cfg, board_name)
    except ConfigError:  # no model fitted for this family yet (--refit makes one)
        pass
    return row


def soc(rundir: Path, cpu: str, board_name: str) -> dict:
    from hannah_hw.flow import _batch
    from hannah_hw.fw.build import build_firmware
    from hannah_hw.fw.emit import emit_firmware
    from hannah_hw.ir.interpreter import run
    from hannah_hw.stages.soc_sim import soc_simulate

    fw = emit_firmware(rundir / "hw", BUILD / f"soc-{cpu}-fw")
    rec = build_firmware(fw, "rv32", "rv32i", False, cpu)  # PicoRV32 at its smallest
    g, x = _batch(rundir, 4)
    y, sim = soc_simulate(fw, x, g.tensors[g.outputs[0]].shape, board=board_name)
    row = {"network": str(rundir), "cpu": cpu, "isa": rec["isa"], "board": board_name,
           "ram_bytes": rec["ram_bytes"], "size": rec["size"],
           "bit_exact": bool(np.array_equal(y, run(g, x))),
           **{k: sim[k] for k in ("cycles", "accel_cycles", "dma_cycles", "driver_cycles",
                                  "driver_share", "init_cycles")}}
    out = BUILD / f"soc-{cpu}-{board_name}"
    try:
        rep = build_bitstream(rundir / "hw", board_name, out, top="soc", fwdir=fw,
                              progress=lambda s: print(f"  {s}"))
        row.update(fits=True, measured={k: v["used"] for k, v in rep["resources"].items()},
                   placed=rep["placed"], fmax_mhz=rep["fmax_mhz"],
                   timing_met=rep["timing_met"], build_seconds=rep["build_seconds"])
        row["ms_per_inference"] = row["cycles"] / (rep["target_mhz"] * 1e3)
    except FitError as e:
        row.update(fits=False, error=str(e))
        tim = out / "build" / "top.tim"
        lc = re.search(r"ICESTORM_LC: +(\d+)/", tim.read_text()) if tim.is_file() else None
        if lc:
            row["placed"] = {"lc": int(lc[1])}
    return row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--board", default="icebreaker")
    ap.add_argument("--refit", action="store_true")
    ap.add_argument("--soc", type=Path, default=None, metavar="RUNDIR",
                    help="the SoC of this flow run's chosen network, for each core")
    a = ap.parse_args()
    res = ROOT / "benchmarks" / "results" / "fpga.json"

    def save(key: str, rows: list[dict]) -> None:  # read late: another run may have written
        old = json.loads(res.read_text()) if res.is_file() else {}
        old[key] = rows
        res.write_text(json.dumps(old, indent=2) + "\n")

    if a.soc:
        rows = []
        for cpu in ("serv", "picorv32"):
            print(f"SoC with {cpu} on {a.board}")
            rows.append(soc(a.soc, cpu, a.board))
            print("  ", {k: rows[-1].get(k) for k in ("fits", "placed", "fmax_mhz", "cycles")})
        save(f"{a.board}-soc", rows)
        return
    rows = []
    for name, g, lanes in networks():
        print(f"{name} at {lanes} lanes on {a.board}")
        rows.append(one(name, g, lanes, a.board))
        print("  ", {k: rows[-1].get(k) for k in ("fits", "measured", "placed", "fmax_mhz")})
    family = board(a.board).family
    if a.refit:
        data = json.loads(FIT_FILE.read_text()) if FIT_FILE.is_file() else {
            "coefficients": {}, "builds": {}}
        data["coefficients"][family] = fit(rows)
        data["builds"][family] = [{k: r.get(k) for k in ("network", "lanes", "config", "measured",
                                                        "placed")}
                                  for r in rows]
        FIT_FILE.write_text(json.dumps(data, indent=2) + "\n")
        for r in rows:
            r["estimated"] = estimate_resources(AccelConfig(**{**r["config"], "units": tuple(
                r["config"]["units"])}), a.board)
        # more builds than coefficients: the residuals are the model's error on its own data
        err = {}
        for kind in ("lut", "ff", "lc"):
            got = [(r["estimated"][kind], (r.get("placed") or {}).get("lc") if kind == "lc"
                    else r["measured"][kind]) for r in rows if kind in r["estimated"]]
            got = [(e, m) for e, m in got if m]
            if got:
                err[kind] = round(max(abs(e - m) / m for e, m in got), 4)
        data.setdefault("max_relative_error", {})[family] = err
        FIT_FILE.write_text(json.dumps(data, indent=2) + "\n")
        print("  the model's largest relative error on these builds:", err)
    save(a.board, rows)


if __name__ == "__main__":
    main()
