"""Where hannah-hw keeps what it can regenerate (Verilator builds, synthesised data): a user
cache, not the installed package, which a pip install may not let it write."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# the source tree: the C runtime (firmware/), the Verilator harnesses (sim/), lint waivers (rtl/)
ROOT = Path(__file__).resolve().parents[2]


def cache_dir() -> Path:
    """``$HANNAH_HW_CACHE``, else ``$XDG_CACHE_HOME/hannah-hw``, else ``~/.cache/hannah-hw``."""
    env = os.environ.get("HANNAH_HW_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "hannah-hw"


def verilator_root() -> Path:
    """The Verilator builds: one directory per design, named by a hash of what defines it."""
    return cache_dir() / "verilator"


@contextmanager
def locked(target: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``target`` (a build directory) across processes: two runs of
    the same design wait for one build instead of compiling into the same files. The kernel
    drops the lock of a killed holder; the lock file stays beside the target."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f"{target.name}.lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
