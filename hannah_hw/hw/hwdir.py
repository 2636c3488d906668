"""A hardware directory (HWDIR): everything a run needs (the QGraph, the AccelConfig, the
Program, the Verilog) and a summary whose file hashes tell a complete, unchanged HWDIR
from a corrupt one. Reading and checking one is hw-level, below every stage that reads
it (simulate, firmware, bitstream); the generate stage (stages/generate.py) writes it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from hannah_hw.accel.config import FAMILIES, AccelConfig, ConfigError
from hannah_hw.accel.hwdesc import HW_COUNTERS, NF, HwLayout, check_fits
from hannah_hw.accel.program import Program
from hannah_hw.ir.qgraph import QGraph
from hannah_hw.util.jsonfile import Record, read_object

FILES = ("qgraph.json", "qgraph.npz", "config.json", "program.json", "program.npz", "accel.v")


def digest(path: Path) -> str:
    """The hash a summary records for one of its FILES."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def memory_bits(cfg: AccelConfig) -> dict[str, int]:
    """Bits of each of the accelerator's memories (the summary's memory_bits)."""
    lay = HwLayout(cfg)
    return {"act": cfg.act_depth * lay.act_w,
            "weight": cfg.weight_depth * cfg.pe_cols * cfg.weight_bits,
            "param": cfg.param_depth * cfg.pe_cols * lay.lane_param_w,
            "desc": cfg.desc_depth * 32 * NF,
            "stats": cfg.desc_depth * 32 * len(HW_COUNTERS)}


def _summary(hwdir: Path) -> Record:
    """summary.json: the file hashes (an object of strings) and, for information, the FPGA
    family (one of FAMILIES, as generate --fit writes it, or null): config.json holds it."""
    if not (hwdir / "summary.json").is_file():
        raise ConfigError(f"{hwdir}: not a generated hardware directory (no summary.json); "
                          "run 'hannah-hw generate' first")
    s = read_object(hwdir / "summary.json", ConfigError, "a hardware directory's summary")
    files = s.obj("files")
    for f in FILES:
        files.get(f, str, None)
    s.choice("family", (None, *FAMILIES), None)
    return s


def load_hwdir(hwdir: Path) -> tuple[QGraph, AccelConfig, Program]:
    """A generated HWDIR, checked against its summary's hashes, its Program against its
    configuration (each descriptor, parameter and weight fits the hardware's fields)."""
    hwdir = Path(hwdir)
    summary = _summary(hwdir)
    files = summary.data["files"]
    for f in FILES:
        p = hwdir / f
        if not p.is_file():
            raise ConfigError(f"{hwdir}: {f} is missing; rerun 'hannah-hw generate'")
        if digest(p) != files.get(f):
            raise ConfigError(f"{hwdir}: {f} differs from what generate wrote; rerun "
                              "'hannah-hw generate'")
    g, cfg = QGraph.load(hwdir / "qgraph.json"), AccelConfig.load(hwdir / "config.json")
    saved = json.loads((hwdir / "config.json").read_text())  # as written: older ones lack family
    # an older --fit HWDIR named its family in the summary only: refused, not read as generic
    if summary.data.get("config", saved) != saved or summary.data.get("family") != cfg.family:
        raise ConfigError(f"{hwdir}: config.json and summary.json's config disagree; rerun "
                          "'hannah-hw generate'")
    prog = Program.load(hwdir / "program.json")
    check_fits(prog, cfg, hwdir / "program.json")
    return g, cfg, prog
