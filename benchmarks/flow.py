"""The end-to-end flow on the shipped KWS experiment (nas/flow_kws.yaml, as `make demo` runs
it): wall time per stage, candidates evaluated per hour, and the cost model's error on the
front confirmed by RTL simulation. Reuses RUNDIR (default runs/demo/kws): stages already
done keep the times they were measured with.

Writes benchmarks/results/flow.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hannah_hw.flow import run_flow  # noqa: E402
from hannah_hw.flow_config import load_flow_config  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=str(ROOT / "nas" / "flow_kws.yaml"))
    ap.add_argument("--out", default=str(ROOT / "runs" / "demo" / "kws"))
    args = ap.parse_args()
    t0 = time.perf_counter()
    rec = run_flow(load_flow_config(Path(args.config)), Path(args.out))
    st = rec["stages"]
    search, confirm = st["search"]["result"], st["confirm"]["result"]
    sim = st["simulate"]["result"]
    result = {
        "benchmark": "flow", "date": datetime.date.today().isoformat(),
        "machine": {"python": platform.python_version(), "cores": os.cpu_count()},
        "config": Path(args.config).name, "rundir": args.out,
        "wall_s_this_run": time.perf_counter() - t0,
        "stage_seconds": {k: v["seconds"] for k, v in st.items()},
        "total_stage_seconds": sum(v["seconds"] for v in st.values()),
        "candidates": search["candidates"],
        "candidates_per_hour": search["candidates"] / search["seconds"] * 3600,
        "confirmed_front": [
            {k: e[k] for k in ("number", "measured_cycles", "predicted_cycles", "cycle_error",
                               "measured_energy_uj", "predicted_energy_uj", "energy_error",
                               "bit_exact")} for e in confirm["candidates"]],
        "cost_model_max_cycle_error": confirm["max_cycle_error"],
        "cost_model_max_energy_error": confirm["max_energy_error"],
        "chosen": {**st["train"]["result"], "cycles": sim["cycles"],
                   "utilization": sim["utilization"], "energy_uj": sim["energy_uj"],
                   "latency_ms": sim["latency_s"] * 1e3},
        "soc": st["soc"]["result"],
        "bitstream": {top: {k: b.get(k) for k in ("board", "resources", "fmax_mhz",
                                                  "target_mhz", "build_seconds")}
                      for top, b in st["bitstream"]["result"].items()},
    }
    out = ROOT / "benchmarks" / "results" / "flow.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
