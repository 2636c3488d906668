"""Child processes that die with their parent: a killed search, flow or simulation must not
leave a worker, a Verilator model or nextpnr running unattended.

``popen``/``run`` replace ``subprocess.Popen``/``run`` for every tool hannah-hw starts. The
kernel signals a child when its parent dies (``PR_SET_PDEATHSIG``), but not the child's own
children, so a build that forks (``verilator --build`` -> make -> g++) runs with ``tree=True``:
it leads its own process group, and a small watchdog, itself tied to this process, kills that
group when this process dies.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import Any

_PR_SET_PDEATHSIG = 1
# the watchdog's death signal: ignored by default, so one that arrives before the handler is
# installed is not lost (the parent check after installing it catches that case)
_WATCH_SIG = signal.SIGWINCH
_WATCHDOG = """
import os, signal, sys, time
group, parent = int(sys.argv[1]), int(sys.argv[2])
def reap(*_):
    try:
        os.killpg(group, signal.SIGKILL)
    except OSError:
        pass
    os._exit(0)
signal.signal(signal.SIGTERM, reap)
signal.signal(int(sys.argv[3]), reap)
while True:
    if os.getppid() != parent:
        reap()
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        os._exit(0)
    time.sleep(0.5)
"""


def die_with_parent(sig: int = signal.SIGKILL, parent_pid: int | None = None) -> None:
    """Have the kernel send ``sig`` to this process when its parent exits (Linux only).

    The kernel ties this to the parent *thread* that started the child, so start children
    from a thread that lives as long as they should. ``parent_pid`` closes the race where
    the parent died before this call: then exit at once.
    """
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(1)


def child_setup(sig: int = signal.SIGKILL, group: bool = False) -> Callable[[], None]:
    """A ``preexec_fn`` for ``subprocess``: the child dies with this process; ``group``: it
    also leads a new process group (same session), so its descendants can be killed at once."""
    parent = os.getpid()

    def setup() -> None:
        if group:
            os.setpgid(0, 0)
        die_with_parent(sig, parent)

    return setup


def popen(cmd: Sequence[str], **kw: Any) -> subprocess.Popen:
    """``subprocess.Popen`` whose child dies with this process (a single-process tool: a
    simulator executable, a YoWASP tool)."""
    return subprocess.Popen(cmd, preexec_fn=child_setup(), **kw)


def _watch(group: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-S", "-c", _WATCHDOG, str(group), str(os.getpid()), str(_WATCH_SIG)],
        preexec_fn=child_setup(_WATCH_SIG), stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _kill_group(p: subprocess.Popen) -> None:
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except OSError:
        pass


def run(cmd: Sequence[str], *, tree: bool = False, input: str | bytes | None = None,
        capture_output: bool = False, timeout: float | None = None, check: bool = False,
        **kw: Any) -> subprocess.CompletedProcess:
    """``subprocess.run`` whose child (and with ``tree`` every process it starts) dies with
    this process, and with a timeout or an exception here (Ctrl-C) as well."""
    if capture_output:
        kw["stdout"] = kw["stderr"] = subprocess.PIPE
    if input is not None:
        kw["stdin"] = subprocess.PIPE
    elif tree:  # a background process group that reads the terminal would stop
        kw.setdefault("stdin", subprocess.DEVNULL)
    p = subprocess.Popen(cmd, preexec_fn=child_setup(group=tree), **kw)
    watchdog = _watch(p.pid) if tree else None
    try:
        with p:
            try:
                out, err = p.communicate(input, timeout=timeout)
            except BaseException:
                if tree:
                    _kill_group(p)
                else:
                    p.kill()
                p.wait()
                raise
    finally:
        if watchdog is not None:
            if p.returncode is not None:  # descendants that outlived the leader go too
                _kill_group(p)
            watchdog.kill()
            watchdog.wait()
    if check and p.returncode:
        raise subprocess.CalledProcessError(p.returncode, cmd, out, err)
    return subprocess.CompletedProcess(cmd, p.returncode, out, err)


def guard_subprocess(module: Any) -> Callable[[], None]:
    """Route a third-party module's ``subprocess.run``/``Popen`` (cocotb's runner) through
    ``run``/``popen`` until the returned function is called: it takes no preexec_fn."""
    orig = module.subprocess

    class _Guarded:
        def __getattr__(self, name: str) -> Any:
            return getattr(orig, name)

        @staticmethod
        def run(cmd: Sequence[str], **kw: Any) -> subprocess.CompletedProcess:
            return run(cmd, tree=True, **kw)

        @staticmethod
        def Popen(cmd: Sequence[str], **kw: Any) -> subprocess.Popen:  # noqa: N802
            return popen(cmd, **kw)

    module.subprocess = _Guarded()
    return lambda: setattr(module, "subprocess", orig)
