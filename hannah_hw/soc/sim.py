"""Building and running the SoC under Verilator (sim/soc_harness.cpp, which includes the
firmware's hh_soc.h for the host port): one build per (AccelConfig, RAM size), shared by
every firmware that fits it."""

from __future__ import annotations

import hashlib
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hannah_hw.accel.config import AccelConfig
from hannah_hw.hw.emit import convert
from hannah_hw.simulate.verilator import FLAGS, SimulatorError, build_dir, build_exe
from hannah_hw.util.paths import data_path
from hannah_hw.util.proc import popen

from .cores import cpu_sources
from .soc import BOARD_RAM, SoC, soc_header


@dataclass
class SocRun:
    code: int
    cycles: int
    seconds: float
    output: np.ndarray  # uint32 words the firmware wrote to the host port
    console: str


def build_soc(cfg: AccelConfig | None, ram_words: int, isa: str = "rv32im",
              cpu: str = "picorv32") -> Path:
    """The SoC's simulator executable, built once per distinct design (keyed by its
    Verilog, so any change to the RTL rebuilds it), as an FPGA of ``cfg.family`` builds it
    (its RAM kind, on iCE40 the accelerator's memories)."""
    family = cfg.family if cfg else None
    text = convert(SoC(cfg, ram_words, isa=isa, ram=BOARD_RAM.get(family, "dual"), cpu=cpu),
                   "soc")
    sources, harness, header = cpu_sources(cpu), data_path("sim", "soc_harness.cpp"), \
        soc_header()
    bdir = build_dir("soc", hashlib.sha1("".join(
        [text, harness.read_text(), header, " ".join(FLAGS)] + [f.read_text() for f in sources]
    ).encode()).hexdigest())
    return build_exe(bdir, "soc_sim", "soc", [bdir / "soc.v", *sources, harness],
                     {"soc.v": text, "hh_soc.h": header})


def run_soc(exe: Path, image: bytes, input_words: np.ndarray, max_cycles: int,
            on_line: Callable[[str], None] | None = None) -> SocRun:
    """Boot ``image`` and run until the firmware writes the exit register; a trap or a
    firmware that never exits is an error carrying the console log. ``on_line`` sees each
    console line as it is printed."""
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        (t / "image.bin").write_bytes(image + b"\0" * (-len(image) % 4))
        np.asarray(input_words, np.uint32).tofile(t / "input.bin")
        p = popen([str(exe), str(t / "image.bin"), str(t / "input.bin"), str(t / "out.bin"),
                   str(t / "console.txt"), str(max_cycles)],
                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace")
        last = ""
        for line in p.stdout:
            last = line
            if on_line:
                on_line(line)
        err = p.stderr.read()
        console = (t / "console.txt").read_text(errors="replace") \
            if (t / "console.txt").is_file() else ""
        parts = last.split()
        if p.wait() or len(parts) != 4 or parts[0] != "exit":
            log = console.strip().splitlines()[-5:]
            raise SimulatorError((err.strip() or f"SoC simulation exit {p.returncode}")
                                 + (f"; console: {' | '.join(log)}" if log else
                                    "; the console is empty"))
        return SocRun(int(parts[1]), int(parts[2]), float(parts[3]),
                      np.fromfile(t / "out.bin", np.uint32), console)
