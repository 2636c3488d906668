"""Corrupt HWDIRs, FWDIRs and energy tables (issue 14): simulate, firmware and soc-sim end in
exit 2 with one line naming the file and the field, before any line of progress. No
simulator is built: the builds are stubbed, and a valid input reaches the stub."""

import hashlib
import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import one_line, tiny_linear_graph
from hannah_hw.cli import main


class ReachedBuild(Exception):
    pass




RV32 = {"target": "rv32", "isa": "rv32i", "cpu": "serv", "ram_bytes": 32768}


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    from hannah_hw.fw.emit import emit_firmware
    from hannah_hw.stages.generate import generate

    d = tmp_path_factory.mktemp("hwdir")
    generate(tiny_linear_graph(), d / "hw")
    emit_firmware(d / "hw", d / "fw")
    (d / "fw" / "firmware.json").write_text(json.dumps({"rv32": RV32}))
    (d / "fw" / "hh_fw.bin").write_bytes(b"\x13\0\0\0" * 8)
    np.save(d / "x.npy", np.zeros((2, 4), np.float32))
    return d


@pytest.fixture
def d(base, tmp_path, monkeypatch):
    """A fresh copy of the HWDIR and FWDIR (the FWDIR pointing at the copy); the builds
    stubbed."""
    import hannah_hw.soc.sim as soc_sim
    import hannah_hw.stages.simulate as simulate_stage

    def stop(*args, **kwargs):
        raise ReachedBuild()

    monkeypatch.setattr(simulate_stage, "build_harness", stop)
    monkeypatch.setattr(soc_sim, "build_soc", stop)
    for name in ("hw", "fw"):
        shutil.copytree(base / name, tmp_path / name)
    shutil.copy(base / "x.npy", tmp_path)
    (tmp_path / "fw" / "hwdir.json").write_text(json.dumps({"hwdir": str(tmp_path / "hw")}))
    return tmp_path


def _rehash(hw, name):
    s = json.loads((hw / "summary.json").read_text())
    s["files"][name] = hashlib.sha256((hw / name).read_bytes()).hexdigest()
    (hw / "summary.json").write_text(json.dumps(s))


def _edit_json(path, edit):
    doc = json.loads(path.read_text())
    path.write_text(json.dumps(edit(doc)))


def _set(key, value):
    def edit(doc):
        doc[key] = value
        return doc
    return edit


def _rv32(**change):
    return lambda doc: {**doc, "rv32": {**RV32, **change}}


def _one_line(r, *words):
    assert not isinstance(r.exception, ReachedBuild), "the input reached the build"
    return one_line(r, *words)


def _simulate(d, *opts):
    return CliRunner().invoke(main, ["simulate", str(d / "hw"), "--input", str(d / "x.npy"),
                                     "--output", str(d / "y.npy"), *opts])


def _soc_sim(d):
    return CliRunner().invoke(main, ["soc-sim", str(d / "fw"), "--input", str(d / "x.npy"),
                                     "--output", str(d / "y.npy")])


def test_the_valid_inputs_reach_the_builds(d):
    assert isinstance(_simulate(d).exception, ReachedBuild)
    assert isinstance(_soc_sim(d).exception, ReachedBuild)


SUMMARY = [
    (lambda doc: 0, "0 where a JSON object belongs"),
    (lambda doc: [doc], "a list of 1 where a JSON object belongs"),
    (_set("files", 1), "files is 1; must be an object"),
    (lambda doc: {**doc, "files": {**doc["files"], "accel.v": ["x"]}},
     "files.accel.v is a list of 1; must be a string"),
    (_set("family", "gowin"), "family is 'gowin'; must be one of null, ecp5, ice40"),
    (lambda doc: {k: v for k, v in doc.items() if k != "files"}, "lacks files"),
]


@pytest.mark.parametrize("edit, message", SUMMARY)
@pytest.mark.parametrize("command", ["simulate", "firmware", "soc-sim"])
def test_a_corrupt_summary_is_one_line(d, command, edit, message):
    _edit_json(d / "hw" / "summary.json", edit)
    r = _simulate(d) if command == "simulate" else _soc_sim(d) if command == "soc-sim" else \
        CliRunner().invoke(main, ["firmware", str(d / "hw"), "--out", str(d / "fw2")])
    _one_line(r, "summary.json: ", message)
    assert not (d / "fw2").exists()


def test_a_summary_not_utf8_is_one_line(d):
    p = d / "hw" / "summary.json"
    p.write_bytes(p.read_bytes() + b"\xff\xfe")
    _one_line(_simulate(d), "summary.json: not a text file (not UTF-8)")


def test_an_energy_table_not_an_object_is_one_line(d):
    for text, message in (("0", "0 where a JSON object belongs"), ("[1]", "a list of 1"),
                          ("{", "not JSON"), ('{"add_32_pj": 1}', "lacks mult_8x8_pj")):
        (d / "e.json").write_text(text)
        _one_line(_simulate(d, "--energy-table", str(d / "e.json")), "e.json", message)


