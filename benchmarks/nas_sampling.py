"""NAS sampling throughput: architectures sampled (valid, constrained) and built per second.

Writes benchmarks/results/nas_sampling.json. Compare runs by the ratios inside one file;
absolute rates depend on the machine.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hannah_hw.nas.archspec import build_space  # noqa: E402
from hannah_hw.nas.cost import cost_metrics  # noqa: E402
from hannah_hw.nas.functional_operators.executor import BasicExecutor  # noqa: E402

CASES = {
    "kws_tcresnet": (f"{ROOT}/nas/kws_tcresnet.py:kws_tcresnet", {}),
    "image_cnn": (f"{ROOT}/nas/image_cnn.py:image_cnn", {}),
    "image_cnn_max_macs_150k": (f"{ROOT}/nas/image_cnn.py:image_cnn", {"max_macs": 150_000}),
}


def rate(fn, seconds: float = 2.0) -> float:
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        fn()
        n += 1
    return n / (time.perf_counter() - t0)


def main() -> None:
    torch.set_num_threads(1)
    results = {}
    for name, (ref, kwargs) in CASES.items():
        t0 = time.perf_counter()
        graph = build_space(ref, kwargs)
        space_build_s = time.perf_counter() - t0
        rng = np.random.default_rng(0)
        sample_rate = rate(lambda g=graph, r=rng: g.sample(r))
        cost_rate = rate(lambda g=graph, r=rng: (g.sample(r), cost_metrics(g)))
        build_rate = rate(lambda g=graph, r=rng: (g.sample(r), BasicExecutor(g)))
        results[name] = {
            "space_build_seconds": round(space_build_s, 4),
            "parameters": len(graph.parametrization(flatten=True)),
            "samples_per_second": round(sample_rate, 1),
            "samples_with_cost_per_second": round(cost_rate, 1),
            "samples_built_as_torch_module_per_second": round(build_rate, 1),
        }
        print(name, results[name])
    out = ROOT / "benchmarks" / "results" / "nas_sampling.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "benchmark": "nas_sampling", "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": {"python": platform.python_version(), "cpu": platform.processor() or
                    platform.machine(), "torch_threads": torch.get_num_threads()},
        "results": results}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
