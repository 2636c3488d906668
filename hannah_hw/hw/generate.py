"""The generate and simulate stages. A hardware directory (HWDIR) holds everything a run
needs: the QGraph, the AccelConfig, the Program, the Verilog and a summary whose file
hashes tell a complete, unchanged HWDIR from a corrupt one."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from hannah_hw.accel.config import AccelConfig, ConfigError, derive_config
from hannah_hw.accel.cost import predict_cost
from hannah_hw.accel.energy import energy_report, leakage_uw, load_table
from hannah_hw.accel.hwdesc import (
    COUNTERS,
    HW_COUNTERS,
    NF,
    HwLayout,
    check_fits,
    hw_descriptor,
)
from hannah_hw.accel.program import OPCODES, Program, compile_program
from hannah_hw.accel.schedule import layer_events
from hannah_hw.ir.interpreter import run
from hannah_hw.ir.qgraph import QGraph
from hannah_hw.util.jsonfile import Record, read_object
from hannah_hw.util.names import printable

FILES = ("qgraph.json", "qgraph.npz", "config.json", "program.json", "program.npz", "accel.v")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def memory_bits(cfg: AccelConfig) -> dict[str, int]:
    lay = HwLayout(cfg)
    return {"act": cfg.act_depth * lay.act_w,
            "weight": cfg.weight_depth * cfg.pe_cols * cfg.weight_bits,
            "param": cfg.param_depth * cfg.pe_cols * lay.lane_param_w,
            "desc": cfg.desc_depth * 32 * NF,
            "stats": cfg.desc_depth * 32 * len(HW_COUNTERS)}


def generate(g: QGraph, out: Path, pe_rows: int | None = None, pe_cols: int | None = None,
             fit: str | None = None) -> dict:
    """QGraph -> HWDIR: config, Program, Verilog and summary (with the predicted cost).
    ``fit``: a board (fpga.boards) the configuration must fit, by the resource model; the
    Verilog and the cost model are then as that board's FPGA family builds it (on iCE40:
    SPRAM weights, word-wide rows), so simulation runs what the bitstream holds."""
    from .accel import Accelerator
    from .emit import emit_verilog

    bad = sorted({n.op for n in g.nodes} - set(OPCODES))
    if bad:
        raise ConfigError(f"the accelerator generator does not support op(s) {', '.join(bad)} "
                          f"(node {printable(next(n.name for n in g.nodes if n.op in bad))})")
    family = None
    if fit:
        from hannah_hw.fpga.boards import board
        from hannah_hw.fpga.resources import fit_config

        cfg, family = fit_config(g, fit, pe_rows, pe_cols), board(fit).family
    else:
        cfg = derive_config(g, pe_rows, pe_cols)
    prog = compile_program(g, cfg)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    g.save(out / "qgraph.json")
    cfg.save(out / "config.json")
    prog.save(out / "program.json")
    emit_verilog(Accelerator(cfg), "accel", out / "accel.v", family)
    cost = predict_cost(g, cfg, family=family)
    summary = {"config": json.loads(cfg.to_json()), "family": family, "mac_units": cfg.mac_units,
               "memory_bits": memory_bits(cfg), "bus_address_bits": HwLayout(cfg).bus_addr_w,
               "layers": len(prog.descriptors), "macs": cost["macs"],
               "predicted_cycles": cost["cycles"], "predicted_utilization": cost["utilization"],
               "predicted_energy_pj": cost["energy_pj"],
               "files": {f: _digest(out / f) for f in FILES}}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _summary(hwdir: Path) -> Record:
    """summary.json: the file hashes (an object of strings) and the FPGA family (of a
    board in fpga.boards, as generate --fit writes it, or null)."""
    from hannah_hw.fpga.boards import BOARDS

    if not (hwdir / "summary.json").is_file():
        raise ConfigError(f"{hwdir}: not a generated hardware directory (no summary.json); "
                          "run 'hannah-hw generate' first")
    s = read_object(hwdir / "summary.json", ConfigError, "a hardware directory's summary")
    files = s.obj("files")
    for f in FILES:
        files.get(f, str, None)
    s.choice("family", (None, *sorted({b.family for b in BOARDS.values()})), None)
    return s


def load_hwdir(hwdir: Path) -> tuple[QGraph, AccelConfig, Program]:
    """A generated HWDIR, checked against its summary's hashes, its Program against its
    configuration (each descriptor, parameter and weight fits the hardware's fields)."""
    hwdir = Path(hwdir)
    summary = _summary(hwdir)
    files = summary.data["files"]
    for f in FILES:
        p = hwdir / f
        if not p.is_file():
            raise ConfigError(f"{hwdir}: {f} is missing; rerun 'hannah-hw generate'")
        if _digest(p) != files.get(f):
            raise ConfigError(f"{hwdir}: {f} differs from what generate wrote; rerun "
                              "'hannah-hw generate'")
    g, cfg = QGraph.load(hwdir / "qgraph.json"), AccelConfig.load(hwdir / "config.json")
    saved = json.loads(cfg.to_json())
    if summary.data.get("config", saved) != saved:
        raise ConfigError(f"{hwdir}: config.json and summary.json's config disagree; rerun "
                          "'hannah-hw generate'")
    prog = Program.load(hwdir / "program.json")
    check_fits(prog, cfg, hwdir / "program.json")
    return g, cfg, prog


def hwdir_family(hwdir: Path) -> str | None:
    """The FPGA family a HWDIR's Verilog was generated for (None: generic memories)."""
    return _summary(Path(hwdir)).data.get("family")


def min_cycles(prog: Program, cfg: AccelConfig) -> int:
    """Cycles no inference of ``prog`` can undercut, whatever its data: per layer, the
    descriptor's load (NF + 1 cycles) and one cycle per step of its loop nest (lane block x
    reduction x output position; accel.schedule's timing, which issues at most one step per
    cycle)."""
    total = 0
    for d in prog.descriptors:
        h = hw_descriptor(d, cfg)
        total += NF + 1 + h["groups"] * h["blocks"] * h["cin"] * h["k_h"] * h["k_w"] * \
            h["out_h"] * h["out_w"]
    return total


def measured_report(g: QGraph, cfg: AccelConfig, prog: Program, stats: list[dict],
                    clock_hz: float = 50e6, rate_hz: float = 1.0, table: dict | None = None,
                    family: str | None = None) -> dict:
    """Report of one inference from the RTL's counters, beside the cost model's prediction."""
    table = table or load_table()
    model = [layer_events(d, cfg, family) for d in prog.descriptors]
    layers = [{**m, **{k: s[k] for k in COUNTERS}, "name": s["name"]}
              for s, m in zip(stats, model)]
    measured = energy_report(layers, cfg, clock_hz, rate_hz, table)
    predicted = energy_report(model, cfg, clock_hz, rate_hz, table)
    cycles, macs = sum(ly["cycles"] for ly in layers), sum(ly["macs"] for ly in layers)
    pred_cycles = sum(m["cycles"] for m in model)
    leak = leakage_uw(cfg, table) * 1e-6 / clock_hz * 1e12  # pJ per cycle
    out_layers = []
    for ly, m, e, pe in zip(layers, model, measured["layers"], predicted["layers"]):
        out_layers.append({
            "name": ly["name"], "op": ly["op"], **{k: ly[k] for k in COUNTERS},
            "mac_units": cfg.mac_units,
            "utilization": ly["macs"] / (cfg.mac_units * ly["cycles"]),
            "energy_pj": e["dynamic_pj"] + leak * ly["cycles"], "predicted_cycles": m["cycles"],
            "predicted_energy_pj": pe["dynamic_pj"] + leak * m["cycles"]})
    return {
        "cycles": cycles, "macs": macs, "mac_units": cfg.mac_units,
        "utilization": macs / (cfg.mac_units * cycles), "energy_pj": measured["energy_pj"],
        "energy_uj": measured["energy_uj"], "pj_per_mac": measured["pj_per_mac"],
        "average_power_uw": measured["average_power_uw"],
        "ratio_to_floor": measured["ratio_to_floor"], "latency_s": cycles / clock_hz,
        "predicted_cycles": pred_cycles, "predicted_energy_pj": predicted["energy_pj"],
        "cycle_error": (pred_cycles - cycles) / cycles,
        "energy_error": (predicted["energy_pj"] - measured["energy_pj"]) / measured["energy_pj"],
        "clock_hz": clock_hz, "rate_hz": rate_hz, "energy_table": table.get("source", ""),
        "layers": out_layers}


def simulate(hwdir: Path, x: np.ndarray, on_sample: Callable[[], None] | None = None,
             clock_hz: float = 50e6, rate_hz: float = 1.0, table: dict | None = None,
             max_cycles: int = 1 << 30) -> tuple[np.ndarray, dict]:
    """Integer inputs through the RTL: outputs and the report (measured, predicted, and
    whether the outputs equal the reference interpreter's)."""
    from hannah_hw.simulate.accel_sim import build_harness, simulate_program

    g, cfg, prog = load_hwdir(hwdir)
    exe = build_harness(Path(hwdir) / "accel.v")
    shapes = {k: t.shape for k, t in g.tensors.items()}
    y, stats, total = simulate_program(exe, prog, cfg, x, shapes, max_cycles, on_sample)
    report = measured_report(g, cfg, prog, stats[0], clock_hz, rate_hz, table,
                             hwdir_family(hwdir))
    per_sample = [sum(ly["cycles"] for ly in s) for s in stats]
    ref = run(g, np.asarray(x, np.int64))
    report.update(samples=len(x), cycles_min=min(per_sample), cycles_max=max(per_sample),
                  reference_match=bool(np.array_equal(y, ref)),
                  mismatching_outputs=int((y != ref).sum()),
                  sim_cycles=total["sim_cycles"], sim_seconds=total["sim_seconds"],
                  sim_cycles_per_s=total["sim_cycles"] / max(total["sim_seconds"], 1e-9))
    return y, report