@pytest.mark.parametrize("blocks, lanes, message", [
    (0, None, "descriptor 0 reads parameter rows 0..0; the Program has 0"),
    (1, 3, "the configuration takes integers of shape [rows, {pe_cols}, 3]"),
])
def test_params_that_do_not_fit_are_one_line(d, blocks, lanes, message):
    hw = d / "hw"
    pe_cols = json.loads((hw / "config.json").read_text())["pe_cols"]
    lanes = lanes or pe_cols
    with np.load(hw / "program.npz") as z:  # weights and params agree on the lanes
        weights = z["weights"][:, :lanes]
    np.savez_compressed(hw / "program.npz", weights=weights,
                        params=np.zeros((blocks, lanes, 3), np.int64))
    _rehash(hw, "program.npz")
    _one_line(_simulate(d), "program.", message.format(pe_cols=pe_cols))


def test_a_descriptor_with_no_groups_is_one_line(d):
    hw = d / "hw"
    _edit_json(hw / "program.json", lambda doc: {**doc, "descriptors": [
        {**doc["descriptors"][0], "groups": 0}]})
    _rehash(hw, "program.json")
    _one_line(_simulate(d), "program.json: descriptor 0: groups=0: must be at least 1")


def test_max_cycles_below_any_inference_is_refused_before_the_build(d):
    _one_line(_simulate(d, "--max-cycles", "1"), "--max-cycles 1: an inference of",
              "takes at least")


FIRMWARE_JSON = [
    (lambda doc: 1, "firmware.json: 1 where a JSON object belongs"),
    (_set("rv32", [1]), "firmware.json: rv32 is a list of 1; must be an object"),
    (_rv32(ram_bytes="x"), "rv32.ram_bytes is 'x'; must be an integer"),
    (_rv32(ram_bytes=32769), "rv32.ram_bytes is 32769; must be one of 32768"),
    (_rv32(ram_bytes=2**70), "rv32.ram_bytes is an integer of about 22 digits"),
    (_rv32(isa="rv32imc"), "rv32.isa is 'rv32imc'; must be one of rv32i"),
    (_rv32(cpu=7), "rv32.cpu is 7; must be a string"),
    (lambda doc: {"rv32": {k: v for k, v in RV32.items() if k != "ram_bytes"}},
     "lacks rv32.ram_bytes"),
    (lambda doc: {}, "no rv32 build; run 'hannah-hw firmware --target rv32'"),
]


@pytest.mark.parametrize("edit, message", FIRMWARE_JSON)
def test_a_corrupt_build_record_is_one_line(d, edit, message):
    _edit_json(d / "fw" / "firmware.json", edit)
    _one_line(_soc_sim(d), message)


@pytest.mark.parametrize("content, message", [
    (b"{", "firmware.json: not JSON"), (b'{"rv32": 1}\xff', "not a text file (not UTF-8)"),
    (b"", "firmware.json: not JSON")])
def test_a_garbled_build_record_is_one_line(d, content, message):
    (d / "fw" / "firmware.json").write_bytes(content)
    _one_line(_soc_sim(d), message)


@pytest.mark.parametrize("doc, message", [
    ({"hwdir": [1]}, "hwdir.json: hwdir is a list of 1; must be a string"),
    ({"hwdir": ""}, "hwdir.json: hwdir is ''; must be the path of a hardware directory"),
    ({"hw": "x"}, "hwdir.json: lacks hwdir"),
    (0, "hwdir.json: 0 where a JSON object belongs"),
])
def test_a_corrupt_hwdir_link_is_one_line(d, doc, message):
    (d / "fw" / "hwdir.json").write_text(json.dumps(doc))
    _one_line(_soc_sim(d), message)


def test_the_image_is_checked_before_the_build(d):
    image = d / "fw" / "hh_fw.bin"
    image.unlink()
    _one_line(_soc_sim(d), "hh_fw.bin: missing; run 'hannah-hw firmware --target rv32'")
    image.mkdir()
    _one_line(_soc_sim(d), "hh_fw.bin: not a file")
    image.rmdir()
    image.write_bytes(b"")
    _one_line(_soc_sim(d), "hh_fw.bin: 0 bytes")
    image.write_bytes(b"\0" * 32772)
    _one_line(_soc_sim(d), "hh_fw.bin: 32,772 bytes", "32,768 bytes of the SoC's RAM")


def test_a_build_replaces_a_garbled_record(tmp_path):
    from hannah_hw.fw.build import FirmwareError, _record

    (tmp_path / "firmware.json").write_bytes(b"\xff[")
    assert _record(tmp_path, strict=False) == {}
    with pytest.raises(FirmwareError, match="firmware.json: not a text file"):
        _record(tmp_path)


