"""Issue 14 regressions for ``flow``, ``report`` and ``infer`` (found by tests/test_hostile.py):
every flow-file mistake is one line naming the file and the key before any stage runs (the
space, strategy and metric names included), odd YAML is refused in bounded time, a malformed
RUNDIR and a garbled X.npy header are one line, not a traceback."""

import json

import pytest
import yaml
from click.testing import CliRunner

from conftest import ROOT, one_line, tiny_linear_graph
from hannah_hw.cli import main

SPACE = f"{ROOT}/nas/image_cnn.py:image_cnn"
FLOW = {"space": SPACE, "space_args": {"max_macs": 60000}, "data": {"dataset": "digits"},
        "search": {"strategy": "random", "budget": 3, "objectives": ["error:min",
                                                                    "cycles:min"]}}
STAGE = {"key": "k", "seconds": 1.0, "finished": "now", "result": {"ok": 1}}




def _flow(tmp_path, text):
    p = tmp_path / "flow.yaml"
    p.write_text(text) if isinstance(text, str) else p.write_bytes(text)
    r = CliRunner().invoke(main, ["flow", str(p), "--out", str(tmp_path / "run")])
    assert not (tmp_path / "run").exists()  # refused before any work
    return r


@pytest.mark.parametrize("change, key, message", [
    ({"space": "epochs"}, "space 'epochs'", "expected FILE.py:FUNCTION"),
    ({"space": f"{ROOT}/nas/nope.py:image_cnn"}, "space file ", "does not exist"),
    ({"space": "~no-such-user-here/x.py:f"}, "space '~no-such-user-here", "home directory"),
    ({"space": "a/" * 3000 + "x.py:f"}, "space 'a/a/", "File name too long"),
    ({"space_args": {"nope": 1}}, "space_args:", "unexpected keyword argument 'nope'"),
    ({"search": {"strategy": "objectives"}}, "search.strategy must be one of random",
     "got 'objectives'"),
    ({"search": {"objectives": ["cpu:min"]}}, "search.objectives:",
     "unknown objective metric 'cpu'"),
    ({"search": {"constraints": ["cpu<=3"]}}, "search.constraints:",
     "unknown constraint metric 'cpu'"),
])
def test_flow_space_strategy_and_metrics_are_checked_before_any_stage(tmp_path, change, key,
                                                                      message):
    cfg = {**FLOW, **{k: ({**FLOW[k], **v} if isinstance(v, dict) and k in FLOW else v)
                      for k, v in change.items()}}
    r = _flow(tmp_path, yaml.safe_dump(cfg))
    line = one_line(r, f"{tmp_path}/flow.yaml: {key}", message)
    assert "[1/9]" not in r.output and len(line) < 2000


BASE = yaml.safe_dump(FLOW)


@pytest.mark.parametrize("text, message", [
    (BASE.replace("budget: 3", "budget: " + "9" * 5000),
     "cannot read this int: Exceeds the limit (4300 digits)"),
    (BASE.replace("budget: 3", "budget: 0x" + "f" * 2000), "search.budget: integer too large"),
    (BASE.replace("space_args:\n", "space_args:\n" + "".join(
        f"  a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10 if i else ["1"] * 10) + "]\n"
        for i in range(9))), "space_args.a4 expands to more than 100,000 values"),
    (BASE + "name: a\nname: b\n", "key 'name' given twice"),
    (BASE + "name: 2024-13-45\n", "cannot read this timestamp: month must be in 1..12"),
    (BASE.replace("space_args:\n", "space_args:\n  when: 2024-01-01\n"),
     "space_args.when: a YAML date value"),
    (BASE.replace("space_args:\n", "space_args:\n  me: &m [*m]\n"),
     "space_args.me[0] contains itself"),
    (BASE + 'name: "a\\0b"\n', "name: text with a NUL"),
    (BASE.replace("max_macs: 60000", "max_macs: " + "[" * 3000 + "]" * 3000),
     "nested too deeply"),
    (BASE + "#" * (2 << 20) + "\n", "larger than 1 MiB"),
    ("!!python/object/apply:os.system ['true']\n", "could not determine a constructor"),
])
def test_odd_yaml_is_refused_inone_line(tmp_path, text, message):
    one_line(_flow(tmp_path, text), f"{tmp_path}/flow.yaml: ", message)


def test_yaml_merge_keys_may_override(tmp_path, monkeypatch):
    """``<<: *base`` and then a key of base is not a duplicate."""
    from hannah_hw.flow_config import load_flow_config

    p = tmp_path / "flow.yaml"
    p.write_text(BASE.replace("search:\n", "search:\n  <<: {budget: 7, epochs: 1}\n"))
    cfg = load_flow_config(p)
    assert cfg["search"]["budget"] == 3 and cfg["search"]["epochs"] == 1


def _rundir(tmp_path, rec, files=None):
    run = tmp_path / "run"
    run.mkdir()
    (run / "flow.json").write_text(json.dumps(rec))
    for name, doc in (files or {}).items():
        (run / name).parent.mkdir(parents=True, exist_ok=True)
        (run / name).write_text(json.dumps(doc))
    return run


def test_report_of_odd_record_values(tmp_path):
    run = _rundir(tmp_path, {"config": {"name": 5, "space": -1},
                             "stages": {"x": STAGE}})
    r = CliRunner().invoke(main, ["report", str(run)])
    assert r.exit_code == 0, (r.output, r.exception)
    assert "<td>-1</td>" in (run / "report.html").read_text()


def test_report_of_a_huge_number_and_no_figure_left_open(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layer = {"op": "conv", "cycles": 1, "predicted_cycles": 1, "utilization": -2**70}
    run = _rundir(tmp_path, {"stages": {"x": STAGE}}, {
        "sim-report.json": {"layers": [layer], "cycles": 1, "utilization": 0.5},
        "search/summary.json": {"config": {"objectives": ["macs:min"], "strategy": "random"},
                                "rows": [{"number": 0, "state": "done", "feasible": True,
                                          "metrics": {"macs": 1.0}}]}})  # no "pareto"
    before = plt.get_fignums()
    for _ in range(3):
        r = CliRunner().invoke(main, ["report", str(run)])
        one_line(r, "records are incomplete or malformed (KeyError: 'pareto')")
    (run / "search" / "summary.json").unlink()
    one_line(CliRunner().invoke(main, ["report", str(run)]), "(OverflowError: ")
    assert plt.get_fignums() == before


def _npy(header: bytes, data: bytes = b"\0" * 16) -> bytes:
    """A version 1.0 .npy file with ``header`` as its (unchecked) header."""
    header = header.ljust(127 - 10) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + data


@pytest.mark.parametrize("header", [
    b"{'descr': '<f4', 'fortran_order': False, 'shape': (1,",  # tokenize's TokenError
    b"\xff\xfe{'descr': '<f4'",
    b"{'descr': '<f4', 'fortran_order': False, 'shape': (2**62, 2**62), }",
    b"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999), }",
])
def test_infer_on_a_garbled_npy_header_isone_line(tmp_path, header):
    tiny_linear_graph().save(tmp_path / "g.json")
    (tmp_path / "x.npy").write_bytes(_npy(header))
    r = CliRunner().invoke(main, ["infer", str(tmp_path / "g.json"), "--input",
                                  str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy")])
    one_line(r, f"--input {tmp_path}/x.npy: cannot be read as .npy")


def test_a_message_with_line_breaks_stays_onone_line(tmp_path):
    p = tmp_path / "a\nb.yaml"
    r = CliRunner().invoke(main, ["flow", str(p), "--out", str(tmp_path / "run")])
    one_line(r, "cannot be read")
