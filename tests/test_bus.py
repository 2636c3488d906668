"""The one packing of a Program into bus words (accel.bus) and the one source of the numbers
the C and C++ sides use: the simulator's command stream is those words, the firmware's
arrays are those words, and the Verilator harnesses name every register, status bit,
command and host-port register by a generated macro."""

import re

import numpy as np
import pytest
from test_accel_model import lowered
from test_qat import every_op_1d, every_op_2d

from hannah_hw.accel.bus import bus_words, register_defines
from hannah_hw.accel.config import derive_config
from hannah_hw.accel.hwdesc import NF, REGIONS, HwLayout, hw_descriptor, hw_words
from hannah_hw.accel.program import compile_program
from hannah_hw.fw.emit import model_sources
from hannah_hw.simulate.accel_sim import WRITE, harness_header, load_commands
from hannah_hw.util.paths import data_path


@pytest.mark.parametrize("space,lanes", [(every_op_2d, 4), (every_op_1d, 8)])
def test_bus_words_fill_each_memory_at_its_addresses(space, lanes):
    qg, _ = lowered(space)
    cfg = derive_config(qg, pe_cols=lanes)
    prog, lay = compile_program(qg, cfg), HwLayout(cfg)
    blocks = bus_words(prog, cfg)
    assert [b.region for b in blocks] == ["desc", "param", "weight"]
    desc, param, weight = blocks
    assert np.array_equal(desc.rows.reshape(-1),
                          hw_words([hw_descriptor(d, cfg) for d in prog.descriptors]))
    assert desc.rows.shape == (len(prog.descriptors), NF) and desc.stride == NF
    assert (param.stride, weight.stride) == (lay.param_stride, lay.weight_stride)
    assert param.rows.shape == (len(prog.params), lay.param_words)
    assert weight.rows.shape == (len(prog.weights), lay.weight_words)
    for b in blocks:
        addrs = [a for a, _ in b.writes()]
        assert len(set(addrs)) == b.rows.size  # no word written twice
        assert all(a >> lay.region_bits == REGIONS.index(b.region) for a in addrs)
        assert max(addrs) - lay.base(b.region) < lay.sizes[b.region]

    # the simulator writes exactly these words, then the layer count and the watchdog
    cmds = load_commands(prog, cfg, timeout=77)
    assert cmds[:2] == [WRITE, sum(b.rows.size for b in blocks) + 2]
    pairs = list(zip(cmds[2::2], cmds[3::2]))
    assert pairs == [p for b in blocks for p in b.writes()] + [
        (lay.reg("n_layers"), len(prog.descriptors)), (lay.reg("timeout"), 77)]

    # and the firmware's arrays hold them row after row
    _, src = model_sources(qg, cfg, prog)
    for b in blocks:
        body = re.search(rf"hh_{b.region}_words\[\d+\] = \{{(.*?)\}};", src, re.S).group(1)
        words = [int(w.rstrip("u"), 16) for w in body.replace("\n", "").split(", ")]
        assert words == (b.rows.reshape(-1).tolist() or [0])


def test_harnesses_take_every_number_from_the_generated_headers():
    header = harness_header()
    for name, _ in register_defines():
        assert f"#define {name} " in header
    accel = data_path("sim", "accel_harness.cpp").read_text()
    soc = data_path("sim", "soc_harness.cpp").read_text()
    assert '#include "hh_accel_sim.h"' in accel and '#include "hh_soc.h"' in soc
    # every bus access, command and host-port register by name, none by number
    writes = re.findall(r"\bbus\(([^,]+), ([^,]+), true\)", accel)
    assert writes and all(a.startswith(("HH_REG_", "cmd[")) for a, _ in writes)
    assert all(v.startswith(("HH_", "cmd[")) for _, v in writes)
    assert not re.search(r"op == \d|cmd\[pc\] != \d", accel)
    assert re.findall(r"host_adr == (\w+)", soc) and \
        all(n.startswith("HH_HOST_") for n in re.findall(r"host_adr == (\w+)", soc))
