"""Analytical cost model for the search: cycles, events and energy of a QGraph on an
AccelConfig from the Program's descriptors alone (no data, milliseconds). It predicts the
counters of the planned datapath; once the RTL exists its error against measured cycles is
reported by the simulation."""

from __future__ import annotations

from hannah_hw.ir.qgraph import QGraph

from .config import AccelConfig, derive_config
from .energy import energy_report
from .program import compile_program
from .schedule import layer_events


def predict_cost(g: QGraph, cfg: AccelConfig | None = None, clock_hz: float = 50e6,
                 rate_hz: float = 1.0) -> dict:
    cfg = cfg or derive_config(g)
    prog = compile_program(g, cfg)
    layers = [{"name": n, **layer_events(d, cfg)}
              for n, d in zip(prog.names, prog.descriptors)]
    cycles = sum(ev["cycles"] for ev in layers)
    macs = sum(ev["macs"] for ev in layers)
    energy = energy_report(layers, cfg, clock_hz, rate_hz)
    for ev in layers:
        ev["utilization"] = ev["macs"] / (cfg.mac_units * ev["cycles"]) if ev["cycles"] else 0.0
    return {"cycles": cycles, "macs": macs, "mac_units": cfg.mac_units,
            "utilization": macs / (cfg.mac_units * cycles) if cycles else 0.0,
            "energy_pj": energy["energy_pj"], "pj_per_mac": energy["pj_per_mac"],
            "latency_s": cycles / clock_hz, "layers": layers}
