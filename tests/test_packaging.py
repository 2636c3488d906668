"""A non-editable install carries what hannah-hw runs beside its Python (firmware/, sim/, rtl/)
and finds it through util.paths, as a checkout does."""

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from conftest import ROOT
from hannah_hw.util.paths import DATA_DIRS, data_path, data_root


def test_a_checkout_finds_its_own_files():
    assert data_root() == ROOT
    assert data_path("sim", "accel_harness.cpp") == ROOT / "sim" / "accel_harness.cpp"


def test_an_installed_wheel_finds_every_shipped_file(tmp_path):
    pytest.importorskip("setuptools")  # the build backend, used without build isolation
    src, prefix = tmp_path / "src", tmp_path / "venv"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for d in ("hannah_hw", *DATA_DIRS):
        shutil.copytree(ROOT / d, src / d, ignore=ignore)
    for f in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / f, src)
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    pip = [sys.executable, "-m", "pip"]
    # a wheel built here, installed into a venv of its own: this environment stays untouched
    def run(*cmd):
        subprocess.run(cmd, check=True, env=env, capture_output=True, timeout=300)

    run(*pip, "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), str(src))
    run(sys.executable, "-m", "venv", "--without-pip", str(prefix))
    run(*pip, "--python", str(prefix / "bin" / "python"), "install", "-q", "--no-deps",
        *map(str, tmp_path.glob("*.whl")))
    site = sysconfig.get_path("purelib", vars={"base": str(prefix), "platbase": str(prefix)})
    want = sorted(f"{d}/{f.name}" for d in DATA_DIRS for f in (ROOT / d).iterdir()
                  if f.is_file() and not f.name.startswith("."))  # every file, none forgotten
    code = ("from hannah_hw.util import paths\n"
            "print(paths.__file__)\nprint(paths.data_root())\n"
            "for d in paths.DATA_DIRS:\n"
            "    for f in sorted(paths.data_path(d).iterdir()):\n"
            "        print(f'{d}/{f.name}')\n")
    r = subprocess.run([str(prefix / "bin" / "python"), "-c", code], cwd=tmp_path,
                       capture_output=True, text=True, env=env, timeout=120, check=True)
    module, root, *found = r.stdout.splitlines()
    assert Path(module).is_relative_to(site) and Path(root) == prefix / "share" / "hannah-hw"
    assert sorted(f for f in found if "__pycache__" not in f) == want
