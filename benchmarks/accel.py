"""The generated accelerator on the shipped networks over a few lane counts: measured cycles
(RTL counters, Verilator), utilisation overall and on the convolutions, energy per inference
and per MAC, the ratio to the energy floor, the cost model's errors, and the simulator's
speed (C++ harness, cycles per wall second, including bus loading).

Writes benchmarks/results/accel.json. The KWS network is the trained demo network when
``hannah-hw train nas/kws_tcresnet8.json --dataset kws --out runs/demo/kws-tcresnet8`` has
produced it, else the shipped architecture
calibrated on random inputs (cycles and counts do not depend on the weights' values).
"""

from __future__ import annotations

import datetime
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hannah_hw.ir.interpreter import quantize_input  # noqa: E402
from hannah_hw.ir.qgraph import QGraph  # noqa: E402
from hannah_hw.nas.archspec import ArchSpec  # noqa: E402
from hannah_hw.nas.functional_operators.executor import BasicExecutor  # noqa: E402
from hannah_hw.qat.lower import lower  # noqa: E402
from hannah_hw.qat.qnet import build_qnet  # noqa: E402
from hannah_hw.simulate.accel_sim import build_harness  # noqa: E402
from hannah_hw.simulate.verilator import BUILD  # noqa: E402
from hannah_hw.stages.generate import generate  # noqa: E402
from hannah_hw.stages.simulate import simulate  # noqa: E402

DEMO = ROOT / "runs" / "demo" / "kws-tcresnet8"
LANES = (4, 8, 16)


def shipped(arch: str, n: int) -> tuple[QGraph, np.ndarray, str]:
    torch.manual_seed(0)
    graph = ArchSpec.load(ROOT / "nas" / arch).build()
    ex = BasicExecutor(graph).eval()
    x = torch.randn(max(n, 8), *ex.inputs[0].current_shape()[1:])
    q = build_qnet(graph, ex, 8, 8, pow2=True)
    q.calibrate([x])
    g = lower(q, x, arch)
    return g, quantize_input(g, x.numpy()[:n]), "calibrated on random inputs"


def networks() -> dict:
    nets = {}
    if (DEMO / "qgraph.json").is_file():
        g = QGraph.load(DEMO / "qgraph.json")
        x = np.load(DEMO / "test_inputs.npy")[:16]
        nets["kws_tcresnet8"] = (g, quantize_input(g, x), "trained (make demo), test inputs")
    else:
        nets["kws_tcresnet8"] = shipped("kws_tcresnet8.json", 16)
    nets["fashion_resnet"] = shipped("fashion_resnet.json", 2)
    return nets


def main() -> None:
    results = []
    for name, (g, x, source) in networks().items():
        for lanes in LANES:
            hw = BUILD / f"bench-{name}-{lanes}"
            t0 = time.perf_counter()
            summary = generate(g, hw, pe_cols=lanes)
            build_harness(hw / "accel.v")
            build_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            _, rep = simulate(hw, x)
            wall = time.perf_counter() - t0
            conv = [ly for ly in rep.layers if ly.op == "conv"]
            conv_u = sum(ly.macs for ly in conv) / (lanes * sum(ly.cycles for ly in conv))
            row = {"network": name, "source": source, "lanes": lanes, "samples": len(x),
                   "macs": rep.macs, "cycles": rep.cycles,
                   "utilization": rep.utilization, "conv_utilization": conv_u,
                   "energy_uj": rep.energy_uj, "pj_per_mac": rep.pj_per_mac,
                   "ratio_to_floor": rep.ratio_to_floor,
                   "predicted_cycles": rep.predicted_cycles,
                   "cycle_error": rep.cycle_error, "energy_error": rep.energy_error,
                   "bit_exact": rep.reference_match,
                   "sim_cycles_per_s": rep.sim_cycles_per_s,
                   "sim_wall_s_with_process": wall, "generate_and_build_s": build_s,
                   "memory_kbit": sum(summary["memory_bits"].values()) / 1024,
                   "latency_ms_at_50mhz": rep.latency_s * 1e3}
            results.append(row)
            print(f"{name:15s} lanes {lanes:2d}: {rep.cycles:>9,} cycles "
                  f"U {rep.utilization:.3f}"
                  f" (conv {conv_u:.3f}) {rep.energy_uj:.2f} uJ {rep.pj_per_mac:.2f} pJ/MAC "
                  f"floor x{rep.ratio_to_floor:.1f} err {rep.cycle_error:+.2%} "
                  f"{rep.sim_cycles_per_s / 1e6:.2f} Mcyc/s exact={rep.reference_match}",
                  flush=True)
    out = ROOT / "benchmarks" / "results" / "accel.json"
    out.write_text(json.dumps({
        "benchmark": "accel", "date": datetime.date.today().isoformat(),
        "machine": {"python": platform.python_version(), "cpu": platform.processor(),
                    "cores": 2},
        "targets": {"conv_utilization_kws": ">= 0.8", "cycle_error": "<= 2 %",
                    "sim_cycles_per_s": ">= 1e6"},
        "results": results}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
