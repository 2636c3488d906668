"""Where hannah-hw finds the files it ships beside its Python (the C runtime in firmware/,
the Verilator harnesses and cocotb testbenches in sim/, the lint waivers in rtl/) and where
it keeps what it can regenerate (Verilator builds, synthesised data): a user cache, not the
installed package, which a pip install may not let it write."""

from __future__ import annotations

import fcntl
import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

DATA_DIRS = ("firmware", "sim", "rtl")  # pyproject.toml ships them as share/hannah-hw/<dir>
SHARE = ("share", "hannah-hw")


@functools.lru_cache(maxsize=1)
def data_root() -> Path:
    """The directory holding DATA_DIRS: the source tree when hannah_hw runs from one (a
    checkout, an editable install), else the installed distribution's share/hannah-hw."""
    tree = Path(__file__).resolve().parents[2]
    if (tree / "pyproject.toml").is_file() and all((tree / d).is_dir() for d in DATA_DIRS):
        return tree
    try:
        files = metadata.files("hannah-hw") or []
    except metadata.PackageNotFoundError:
        files = []
    for f in files:  # e.g. ../../../share/hannah-hw/sim/accel_harness.cpp
        d = Path(f.locate()).resolve().parent
        if d.name in DATA_DIRS and d.parent.parts[-len(SHARE):] == SHARE:
            return d.parent
    raise FileNotFoundError(f"hannah-hw's {', '.join(DATA_DIRS)} are neither beside the package "
                            f"({tree}) nor installed with it: reinstall hannah-hw")


def data_path(kind: str, *parts: str) -> Path:
    """A shipped file or directory, e.g. ``data_path("sim", "accel_harness.cpp")``."""
    assert kind in DATA_DIRS, kind
    return data_root().joinpath(kind, *parts)


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
