"""Broken arguments to every command: each is one line ``hannah-hw: error: ...`` (or click's
usage error) with exit code 2, never a traceback, and nothing runs before the check."""

import json
import subprocess
import sys

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from conftest import ROOT, tiny_linear_graph
from hannah_hw.cli import main

SPACE = f"{ROOT}/nas/seed_space.py:search_space_graph"
FLOW = {"space": SPACE, "data": {"dataset": "digits"}}
STAGE = {"key": "k", "seconds": 1.0, "finished": "now", "result": {"ok": 1}}




@pytest.fixture(scope="module")
def d(tmp_path_factory):
    """A folder with a QGraph, its HWDIR and FWDIR (no simulator built) and broken inputs."""
    from hannah_hw.fw.emit import emit_firmware
    from hannah_hw.stages.generate import generate

    d = tmp_path_factory.mktemp("cli")
    g = tiny_linear_graph()
    g.save(d / "g.json")
    generate(g, d / "hw")
    emit_firmware(d / "hw", d / "fw")
    np.save(d / "ok.npy", np.zeros((2, 4), np.float32))
    np.save(d / "n0.npy", np.zeros((0, 4), np.float32))
    np.save(d / "nan.npy", np.array([[np.nan, 0, 0, 0]], np.float32))
    np.save(d / "inf.npy", np.array([[0, -np.inf, 0, 0]], np.float64))
    np.save(d / "bool.npy", np.ones((1, 4), bool))
    np.save(d / "cplx.npy", np.ones((1, 4), complex))
    np.save(d / "obj.npy", np.array([[1, 2, 3, None]], object), allow_pickle=True)
    np.save(d / "ndim3.npy", np.zeros((1, 1, 4), np.float32))
    np.save(d / "wide.npy", np.full((1, 4), 300, np.int32))
    np.savez(d / "two.npz", a=np.zeros(4), b=np.zeros(4))
    (d / "empty.npy").write_bytes(b"")
    (d / "afile").write_text("x")
    (d / "params.json").write_text("[1, 2]")
    (d / "energy.json").write_text(json.dumps(
        {"mult_8x8_pj": "x", "add_32_pj": 0.1, "sram_8kb_pj_per_bit": 0.1}))
    (d / "sp.py").write_text(
        "from hannah_hw.nas.functional_operators.op import search_space\n"
        "@search_space\ndef boom():\n    raise RuntimeError('kaboom')\n")
    for name, text in (("empty.yaml", ""), ("list.yaml", "- 1\n")):
        (d / name).write_text(text)
    (d / "bin.yaml").write_bytes(bytes(range(256)))
    for name, change in (("pop", {"search": {"population": 1}}),
                         ("bits", {"search": {"wbits": 9}}),
                         ("seed", {"search": {"seed": -1}}),
                         ("lanes", {"hardware": {"pe_cols": 100}}),
                         ("clips", {"data": {"dataset": "digits", "kws_clips": 3}}),
                         ("patience", {"train": {"patience": 0}})):
        (d / f"{name}.yaml").write_text(yaml.safe_dump({**FLOW, **change}))
    for name, rec in (("r_empty", "{}"), ("r_list", "[1]"), ("r_nostage", '{"stages": {"x": 1}}'),
                      ("r_result", json.dumps({"stages": {"search": STAGE}})),
                      ("r_config", json.dumps({"config": 5, "stages": {"search": STAGE}}))):
        (d / name).mkdir()
        (d / name / "flow.json").write_text(rec)
    (d / "r_bin").mkdir()
    (d / "r_bin" / "flow.json").write_bytes(b"\xff\xfe\x00garbage")
    return d


