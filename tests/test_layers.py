"""The import contracts (pyproject's [tool.importlinter]): each package imports only the ones
below it, and no modules of one package import each other in a circle. Checked on the tree as
it is, and shown to fail on a copy with one upward import and one circle."""

import ast
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


HEAVY = ("torch", "amaranth", "onnx", "onnxruntime", "cocotb", "optuna", "sqlalchemy",
         "matplotlib")
# the DSL's circles (also ignored in the acyclic contract): HANNAH's API puts sample(),
# set_params() and friends on the node, the implementation lives in space.py
CIRCLE_BREAKERS = {"hannah_hw.nas.space", "hannah_hw.nas.functional_operators.operators",
                   "hannah_hw.nas.parameters.parameters"}


def _local_imports() -> dict[str, set[str]]:
    """First-party modules imported inside a function: target -> the importing modules."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / "hannah_hw").rglob("*.py")):
        mod = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for fn in ast.walk(ast.parse(path.read_text())):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                if isinstance(node, ast.ImportFrom):
                    base = package.rsplit(".", node.level - 1)[0] if node.level else ""
                    target = ".".join(p for p in (base, node.module or "") if p)
                    names = [target]
                elif isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                else:
                    continue
                for t in names:
                    if t.startswith("hannah_hw"):
                        found.setdefault(t, set()).add(mod)
    return found


def test_a_first_party_import_in_a_function_only_defers_a_heavy_dependency():
    """Imports belong at the top of a module; one inside a function is allowed only to keep
    a heavy dependency out of the commands that do not need it (the CLI starts in ~0.2 s,
    torch alone takes ~1 s), or to break one of the DSL's listed circles."""
    probe = ("import importlib, sys; importlib.import_module(sys.argv[1]); "
             f"print(' '.join(sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)})))")
    light = []
    for target, users in sorted(_local_imports().items()):
        if target in CIRCLE_BREAKERS:
            continue
        r = subprocess.run([sys.executable, "-c", probe, target], cwd=ROOT, text=True,
                           capture_output=True, timeout=120)
        assert r.returncode == 0, r.stderr
        if not r.stdout.strip():
            light.append(f"{target} (in {', '.join(sorted(users))})")
    assert not light, "import these at the top of the module: " + "; ".join(light)
