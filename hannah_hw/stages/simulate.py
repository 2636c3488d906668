"""The simulate stage: integer inputs through a HWDIR's RTL under Verilator, reported
beside the cost model's prediction and checked against the reference interpreter. A stage
(above simulate and hw) because it ties the HWDIR, the simulator and the energy model."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from hannah_hw.accel.config import AccelConfig
from hannah_hw.accel.energy import energy_report, leakage_uw, load_table
from hannah_hw.accel.hwdesc import COUNTERS
from hannah_hw.accel.program import Program
from hannah_hw.accel.schedule import layer_events
from hannah_hw.hw.hwdir import load_hwdir
from hannah_hw.ir.interpreter import run
from hannah_hw.simulate.accel_sim import build_harness, simulate_program
from hannah_hw.simulate.report import LayerReport, SimReport


def min_cycles(prog: Program, cfg: AccelConfig) -> int:
    """Cycles every inference of ``prog`` takes, whatever its data: the closed-form schedule
    (accel.schedule), which the tests hold equal to the RTL's counters."""
    return sum(layer_events(d, cfg)["cycles"] for d in prog.descriptors)


def measured_report(cfg: AccelConfig, prog: Program, stats: list[list[dict]], y: np.ndarray,
                    ref: np.ndarray, total: dict, clock_hz: float = 50e6, rate_hz: float = 1.0,
                    table: dict | None = None) -> SimReport:
    """Report of a batch from the RTL's counters (``stats``: each inference's layers, the
    first one reported in full), beside the cost model's prediction; its outputs ``y``
    against the interpreter's ``ref``; ``total``: the simulator's cycles and seconds."""
    table = table or load_table()
    model = [layer_events(d, cfg) for d in prog.descriptors]
    layers = [{**m, **{k: s[k] for k in COUNTERS}, "name": s["name"]}
              for s, m in zip(stats[0], model)]
    measured = energy_report(layers, cfg, clock_hz, rate_hz, table)
    predicted = energy_report(model, cfg, clock_hz, rate_hz, table)
    cycles, macs = sum(ly["cycles"] for ly in layers), sum(ly["macs"] for ly in layers)
    pred_cycles = sum(m["cycles"] for m in model)
    leak = leakage_uw(cfg, table) * 1e-6 / clock_hz * 1e12  # pJ per cycle
    out_layers = tuple(LayerReport(
        name=ly["name"], op=ly["op"], **{k: ly[k] for k in COUNTERS},
        mac_units=cfg.mac_units, utilization=ly["macs"] / (cfg.mac_units * ly["cycles"]),
        energy_pj=e["dynamic_pj"] + leak * ly["cycles"], predicted_cycles=m["cycles"],
        predicted_energy_pj=pe["dynamic_pj"] + leak * m["cycles"])
        for ly, m, e, pe in zip(layers, model, measured["layers"], predicted["layers"]))
    per_sample = [sum(ly["cycles"] for ly in s) for s in stats]
    return SimReport(
        cycles=cycles, macs=macs, mac_units=cfg.mac_units,
        utilization=macs / (cfg.mac_units * cycles), energy_pj=measured["energy_pj"],
        energy_uj=measured["energy_uj"], pj_per_mac=measured["pj_per_mac"],
        average_power_uw=measured["average_power_uw"],
        ratio_to_floor=measured["ratio_to_floor"], latency_s=cycles / clock_hz,
        predicted_cycles=pred_cycles, predicted_energy_pj=predicted["energy_pj"],
        cycle_error=(pred_cycles - cycles) / cycles,
        energy_error=(predicted["energy_pj"] - measured["energy_pj"]) / measured["energy_pj"],
        clock_hz=clock_hz, rate_hz=rate_hz, energy_table=table.get("source", ""),
        layers=out_layers, samples=len(stats), cycles_min=min(per_sample),
        cycles_max=max(per_sample), reference_match=bool(np.array_equal(y, ref)),
        mismatching_outputs=int((y != ref).sum()), sim_cycles=total["sim_cycles"],
        sim_seconds=total["sim_seconds"],
        sim_cycles_per_s=total["sim_cycles"] / max(total["sim_seconds"], 1e-9))


def simulate(hwdir: Path, x: np.ndarray, on_sample: Callable[[], None] | None = None,
             clock_hz: float = 50e6, rate_hz: float = 1.0, table: dict | None = None,
             max_cycles: int = 1 << 30) -> tuple[np.ndarray, SimReport]:
    """Integer inputs through the RTL: outputs and the report (measured, predicted, and
    whether the outputs equal the reference interpreter's)."""
    g, cfg, prog = load_hwdir(hwdir)
    exe = build_harness(Path(hwdir) / "accel.v")
    shapes = {k: t.shape for k, t in g.tensors.items()}
    y, stats, total = simulate_program(exe, prog, cfg, x, shapes, max_cycles, on_sample)
    ref = run(g, np.asarray(x, np.int64))
    return y, measured_report(cfg, prog, stats, y, ref, total, clock_hz, rate_hz, table)