BATCH = [
    ("n0.npy", "has no samples (shape (0, 4))"),
    ("empty.npy", "cannot be read as .npy (the file is empty)"),
    ("nan.npy", "1 value(s) are NaN or infinite"),
    ("inf.npy", "NaN or infinite"),
    ("bool.npy", "dtype bool is neither float nor integer"),
    ("cplx.npy", "dtype complex128 is neither float nor integer"),
    ("obj.npy", "cannot be read as .npy"),
    ("ndim3.npy", "shape (1, 1, 4) does not fit the graph's input (N, 4)"),
    ("wide.npy", "outside the input's range [-128, 127]"),
    ("two.npz", "holds several arrays"),
    ("missing.npy", "cannot be read as .npy"),
]
CASES = [
    *[(["infer", "{d}/g.json", "--input", f"{{d}}/{f}", "--output", "{d}/o.npy"], m)
      for f, m in BATCH],
    # the empty batch is refused before a simulator is built
    (["simulate", "{d}/hw", "--input", "{d}/n0.npy", "--output", "{d}/o.npy"], "no samples"),
    (["soc-sim", "{d}/fw", "--input", "{d}/n0.npy", "--output", "{d}/o.npy"], "no samples"),
    (["infer", "{d}/g.json", "--input", "{d}/ok.npy", "--output", "{d}/afile/o.npy"],
     "cannot be written ({d}/afile is a file)"),
    # an output under a file is refused before the simulation, not after it
    (["simulate", "{d}/hw", "--input", "{d}/ok.npy", "--output", "{d}/o.npy", "--report",
      "{d}/afile/r.json"], "--report {d}/afile/r.json: cannot be written"),
    (["soc-sim", "{d}/fw", "--input", "{d}/ok.npy", "--output", "{d}/afile/o.npy"],
     "({d}/afile is a file)"),
    (["cost", "{d}/g.json", "--clock-mhz", "0"], "0.0 is not in the range 0<x<=10000"),
    (["cost", "{d}/g.json", "--clock-mhz", "nan"], "'nan' is not a finite number"),
    (["cost", "{d}/g.json", "--clock-mhz", "inf"], "not in the range"),
    (["cost", "{d}/g.json", "--pe-cols", "0"], "0 is not in the range x>=1"),
    (["cost", "{d}/g.json", "--pe-cols", "100"], "pe_cols=100 outside 1..64"),
    (["cost", "{d}/g.json", "--board", "icebreaker", "--pe-cols", "0"], "not in the range"),
    (["generate", "{d}/g.json", "--out", "{d}/h2", "--pe-rows", "0"], "not in the range x>=1"),
    (["generate", "{d}/g.json", "--out", "{d}/h2", "--pe-cols", "-3"], "not in the range"),
    (["simulate", "{d}/hw", "--input", "{d}/ok.npy", "--output", "{d}/o.npy", "--max-cycles",
      str(2**32)], "not in the range 1<=x<=4294966295"),
    (["simulate", "{d}/hw", "--input", "{d}/ok.npy", "--output", "{d}/o.npy", "--max-cycles",
      "0"], "not in the range"),
    (["simulate", "{d}/hw", "--input", "{d}/ok.npy", "--output", "{d}/o.npy", "--clock-mhz",
      "0"], "not in the range 0<x"),
    (["simulate", "{d}/hw", "--input", "{d}/ok.npy", "--output", "{d}/o.npy", "--rate-hz",
      "-1"], "not in the range x>0"),
    (["simulate", "{d}/hw", "--input", "{d}/ok.npy", "--output", "{d}/o.npy",
      "--energy-table", "{d}/energy.json"], "mult_8x8_pj must be finite numbers >= 0"),
    (["soc-sim", "{d}/fw", "--input", "{d}/ok.npy", "--output", "{d}/o.npy", "--limit", "-1"],
     "-1 is not in the range x>=1"),
    (["soc-sim", "{d}/fw", "--input", "{d}/ok.npy", "--output", "{d}/o.npy", "--max-cycles",
      "0"], "not in the range 1<=x"),
    (["search", SPACE, "--study", "{d}/st", "--population", "0"], "not in the range x>=2"),
    (["search", SPACE, "--study", "{d}/st", "--workers", "0"], "not in the range x>=1"),
    (["search", SPACE, "--study", "{d}/st", "--limit", "-1"], "not in the range x>=1"),
    (["search", SPACE, "--study", "{d}/st", "--budget", "0"], "not in the range x>=1"),
    (["search", SPACE, "--study", "{d}/st", "--seed", "-1"], "not in the range 0<=x"),
    (["search", SPACE, "--study", "{d}/st", "--wbits", "9"], "not in the range 2<=x<=8"),
    (["search", SPACE, "--study", "{d}/st", "--epochs", "-1"], "not in the range x>=0"),
    (["search", SPACE, "--study", "{d}/st", "--kws-clips", "0"], "not in the range x>=12"),
    (["search", "{d}/sp.py:boom", "--study", "{d}/st"], "raised RuntimeError: kaboom"),
    (["space", "show", "{d}/sp.py:boom"], "space '{d}/sp.py:boom' raised RuntimeError: kaboom"),
    (["space", "show", SPACE, "--seed", "-1"], "not in the range"),
    (["space", "show", SPACE, "--save", "{d}/afile/a.json"], "{d}/afile is a file"),
    (["train", "{d}/sp.py:boom", "--dataset", "digits", "--out", "{d}/t"], "kaboom"),
    (["train", SPACE, "--params", "{d}/params.json", "--dataset", "digits", "--out", "{d}/t"],
     "expected a JSON object of parameter values"),
    (["train", SPACE, "--dataset", "digits", "--out", "{d}/t", "--lr", "nan"], "not a finite"),
    (["train", SPACE, "--dataset", "digits", "--out", "{d}/t", "--batch-size", "0"], "x>=1"),
    (["train", SPACE, "--dataset", "digits", "--out", "{d}/t", "--patience", "0"], "x>=1"),
    (["train", SPACE, "--dataset", "digits", "--out", "{d}/t", "--abits", "1"], "2<=x<=8"),
    (["search", "--study", "{d}/st", "--show", "--plot", "{d}/afile/p.png"], "afile is a file"),
    (["bitstream", "{d}/hw", "--board", "ulx3s", "--out", "{d}/bs", "--fwdir", "{d}/fw"],
     "--fwdir goes with --top soc"),
    (["export-onnx", "{d}/g.json", "-o", "/proc/hannah-hw-test.onnx"],
     "/proc/hannah-hw-test.onnx: No such file or directory"),
    (["report", "{d}/r_empty"], "flow.json is corrupt (not a record of flow stages)"),
    (["report", "{d}/r_list"], "flow.json is corrupt"),
    (["report", "{d}/r_nostage"], "flow.json is corrupt"),
    (["report", "{d}/r_bin"], "flow.json is corrupt"),
    (["report", "{d}/r_result"], "records are incomplete or malformed (KeyError"),
    (["report", "{d}/r_config"], "records are incomplete or malformed"),
    (["flow", "{d}/empty.yaml", "--out", "{d}/run"], "the file is empty"),
    (["flow", "{d}/list.yaml", "--out", "{d}/run"], "expected a mapping of sections, got list"),
    (["flow", "{d}/bin.yaml", "--out", "{d}/run"], "not a text file"),
    (["flow", "{d}/missing.yaml", "--out", "{d}/run"], "cannot be read (No such file"),
    (["flow", "{d}/pop.yaml", "--out", "{d}/run"], "search.population must be at least 2"),
    (["flow", "{d}/bits.yaml", "--out", "{d}/run"], "search.wbits must be in 2..8, got 9"),
    (["flow", "{d}/seed.yaml", "--out", "{d}/run"], "search.seed must be in 0..4294967295"),
    (["flow", "{d}/lanes.yaml", "--out", "{d}/run"], "hardware.pe_cols must be in 1..64"),
    (["flow", "{d}/clips.yaml", "--out", "{d}/run"], "data.kws_clips must be at least 12"),
    (["flow", "{d}/patience.yaml", "--out", "{d}/run"], "train.patience must be at least 1"),
]


