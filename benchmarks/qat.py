"""QAT benchmark: float, int8, w4a8 and w4a4 accuracy of the shipped KWS and Fashion-MNIST
networks (each quantised model's accuracy is the QGraph interpreter's), training time per
epoch, interpreter time per sample, and the bit-exactness check. Writes
benchmarks/results/qat.json.

Usage: python benchmarks/qat.py [--epochs E] [--qat-epochs Q] [--kws-clips N] [--only kws]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hannah_hw.ir.interpreter import quantize_input, run  # noqa: E402
from hannah_hw.nas.archspec import ArchSpec  # noqa: E402
from hannah_hw.qat.pipeline import (  # noqa: E402
    TrainConfig,
    build_for,
    load_data,
    train_float,
    train_quant,
)

NETWORKS = {"kws": ROOT / "nas" / "kws_tcresnet8.json",
            "fashion": ROOT / "nas" / "fashion_resnet.json"}
BITS = [(8, 8), (4, 8), (4, 4)]
TARGETS = {"w8a8": 0.5, "w4a8": 1.0, "w4a4": 3.0}  # allowed drop in points vs float


def bench(name: str, epochs: int, qat_epochs: int, kws_clips: int) -> dict:
    cfg = TrainConfig(name, epochs, qat_epochs, kws_clips=kws_clips)
    data = load_data(cfg)
    spec, graph = build_for(ArchSpec.load(NETWORKS[name]), data)
    ex, f = train_float(graph, data, cfg)
    out = {"train_samples": len(data.x_train), "test_samples": len(data.x_test),
           "float_accuracy": f["float_accuracy"], "float_epochs": len(f["history"]),
           "float_seconds_per_epoch": f["seconds_per_epoch"], "quantized": {}}
    for wbits, abits in BITS:
        qcfg = TrainConfig(name, epochs, qat_epochs, wbits, abits, kws_clips=kws_clips)
        _, g, q = train_quant(graph, ex, data, qcfg, name=name)
        xi = quantize_input(g, data.x_test.numpy())
        t0 = time.perf_counter()
        run(g, xi)
        per_sample = (time.perf_counter() - t0) / len(xi)
        key = f"w{wbits}a{abits}"
        drop = 100 * (f["float_accuracy"] - q["quant_accuracy"])
        out["quantized"][key] = {
            "accuracy": q["quant_accuracy"], "drop_points": drop,
            "target_drop_points": TARGETS[key], "meets_target": drop <= TARGETS[key],
            "qat_seconds_per_epoch": q["qat_seconds_per_epoch"],
            "interpreter_ms_per_sample": 1000 * per_sample, "macs": q["macs"],
            "bit_exact": q["bit_exact"]}
        print(name, key, json.dumps(out["quantized"][key]), flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--qat-epochs", type=int, default=6)
    ap.add_argument("--kws-clips", type=int, default=20000)
    ap.add_argument("--only", choices=list(NETWORKS))
    args = ap.parse_args()
    torch.set_num_threads(2)
    out_file = ROOT / "benchmarks" / "results" / "qat.json"
    results = json.loads(out_file.read_text())["results"] if out_file.is_file() else {}
    for name in [args.only] if args.only else NETWORKS:
        results[name] = bench(name, args.epochs, args.qat_epochs, args.kws_clips)
        results[name]["settings"] = {"epochs": args.epochs, "qat_epochs": args.qat_epochs,
                                     "kws_clips": args.kws_clips}
        out_file.parent.mkdir(parents=True, exist_ok=True)
        out_file.write_text(json.dumps({
            "benchmark": "qat", "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "machine": {"python": platform.python_version(), "torch": torch.__version__,
                        "threads": torch.get_num_threads()},
            "results": results}, indent=2) + "\n")
    print(f"wrote {out_file}")


if __name__ == "__main__":
    main()
