"""Whole-accelerator simulation: the generated Verilog under the C++ Verilator harness
(sim/accel_harness.cpp, its command codes and registers from the header generated here).
The Program is loaded through the bus, each input written, run and read back, with no
Python per clock cycle; per-layer counters come from the RTL's stats memory."""

from __future__ import annotations

import hashlib
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from hannah_hw.accel.bus import bus_words, c_header, register_defines
from hannah_hw.accel.config import AccelConfig
from hannah_hw.accel.hwdesc import HW_COUNTERS, STATUS_ERROR, HwLayout, layer_counts
from hannah_hw.accel.program import Program
from hannah_hw.util.paths import data_path
from hannah_hw.util.proc import popen

from .verilator import FLAGS, SimulatorError, build_dir, build_exe

WRITE, READ, RUN, END = 1, 2, 3, 0  # the harness's commands
HEADER = "hh_accel_sim.h"


def harness_header() -> str:
    """The harness's command codes and the accelerator's registers and status bits."""
    items = register_defines() + [("HH_CMD_END", END), ("HH_CMD_WRITE", WRITE),
                                  ("HH_CMD_READ", READ), ("HH_CMD_RUN", RUN)]
    return c_header("HH_ACCEL_SIM_H", "hannah_hw/simulate/accel_sim.py", items)


def build_harness(verilog: Path) -> Path:
    """Compile the Verilog with the harness, once per distinct design (and header)."""
    verilog, harness, header = Path(verilog), data_path("sim", "accel_harness.cpp"), \
        harness_header()
    key = hashlib.sha1(verilog.read_bytes() + harness.read_bytes() + header.encode()
                       + " ".join(FLAGS).encode()).hexdigest()
    return build_exe(build_dir("accel", key), "accel_sim", "accel",
                     [verilog.resolve(), harness], {HEADER: header})


def _writes(pairs: list[tuple[int, int]]) -> list[int]:
    out = [WRITE, len(pairs)]
    for a, v in pairs:
        out += [a, int(v) & 0xFFFF_FFFF]
    return out


def load_commands(prog: Program, cfg: AccelConfig, timeout: int = 0) -> list[int]:
    """Bus writes that load a Program: descriptors, parameters, weights, layer count."""
    lay = HwLayout(cfg)
    pairs = [p for block in bus_words(prog, cfg) for p in block.writes()]
    pairs += [(lay.reg("n_layers"), len(prog.descriptors)), (lay.reg("timeout"), timeout)]
    return _writes(pairs)


def run_commands(exe: Path, words: list[int], on_run: Callable[[int], None] | None = None,
                 timeout_s: float | None = None) -> tuple[np.ndarray, dict]:
    """Execute a command stream; returns the words read and the simulator's totals."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd_file, out_file = Path(tmp) / "cmd.bin", Path(tmp) / "out.bin"
        np.array(words + [END], np.int64).astype(np.uint32).tofile(cmd_file)
        t0 = time.monotonic()
        p = popen([str(exe), str(cmd_file), str(out_file)], stdout=subprocess.PIPE,
                  stderr=subprocess.PIPE, text=True)
        total = None
        for line in p.stdout:
            parts = line.split()
            if parts and parts[0] == "run" and on_run:
                on_run(int(parts[2]))
            elif parts and parts[0] == "total":
                total = {"sim_cycles": int(parts[1]), "sim_seconds": float(parts[2])}
            if timeout_s and time.monotonic() - t0 > timeout_s:
                p.kill()
                raise SimulatorError(f"simulation exceeded {timeout_s:.0f} s")
        err = p.stderr.read()
        if p.wait() != 0 or total is None:
            raise SimulatorError("RTL simulation failed: "
                                 + (err.strip() or f"exit {p.returncode}"))
        return np.fromfile(out_file, np.uint32), total


def simulate_program(exe: Path, prog: Program, cfg: AccelConfig, x: np.ndarray,
                     shapes: dict[str, tuple], max_cycles: int = 1 << 30,
                     on_sample: Callable[[], None] | None = None
                     ) -> tuple[np.ndarray, list[list[dict]], dict]:
    """Integer outputs of a batch of integer inputs on the RTL, per-sample per-layer
    counters, and the simulator's totals."""
    lay = HwLayout(cfg)
    x = np.asarray(x, np.int64)
    out_shape = shapes[prog.output]
    n_out = int(np.prod(out_shape))
    nl, nc = len(prog.descriptors), len(HW_COUNTERS)
    a_in = lay.base("act") + prog.act_addr[prog.input]
    a_out = lay.base("act") + prog.act_addr[prog.output]
    words = load_commands(prog, cfg, timeout=max_cycles)
    for sample in x:
        words += _writes([(a_in + i, v) for i, v in enumerate(sample.reshape(-1))])
        words += [RUN, max_cycles + 1000, READ, lay.reg("status"), 1, READ, a_out, n_out]
        for layer in range(nl):
            words += [READ, lay.base("stats") + layer * lay.stats_stride, nc]
    data, total = run_commands(exe, words, (lambda _c: on_sample()) if on_sample else None)
    per = 1 + n_out + nl * nc
    if data.size != per * len(x):
        raise SimulatorError(f"the harness returned {data.size} words, expected {per * len(x)}")
    outs, stats = [], []
    for s in range(len(x)):
        chunk = data[s * per:(s + 1) * per]
        if chunk[0] & STATUS_ERROR:
            raise SimulatorError(f"the accelerator's watchdog stopped sample {s} after "
                                 f"{max_cycles} cycles")
        outs.append(chunk[1:1 + n_out].view(np.int32).astype(np.int64).reshape(out_shape))
        cum = chunk[1 + n_out:].astype(np.int64).reshape(nl, nc)
        diff = np.diff(np.vstack([np.zeros(nc, np.int64), cum]), axis=0)
        stats.append([{"name": name, **layer_counts(row)}
                      for name, row in zip(prog.names, diff)])
    return np.stack(outs), stats, total