@pytest.mark.parametrize("args, message", CASES, ids=[" ".join(a[:2]) + f" [{i}]"
                                                      for i, (a, _) in enumerate(CASES)])
def test_broken_arguments_are_one_line(d, args, message):
    r = CliRunner().invoke(main, [a.format(d=d) for a in args])
    assert r.exit_code == 2, (r.output, r.exception)
    assert message.format(d=d) in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert lines[-1].startswith(("hannah-hw: error: ", "Error: ")), r.stderr
    if lines[-1].startswith("hannah-hw:"):
        assert len(lines) == 1, r.stderr


def test_flow_on_a_corrupt_record_is_one_line(d):
    (d / "ok.yaml").write_text(yaml.safe_dump({**FLOW, "space": "nope.py:f"}))
    r = CliRunner().invoke(main, ["flow", str(d / "ok.yaml"), "--out", str(d / "r_list")])
    assert r.exit_code == 2 and "flow.json is corrupt" in r.stderr, r.stderr


def test_outputs_go_where_named_and_numbers_are_kept(d):
    out = d / "new" / "sub" / "y"  # no .npy suffix: np.save would have added one
    r = CliRunner().invoke(main, ["infer", str(d / "g.json"), "--input", str(d / "ok.npy"),
                                  "--output", str(out)])
    assert r.exit_code == 0, r.output
    assert out.is_file() and not out.with_suffix(".npy").exists()
    assert np.load(out).shape == (2, 2)
    r = CliRunner().invoke(main, ["cost", str(d / "g.json"), "--clock-mhz", "0.5"])
    assert r.exit_code == 0 and "at 0.5 MHz" in r.output, r.output  # not the 50 MHz default