def test_param_words_of_no_blocks(base):
    from hannah_hw.accel.config import AccelConfig
    from hannah_hw.accel.hwdesc import HwLayout, param_words

    cfg = AccelConfig.load(base / "hw" / "config.json")
    words = param_words(np.zeros((0, cfg.pe_cols, 3), np.int64), cfg)
    assert words.shape == (0, HwLayout(cfg).param_words)


def test_a_loop_bound_of_zero_is_refused(d):
    """k_h = 0 once ran the accelerator's loop around its counter: a hang, not an error."""
    hw = d / "hw"
    _edit_json(hw / "program.json", lambda doc: {**doc, "descriptors": [
        {**doc["descriptors"][0], "k_h": 0}]})
    _rehash(hw, "program.json")
    _one_line(_simulate(d), "program.json: descriptor 0: descriptor field k_h=0 is outside 1..")


def test_min_cycles_is_below_the_cost_model(base):
    from hannah_hw.hw.hwdir import load_hwdir
    from hannah_hw.stages.simulate import min_cycles

    _, cfg, prog = load_hwdir(base / "hw")
    predicted = json.loads((base / "hw" / "summary.json").read_text())["predicted_cycles"]
    assert 0 < min_cycles(prog, cfg) <= predicted


def test_a_configuration_that_disagrees_with_its_summary_or_program_is_refused(d):
    """Once simulated with outputs that differed: config.json edited (and rehashed) away
    from what accel.v was generated for, or without a unit the Program uses."""
    hw = d / "hw"
    _edit_json(hw / "config.json", lambda doc: {**doc, "units": doc["units"][1:] or ["add"]})
    _rehash(hw, "config.json")
    _one_line(_simulate(d), "config.json and summary.json's config disagree")
    _edit_json(hw / "summary.json", lambda doc: {
        **doc, "config": json.loads((hw / "config.json").read_text())})
    _one_line(_simulate(d), "program.json: descriptor 0 is a linear; the configuration has no "
              "such unit")


def test_an_older_hwdir_without_the_family_in_its_config(d):
    """config.json from before it held the FPGA family: generic memories, unless the summary
    named a family (generate --fit), which config.json no longer shows: refused."""
    hw = d / "hw"
    _edit_json(hw / "config.json", lambda doc: {k: v for k, v in doc.items() if k != "family"})
    _rehash(hw, "config.json")
    _edit_json(hw / "summary.json", lambda doc: {
        **doc, "config": json.loads((hw / "config.json").read_text())})
    assert isinstance(_simulate(d).exception, ReachedBuild)
    _edit_json(hw / "summary.json", _set("family", "ice40"))
    _one_line(_simulate(d), "config.json and summary.json's config disagree")


def test_the_simulation_report_keeps_its_json(base):
    """SimReport.to_dict is the JSON simulate --report, the flow and the benchmarks write:
    its keys in order, each layer's counters in COUNTERS order."""
    from dataclasses import fields

    from hannah_hw.accel.hwdesc import COUNTERS
    from hannah_hw.accel.schedule import layer_events
    from hannah_hw.hw.hwdir import load_hwdir
    from hannah_hw.simulate.report import LayerReport
    from hannah_hw.stages.simulate import measured_report

    _, cfg, prog = load_hwdir(base / "hw")
    stats = [{**{k: m[k] for k in COUNTERS}, "name": "fc"}
             for m in (layer_events(d, cfg) for d in prog.descriptors)]
    y = np.arange(4).reshape(2, 2)
    rep = measured_report(cfg, prog, [stats, stats], y, y + (y == 3),
                          {"sim_cycles": 100, "sim_seconds": 0.5})
    d = rep.to_dict()
    assert list(d) == [
        "cycles", "macs", "mac_units", "utilization", "energy_pj", "energy_uj", "pj_per_mac",
        "average_power_uw", "ratio_to_floor", "latency_s", "predicted_cycles",
        "predicted_energy_pj", "cycle_error", "energy_error", "clock_hz", "rate_hz",
        "energy_table", "layers", "samples", "cycles_min", "cycles_max", "reference_match",
        "mismatching_outputs", "sim_cycles", "sim_seconds", "sim_cycles_per_s"]
    assert [f.name for f in fields(LayerReport)][2:2 + len(COUNTERS)] == list(COUNTERS)
    assert list(d["layers"][0]) == [f.name for f in fields(LayerReport)]
    assert d["cycles"] == d["predicted_cycles"] == d["cycles_min"] == stats[0]["cycles"]
    assert d["cycle_error"] == d["energy_error"] == 0.0 and d["samples"] == 2
    assert not d["reference_match"] and d["mismatching_outputs"] == 1
    assert d["sim_cycles_per_s"] == 200.0 and json.loads(json.dumps(d)) == d
