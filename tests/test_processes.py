"""Child processes die with their parent (a killed run leaves no make, g++ or simulator
behind), and Verilator builds go to a cache that two processes can share."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT
from hannah_hw.simulate import verilator
from hannah_hw.util.paths import cache_dir


def _session(sid: int) -> list[tuple[int, str]]:
    """(pid, command name) of the live processes of session ``sid``."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        state, _ppid, _pgrp, session = stat[stat.rindex(")") + 2:].split()[:4]
        if int(session) == sid and state != "Z":
            out.append((int(d.name), comm))
    return out


def _wait_for(sid: int, pred, timeout: float) -> list[tuple[int, str]]:
    end = time.monotonic() + timeout
    while True:
        procs = _session(sid)
        if pred(procs) or time.monotonic() > end:
            return procs
        time.sleep(0.1)


def _start(code: str, env: dict | None = None) -> subprocess.Popen:
    """A parent process in a session of its own, so its descendants can be found."""
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, start_new_session=True,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _kill_and_count(parent: subprocess.Popen, started, timeout: float = 5) -> list:
    """Wait until ``started(procs)``, SIGKILL the parent only; what is still alive after
    ``timeout`` seconds (killed at the end either way)."""
    procs = _wait_for(parent.pid, started, 180)
    assert started(procs), f"the children never started: {procs}"
    parent.kill()
    parent.wait()
    left = _wait_for(parent.pid, lambda ps: not ps, timeout)
    try:
        os.killpg(parent.pid, signal.SIGKILL)  # clean up after a failure
    except OSError:
        pass
    for pid, _ in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return left


def _sleeps(n):
    return lambda ps: sum(c == "sleep" for _, c in ps) >= n


SHELL = ["sh", "-c", "sleep 60 & sleep 61; wait"]


def test_plain_subprocess_leaves_grandchildren_behind():
    """The control: without the guards the detector sees the orphans."""
    parent = _start(f"import subprocess; subprocess.run({SHELL!r})")
    assert _kill_and_count(parent, _sleeps(2), timeout=1)


def test_run_and_popen_children_die_with_their_parent():
    code = ("from hannah_hw.util.proc import popen, run; "
            f"popen(['sleep', '62']); run({SHELL!r}, tree=True)")
    assert _kill_and_count(_start(code), _sleeps(3)) == []


def test_run_kills_the_tree_on_timeout():
    from hannah_hw.util.proc import run

    mark = f"60.{os.getpid()}"  # this test's grandchild, among whatever else runs here
    t = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        run(["sh", "-c", f"sleep {mark} & sleep 61; wait"], tree=True, timeout=0.5)
    assert time.monotonic() - t < 5
    time.sleep(0.2)
    left = []
    for d in Path("/proc").glob("[0-9]*"):
        try:
            if mark.encode() in (d / "cmdline").read_bytes():
                left.append(int(d.name))
        except OSError:
            pass
    assert left == []


@pytest.mark.sim
def test_killed_simulate_leaves_no_compiler_running(tmp_path):
    """``hannah-hw simulate`` killed in the middle of its Verilator build (make -> g++):
    nothing of the build survives it."""
    from test_accel_model import lowered
    from test_qat import every_op_1d

    from hannah_hw.stages.generate import generate

    qg, x = lowered(every_op_1d, 8, 8, "fixed", 5, n=2)
    generate(qg, tmp_path / "hw", pe_cols=4)
    np.save(tmp_path / "x.npy", x.astype(np.float32))
    env = {**os.environ, "HANNAH_HW_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    code = ("import sys; from hannah_hw.cli import main; sys.argv = ['hannah-hw', 'simulate', "
            f"{str(tmp_path / 'hw')!r}, '--input', {str(tmp_path / 'x.npy')!r}, '--output', "
            f"{str(tmp_path / 'y.npy')!r}]; main()")
    compiling = lambda ps: any(c in ("cc1plus", "g++", "c++") for _, c in ps)  # noqa: E731
    # unguarded, the compilers run on for seconds (make dies of SIGPIPE, its g++ do not)
    assert _kill_and_count(_start(code, env), compiling, timeout=1) == []
    assert not list((tmp_path / "cache").glob("verilator/accel-*/accel_sim"))


def test_cache_dir_is_overridable(monkeypatch, tmp_path):
    monkeypatch.delenv("HANNAH_HW_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "hannah-hw"
    monkeypatch.setenv("HANNAH_HW_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    assert verilator.build_dir("accel", "k").parent == tmp_path / "c" / "verilator"
    assert verilator.build_dir("accel", "k") != verilator.build_dir("accel", "k2")


def test_concurrent_builds_of_one_design_share_one_build(monkeypatch, tmp_path):
    """Two builds of the same design at once: one compiles, the other waits and reuses it;
    a failed (or killed) build leaves no executable that a later run would trust."""
    calls = []

    def fake_run(cmd, **_kw):
        calls.append(cmd)
        time.sleep(0.3)
        out = Path(cmd[cmd.index("-o") + 1])
        if out.parent.name == "bad":
            out.write_text("half")
            return subprocess.CompletedProcess(cmd, 1, "", "boom")
        out.write_text("exe")
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(verilator, "run", fake_run)
    monkeypatch.setattr(verilator, "verilator_env", dict)
    bdir, got = tmp_path / "accel-x", []
    threads = [threading.Thread(target=lambda: got.append(
        verilator.build_exe(bdir, "sim", "top", [], {"top.v": "module top; endmodule"})))
        for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == [bdir / "sim"] * 2 and len(calls) == 1
    assert (bdir / "top.v").read_text().startswith("module top")
    with pytest.raises(verilator.SimulatorError, match="boom"):
        verilator.build_exe(tmp_path / "bad", "sim", "top", [])
    assert not (tmp_path / "bad" / "sim").exists()
