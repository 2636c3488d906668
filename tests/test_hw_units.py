"""RTL units in Verilator (cocotb), against their golden models. One build per design."""

import dataclasses
import json

import pytest

from hannah_hw.accel.config import AccelConfig
from hannah_hw.hw.emit import emit_verilog
from hannah_hw.hw.mac import MacLanes
from hannah_hw.hw.requant import Requantizer
from hannah_hw.simulate.verilator import build_dir, lint, run_cocotb

BASE = AccelConfig(pe_rows=1, pe_cols=4, act_bits=8, weight_bits=8, acc_bits=32, mult_bits=16,
                   shift_bits=6, act_depth=64, weight_depth=64, param_depth=16, desc_depth=4,
                   units=("conv",), half_even=False, zero_points=True)

CONFIGS = {
    "fixed-multiplier": BASE,
    "shifts-only": dataclasses.replace(BASE, mult_bits=1, pe_cols=8, weight_bits=4),
    "half-even": dataclasses.replace(BASE, half_even=True, mult_bits=31, acc_bits=24),
}


@pytest.mark.sim
@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("unit", [Requantizer, MacLanes])
def test_unit_matches_golden_model(name, unit):
    cfg = CONFIGS[name]
    key = f"{unit.__name__}:{cfg.to_json()}"
    bdir = build_dir(unit.__name__.lower(), key)
    top = unit.__name__.lower()
    v = emit_verilog(unit(cfg), top, bdir / f"{top}.v")
    run_cocotb(v, top, "test_units", bdir,
               {"HW_CFG": json.dumps(dataclasses.asdict(cfg)), "HW_SEED": "1"})


@pytest.fixture(scope="module")
def small_hwdir():
    """A generated design for a network with every op (4 lanes)."""
    from test_accel_model import lowered
    from test_qat import every_op_1d

    from hannah_hw.stages.generate import generate

    qg, _ = lowered(every_op_1d, 8, 8, "fixed")
    out = build_dir("hwdir", str(qg))
    generate(qg, out, pe_cols=4)
    return out


@pytest.mark.sim
def test_whole_accelerator_over_the_bus_in_cocotb(small_hwdir):
    v = small_hwdir / "accel.v"
    run_cocotb(v, "accel", "test_accel_bus", build_dir("cocotb-accel", v.read_text()),
               {"HW_DIR": str(small_hwdir)})


@pytest.mark.sim
def test_generated_verilog_is_lint_clean(small_hwdir):
    assert lint(small_hwdir / "accel.v", "accel") == []
