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


@pytest.fixture
def spaces():
    return SPACES
