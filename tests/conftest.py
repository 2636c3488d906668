import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SPACES = {
    "seed": f"{ROOT}/nas/seed_space.py:search_space_graph",
    "kws": f"{ROOT}/nas/kws_tcresnet.py:kws_tcresnet",
    "image": f"{ROOT}/nas/image_cnn.py:image_cnn",
}


def run_cli(*args, check=False, timeout=300, env=None, **kw):
    """Run ``hannah-hw`` in a fresh process, as a user would."""
    env = {**(env or os.environ), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "hannah_hw.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"hannah-hw {' '.join(map(str, args))} failed:\n{proc.stderr}")
    return proc


def tiny_linear_graph():
    """A QGraph without training: one linear layer 4 -> 2, 8-bit signed input and output."""
    import numpy as np

    from hannah_hw.ir.qgraph import from_dict

    t = {"bits": 8, "signed": True, "scale_m": 1, "zero_point": 0}
    d = {"format": "hannah-hw-qgraph", "format_version": 1, "name": "t", "inputs": ["x"],
         "outputs": ["y"], "tensors": {"x": {"shape": [4], "scale_e": -4, **t},
                                       "y": {"shape": [2], "scale_e": -3, **t}},
         "nodes": [{"op": "linear", "name": "fc", "inputs": ["x"], "output": "y",
                    "attrs": {"relu": False, "wbits": 4},
                    "params": {"weight": "w", "bias": "b", "m": "m", "sh": "sh"}}]}
    arrays = {"w": np.array([[1, -2, 3, 7], [0, 1, -7, 2]], np.int8),
              "b": np.array([3, -5], np.int64), "m": np.array([1, 1], np.int64),
              "sh": np.array([2, 3], np.int32)}
    d["arrays"] = {k: {"dtype": str(a.dtype), "shape": list(a.shape)} for k, a in arrays.items()}
    return from_dict(d, arrays)


def one_line(r, *parts: str) -> str:
    """Assert a CliRunner result is a user error: exit 2, one stderr line naming ``parts``."""
    assert r.exit_code == 2, (r.output, r.exception)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hannah-hw: error: "), r.stderr
    for p in parts:
        assert p in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def spaces():
    return SPACES