def test_no_traceback_in_a_real_process(d):
    """The empty file once ended in click's "Aborted!" (an EOFError it took for Ctrl-D)."""
    r = subprocess.run([sys.executable, "-m", "hannah_hw.cli", "infer", str(d / "g.json"),
                        "--input", str(d / "empty.npy"), "--output", str(d / "o.npy")],
                       capture_output=True, text=True, timeout=120, cwd=ROOT,
                       env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert r.returncode == 2 and "Traceback" not in r.stderr and "Aborted" not in r.stderr
    assert r.stderr == (f"hannah-hw: error: --input {d}/empty.npy: cannot be read as .npy "
                        "(the file is empty)\n")


def test_a_network_without_macs_generates_and_builds_firmware(tmp_path):
    """Pooling only: no parameters, no MACs (an empty parameter memory, no pJ/MAC)."""
    from hannah_hw.accel.energy import per_mac_text
    from hannah_hw.ir.qgraph import from_dict

    t = {"bits": 8, "signed": True, "scale_m": 1, "zero_point": 0, "scale_e": -4}
    d = {"format": "hannah-hw-qgraph", "format_version": 1, "name": "pool", "inputs": ["x"],
         "outputs": ["y"], "tensors": {"x": {"shape": [4, 8], **t}, "y": {"shape": [4, 4], **t}},
         "nodes": [{"op": "maxpool", "name": "p", "inputs": ["x"], "output": "y", "params": {},
                    "attrs": {"kernel": [2], "stride": [2], "padding": [0]}}], "arrays": {}}
    from_dict(d, {}).save(tmp_path / "g.json")
    for args in (["cost", str(tmp_path / "g.json")],
                 ["generate", str(tmp_path / "g.json"), "--out", str(tmp_path / "hw")],
                 ["firmware", str(tmp_path / "hw"), "--out", str(tmp_path / "fw")]):
        r = CliRunner().invoke(main, args)
        assert r.exit_code == 0, (args, r.output, r.exception)
    assert "no MACs" in CliRunner().invoke(main, ["cost", str(tmp_path / "g.json")]).output
    assert per_mac_text(None) == "no MACs" and per_mac_text(1.234) == "1.23 pJ/MAC"
