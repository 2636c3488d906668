"""The generate stage: QGraph -> HWDIR (hw/hwdir.py). It sits above fpga because ``--fit``
sizes the accelerator for a board by the resource model and elaborates it as that board's
FPGA family builds it."""

from __future__ import annotations

import json
from pathlib import Path

from hannah_hw.accel.config import ConfigError, derive_config
from hannah_hw.accel.cost import predict_cost
from hannah_hw.accel.hwdesc import HwLayout
from hannah_hw.accel.program import OPCODES, compile_program
from hannah_hw.fpga.resources import fit_config
from hannah_hw.hw.emit import emit_verilog
from hannah_hw.hw.hwdir import FILES, digest, memory_bits
from hannah_hw.ir.qgraph import QGraph
from hannah_hw.util.names import printable


def generate(g: QGraph, out: Path, pe_rows: int | None = None, pe_cols: int | None = None,
             fit: str | None = None) -> dict:
    """QGraph -> HWDIR: config, Program, Verilog and summary (with the predicted cost).
    ``fit``: a board (fpga.boards) the configuration must fit, by the resource model; the
    configuration names that board's FPGA family, and the Verilog and the cost model are
    as it builds them (on iCE40: SPRAM weights, word-wide rows), so simulation runs what the
    bitstream holds."""
    from hannah_hw.hw.accel import Accelerator  # amaranth: an optional dependency

    bad = sorted({n.op for n in g.nodes} - set(OPCODES))
    if bad:
        raise ConfigError(f"the accelerator generator does not support op(s) {', '.join(bad)} "
                          f"(node {printable(next(n.name for n in g.nodes if n.op in bad))})")
    cfg = fit_config(g, fit, pe_rows, pe_cols) if fit else derive_config(g, pe_rows, pe_cols)
    prog = compile_program(g, cfg)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    g.save(out / "qgraph.json")
    cfg.save(out / "config.json")
    prog.save(out / "program.json")
    emit_verilog(Accelerator(cfg), "accel", out / "accel.v")
    cost = predict_cost(g, cfg)
    summary = {"config": json.loads(cfg.to_json()), "family": cfg.family,
               "mac_units": cfg.mac_units,
               "memory_bits": memory_bits(cfg), "bus_address_bits": HwLayout(cfg).bus_addr_w,
               "layers": len(prog.descriptors), "macs": cost["macs"],
               "predicted_cycles": cost["cycles"], "predicted_utilization": cost["utilization"],
               "predicted_energy_pj": cost["energy_pj"],
               "files": {f: digest(out / f) for f in FILES}}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
