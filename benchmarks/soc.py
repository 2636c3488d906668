"""The KWS network's emitted firmware on the simulated SoC (PicoRV32 + accelerator,
Verilator): end-to-end cycles per inference with the accelerator (over a few lane counts)
and with the same firmware's reference kernels on the core (``--no-accel``), the speed-up,
the driver's share of the end-to-end cycles, the firmware's size and the simulator's speed.

Writes benchmarks/results/soc.json. The network is the trained demo network when ``make
demo`` has produced it, else the shipped architecture calibrated on random inputs.
"""

from __future__ import annotations

import datetime
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from accel import networks  # noqa: E402

from hannah_hw.fw.build import build_firmware  # noqa: E402
from hannah_hw.fw.emit import emit_firmware  # noqa: E402
from hannah_hw.ir.interpreter import run  # noqa: E402
from hannah_hw.stages.generate import generate  # noqa: E402
from hannah_hw.stages.soc_sim import soc_simulate  # noqa: E402

LANES = (4, 16)
SAMPLES = 8


def main() -> None:
    g, x, source = networks()["kws_tcresnet8"]
    x = x[:SAMPLES]
    ref = run(g, x)
    shape = g.tensors[g.outputs[0]].shape
    results, reference = [], None
    with tempfile.TemporaryDirectory() as tmp:
        for lanes in LANES:
            hw, fw = Path(tmp) / f"hw{lanes}", Path(tmp) / f"fw{lanes}"
            generate(g, hw, pe_cols=lanes)
            emit_firmware(hw, fw)
            rec = build_firmware(fw, "rv32")
            t0 = time.monotonic()
            y, rep = soc_simulate(fw, x, shape)
            wall = time.monotonic() - t0
            if reference is None:  # the same firmware, on the core alone: one inference
                yr, reference = soc_simulate(fw, x[:1], shape, accel=False)
                reference["bit_exact"] = bool((yr == ref[:1]).all())
                print(f"reference kernels: {reference['cycles']:,} cycles per inference",
                      flush=True)
            row = {"lanes": lanes, "samples": len(x), "bit_exact": bool((y == ref).all()),
                   **{k: rep[k] for k in ("cycles", "accel_cycles", "dma_cycles",
                                          "driver_cycles", "driver_share", "init_cycles",
                                          "sim_cycles_per_s", "ram_bytes")},
                   "speedup": reference["cycles"] / rep["cycles"],
                   "firmware_size": rec["size"], "wall_s_with_build": wall,
                   "latency_ms_at_24mhz": rep["cycles"] / 24e3}
            results.append(row)
            print(f"{lanes:2d} lanes: {row['cycles']:,} cycles end to end, driver "
                  f"{100 * row['driver_share']:.2f} %, speed-up {row['speedup']:.0f}x, "
                  f"bit-exact {row['bit_exact']}", flush=True)
    reference.pop("console")
    out = {"benchmark": "soc", "date": datetime.date.today().isoformat(),
           "machine": {"python": platform.python_version(), "cores": 2},
           "network": "kws_tcresnet8", "source": source, "cpu": "PicoRV32 (rv32im, fast mul)",
           "targets": {"speedup": ">= 100", "driver_share": "< 0.05"},
           "reference_kernels": {k: reference[k] for k in ("cycles", "bit_exact",
                                                           "sim_cycles_per_s")},
           "results": results}
    path = ROOT / "benchmarks" / "results" / "soc.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
