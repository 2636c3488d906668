"""The import contracts (pyproject's [tool.importlinter]): each package imports only the ones
below it, and no modules of one package import each other in a circle. Checked on the tree as
it is, and shown to fail on a copy with one upward import and one circle."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

LINT = Path(sys.executable).with_name("lint-imports")


def _lint(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT), "--no-cache"], cwd=root, env=env, capture_output=True,
                          text=True, timeout=300)


def test_the_layers_hold():
    r = _lint(ROOT)
    assert r.returncode == 0, r.stdout + r.stderr


def test_an_upward_import_or_a_circle_fails_the_contracts(tmp_path):
    shutil.copytree(ROOT / "hannah_hw", tmp_path / "hannah_hw",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    with open(tmp_path / "hannah_hw" / "ir" / "interpreter.py", "a") as f:
        f.write("\nfrom hannah_hw.flow import run_flow  # noqa: E402,F401\n")
    with open(tmp_path / "hannah_hw" / "accel" / "config.py", "a") as f:
        f.write("\nfrom hannah_hw.accel.program import compile_program  # noqa: E402,F401\n")
    r = _lint(tmp_path)
    assert r.returncode != 0
    assert "hannah_hw.ir.interpreter -> hannah_hw.flow" in r.stdout, r.stdout
    assert "No cycles are allowed in hannah_hw.accel" in r.stdout, r.stdout
