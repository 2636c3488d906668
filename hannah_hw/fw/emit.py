"""Firmware emission: the generated half of a firmware directory (FWDIR). Every number in
the C headers comes from the AccelConfig (accel/hwdesc.py), the SoC map (soc/soc.py) and
the Program; the hand-written runtime in firmware/ is copied beside them, so an FWDIR
builds on its own (``make host``, ``make rv32``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from hannah_hw.accel.bus import BANNER, bus_words, c_header, regs_header
from hannah_hw.accel.config import AccelConfig, ConfigError
from hannah_hw.accel.program import FIELDS, OPCODES, Program
from hannah_hw.accel.schedule import layer_events
from hannah_hw.hw.hwdir import load_hwdir
from hannah_hw.ir.qgraph import QGraph
from hannah_hw.soc.soc import soc_header
from hannah_hw.util.files import write_if_changed
from hannah_hw.util.names import c_string, printable, safe_ident
from hannah_hw.util.paths import data_path


def _array(ctype: str, name: str, values, fmt=str, per_line: int = 12) -> str:
    vals = [fmt(v) for v in np.asarray(values).reshape(-1).tolist()] or ["0"]
    rows = [", ".join(vals[i:i + per_line]) for i in range(0, len(vals), per_line)]
    return f"const {ctype} {name}[{len(vals)}] = {{\n  " + ",\n  ".join(rows) + "\n};\n"


def _int(v: int) -> str:
    return "(-2147483647 - 1)" if v == -(1 << 31) else str(v)


def model_sources(g: QGraph, cfg: AccelConfig, prog: Program) -> tuple[str, str]:
    """hh_model.h and hh_model.c: the Program for the accelerator (packed words) and for
    the reference kernels (descriptors, int8 weights, parameters)."""
    x, y = g.tensors[prog.input], g.tensors[prog.output]
    if x.bits > 8:
        raise ConfigError("the firmware passes inputs as bytes; input "
                          f"{printable(prog.input)!r} has {x.bits} bits")
    blocks = bus_words(prog, cfg)  # the accelerator's copy, as hh_accel_init writes it
    rows = {b.region: len(b.rows) for b in blocks}
    predicted = sum(layer_events(d, cfg)["cycles"] for d in prog.descriptors)
    name = safe_ident(g.name)  # from the model file: reduced before it touches C
    items: list[tuple[str, object]] = [
        ("HH_NETWORK_NAME", c_string(name)), ("HH_N_LAYERS", len(prog.descriptors)),
        ("HH_IN_SIZE", int(np.prod(x.shape))), ("HH_IN_ADDR", prog.act_addr[prog.input]),
        ("HH_IN_SIGNED", int(x.signed)), ("HH_OUT_SIZE", int(np.prod(y.shape))),
        ("HH_OUT_ADDR", prog.act_addr[prog.output]), ("HH_ACT_DEPTH", prog.act_depth),
        ("HH_N_PARAM_ROWS", rows["param"]), ("HH_N_WEIGHT_ROWS", rows["weight"]),
        ("HH_PREDICTED_CYCLES", f"{predicted}u"),
        ("HH_WATCHDOG_CYCLES", f"{min(4 * predicted + 100_000, 0xFFFF_FFFF)}u"),
        ("HH_N_FIELDS", len(FIELDS))]
    items += [(f"HH_F_{f.upper()}", i) for i, f in enumerate(FIELDS)]
    items += [(f"HH_OP_{k.upper()}", v) for k, v in OPCODES.items()]
    decls = ('#include <stdint.h>\n\n#include "hh_regs.h"\n\n'
             "extern const uint32_t hh_desc_words[];\nextern const uint32_t hh_param_words[];\n"
             "extern const uint32_t hh_weight_words[];\n"
             "extern const int32_t hh_ref_desc[HH_N_LAYERS][HH_N_FIELDS];\n"
             "extern const int8_t hh_ref_weights[];\nextern const int32_t hh_ref_params[];\n")
    header = c_header("HH_MODEL_H", f"the Program of {name}", items, decls)
    hexw = "0x{:08x}u".format
    ref = np.array([[d[f] for f in FIELDS] for d in prog.descriptors], np.int64)
    ref_rows = ",\n  ".join("{" + ", ".join(_int(int(v)) for v in r) + "}" for r in ref)
    src = (BANNER.format(src=f"the Program of {name}") + '#include "hh_model.h"\n\n'
           + "".join(_array("uint32_t", f"hh_{b.region}_words", b.rows, hexw, 8)
                     for b in blocks)
           + "#ifndef HH_NO_REF /* the reference kernels' copy of the model */\n"
           + f"const int32_t hh_ref_desc[HH_N_LAYERS][HH_N_FIELDS] = {{\n  {ref_rows}\n}};\n"
           + _array("int8_t", "hh_ref_weights", prog.weights.astype(np.int64), per_line=24)
           + _array("int32_t", "hh_ref_params", prog.params.astype(np.int64), _int)
           + "#endif\n")
    return header, src


def emit_firmware(hwdir: Path, out: Path) -> Path:
    """HWDIR -> FWDIR: generated headers and model, plus the runtime from firmware/."""
    g, cfg, prog = load_hwdir(hwdir)
    if prog.weights.size and (prog.weights.min() < -128 or prog.weights.max() > 127):
        raise ConfigError("the reference kernels hold weights as int8; this Program's do "
                          "not fit")
    big = [int(np.abs(a).max(initial=0)) for a in (
        prog.params, np.array([[d["m"], d["m_b"]] for d in prog.descriptors]))]
    if max(big) >= 1 << 31:
        raise ConfigError("the reference kernels hold biases and multipliers as int32; this "
                          f"Program has a value of {max(big)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    header, src = model_sources(g, cfg, prog)
    for name, text in (("hh_regs.h", regs_header(cfg)), ("hh_soc.h", soc_header()),
                       ("hh_model.h", header), ("hh_model.c", src)):
        write_if_changed(out / name, text)
    for f in sorted(data_path("firmware").iterdir()):
        if f.is_file():
            shutil.copy2(f, out / f.name)
    (out / "hwdir.json").write_text(json.dumps({"hwdir": str(Path(hwdir).resolve())}) + "\n")
    return out
