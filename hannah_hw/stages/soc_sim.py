"""The SoC simulation stage: an FWDIR's rv32 build on the simulated SoC. A stage, not part
of fw, because it chooses the FPGA family the SoC is built as (a board's, else the one its
HWDIR was generated for) and runs the simulator (soc/sim.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np

from hannah_hw.fpga.boards import board as board_spec
from hannah_hw.fw.build import FirmwareError, pack_inputs, soc_config, soc_image


def soc_simulate(fwdir: Path, x: np.ndarray, out_shape: tuple, accel: bool = True,
                 max_cycles: int = 1 << 34, on_sample: Callable[[], None] | None = None,
                 board: str | None = None) -> tuple[np.ndarray, dict]:
    """Integer inputs through the emitted firmware on the simulated SoC (as ``board`` builds
    it, else as its HWDIR was generated): the outputs, and a report of cycles per inference
    (end to end, in the accelerator, in the driver)."""
    from hannah_hw.soc.sim import build_soc, run_soc  # amaranth: an optional dependency

    fwdir = Path(fwdir)
    cfg, ram, isa, cpu = soc_config(fwdir)
    image = soc_image(fwdir, ram)
    if board is not None:  # else as the HWDIR was generated (its config's family)
        cfg = dataclasses.replace(cfg, family=board_spec(board).family)
    exe = build_soc(cfg, ram // 4, isa, cpu)
    words = np.concatenate([[0 if accel else 1, len(x)], pack_inputs(x).reshape(-1)])
    run = run_soc(exe, image, words.astype(np.uint32), max_cycles,
                  (lambda ln: on_sample() if ln.startswith("input ") else None)
                  if on_sample else None)
    n_out = int(np.prod(out_shape))
    per = 4 + n_out
    data = run.output.view(np.int32).astype(np.int64)
    if run.code != 0 or data.size != 1 + per * len(x):
        raise FirmwareError(f"the firmware exited with code {run.code} after {data.size} result "
                            f"words (expected {1 + per * len(x)}); console: "
                            + " | ".join(run.console.strip().splitlines()[-3:]))
    rows = data[1:].reshape(len(x), per)
    bad = [(i, int(rc)) for i, rc in enumerate(rows[:, 0]) if rc]
    if bad:
        raise FirmwareError(f"inference {bad[0][0]} failed with code {bad[0][1]}; console: "
                            + " | ".join(run.console.strip().splitlines()[-3:]))
    y = rows[:, 1:1 + n_out].reshape(len(x), *out_shape)
    e2e, comp, dma = (rows[:, 1 + n_out + k].astype(np.uint32).astype(np.int64)
                      for k in range(3))
    in_accel = comp + dma
    report = {
        "backend": "accelerator" if accel else "reference kernels", "samples": len(x),
        "init_cycles": int(data[0] & 0xFFFF_FFFF), "cycles": int(e2e.mean()),
        "cycles_min": int(e2e.min()), "cycles_max": int(e2e.max()),
        "accel_cycles": int(comp.mean()), "dma_cycles": int(dma.mean()),
        "driver_cycles": int((e2e - in_accel).mean()) if accel else int(e2e.mean()),
        "driver_share": float(((e2e - in_accel) / e2e).mean()) if accel else 1.0,
        "sim_cycles": run.cycles, "sim_seconds": run.seconds,
        "sim_cycles_per_s": run.cycles / max(run.seconds, 1e-9), "ram_bytes": ram,
        "isa": isa, "cpu": cpu, "board": board, "family": cfg.family,
        "console": run.console}
    return y, report
