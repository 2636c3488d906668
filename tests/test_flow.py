"""The end-to-end flow and its report: a small digits flow from search to SoC, resumed and
partly rerun; the report's plots; flow files with mistakes."""

import json

import numpy as np
import pytest
import yaml

from conftest import run_cli
from hannah_hw import flow as flow_mod
from hannah_hw.flow import run_flow
from hannah_hw.flow_config import load_flow_config

SMALL = {
    "name": "digits-small",
    "space": "nas/image_cnn.py:image_cnn",
    "space_args": {"max_macs": 60000},
    "data": {"dataset": "digits"},
    "search": {"strategy": "random", "budget": 3, "epochs": 2, "qat_epochs": 1,
               "objectives": ["error:min", "cycles:min"]},
    "hardware": {"board": "ulx3s", "pe_cols": 4},
    "confirm": {"front": 2, "samples": 2},
    "train": {"epochs": 0},
    "deploy": {"simulate_samples": 4, "soc_samples": 1, "bitstream": [], "cpu": "serv",
               "reference": False},
}


def _write(tmp_path, cfg, name="flow.yaml"):
    p = tmp_path / name
    p.write_text(yaml.safe_dump(cfg))
    return p


def _red_pixels(png) -> int:
    """Pixels of the front's colour (matplotlib's tab:red) in a plot."""
    import matplotlib.image as mpimg

    img = (mpimg.imread(png)[..., :3] * 255).astype(int)
    return int((np.abs(img - [214, 39, 40]).sum(-1) < 30).sum())


@pytest.mark.sim
@pytest.mark.slow
def test_small_flow_end_to_end_resumes_and_reports(tmp_path):
    cfg_path = _write(tmp_path, SMALL)
    run = tmp_path / "run"
    r = run_cli("flow", cfg_path, "--out", run, timeout=1200)
    assert r.returncode == 0, r.stderr[-3000:]
    rec = json.loads((run / "flow.json").read_text())
    st = {k: v["result"] for k, v in rec["stages"].items()}
    assert list(st) == ["search", "confirm", "train", "generate", "simulate", "firmware", "soc",
                        "bitstream", "report"]
    assert st["search"]["candidates"] == 3
    confirmed = st["confirm"]["candidates"]
    assert confirmed and all(e["bit_exact"] for e in confirmed)
    assert st["confirm"]["max_cycle_error"] == 0  # the cost model is the RTL's schedule
    assert st["simulate"]["reference_match"] and st["firmware"]["host_bit_exact"]
    assert st["soc"]["reference_match"] and st["soc"]["cpu"] == "serv"
    assert st["firmware"]["size"]["model_bytes_reference"] == 0
    assert np.array_equal(np.load(run / "hw-outputs.npy"),
                          run_cli_infer(tmp_path, run))

    html = (run / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 4 and "firmware on the SoC" in html
    md = (run / "report.md").read_text()
    assert "| RTL vs interpreter (chosen) | pass |" in md
    assert _red_pixels(run / "report" / "front.png") > 50  # the front is drawn
    assert _red_pixels(run / "report" / "history.png") > 50  # and the running best

    r = run_cli("flow", cfg_path, "--out", run, check=True)  # everything is done
    assert r.stderr.count("skipped") == 9
    changed = {**SMALL, "deploy": {**SMALL["deploy"], "simulate_samples": 2}}
    r = run_cli("flow", _write(tmp_path, changed, "changed.yaml"), "--out", run, check=True)
    assert r.stderr.count("skipped") == 4  # search, confirm, train, generate are kept
    assert json.loads((run / "flow.json").read_text())["stages"]["simulate"]["result"][
        "samples"] == 2


def run_cli_infer(tmp_path, run):
    run_cli("infer", run / "train" / "qgraph.json", "--input", run / "train" / "test_inputs.npy",
            "--output", tmp_path / "ref.npy", check=True)
    return np.load(tmp_path / "ref.npy")[:4]


def test_a_failing_stage_keeps_the_finished_ones(tmp_path, monkeypatch):
    cfg = load_flow_config(_write(tmp_path, SMALL))
    calls = []

    def fake(name):
        def stage(cfg, run, log):
            calls.append(name)
            if name == "train" and calls.count("train") == 1:
                raise KeyboardInterrupt  # as Ctrl-C would
            return {"ok": name}
        return stage

    monkeypatch.setattr(flow_mod, "RUNNERS", {k: fake(k) for k in flow_mod.RUNNERS})
    with pytest.raises(KeyboardInterrupt):
        run_flow(cfg, tmp_path / "run", log=lambda m: None)
    assert set(json.loads((tmp_path / "run" / "flow.json").read_text())["stages"]) == {
        "search", "confirm"}
    run_flow(cfg, tmp_path / "run", log=lambda m: None)
    assert calls == ["search", "confirm", "train", "train", "generate", "simulate", "firmware",
                     "soc", "bitstream", "report"]


@pytest.mark.parametrize("change, message", [
    ({"serach": {}}, "unknown key 'serach'"),
    ({"search": {"budget": "ten"}}, "search.budget must be int, got 'ten'"),
    ({"search": {"budget": 0}}, "search.budget must be at least 1"),
    ({"data": {"dataset": None}}, "data.dataset is required"),
    ({"hardware": {"board": "de10"}}, "hardware.board must be one of icebreaker, ulx3s"),
    ({"search": {"objectives": ["error:up"]}}, "malformed objective 'error:up'"),
    ({"deploy": {"bitstream": ["gpu"]}}, "unknown top(s) ['gpu']"),
    ({"deploy": {"cpu": "z80"}}, "deploy.cpu must be one of picorv32, serv, got 'z80'"),
])
def test_flow_file_mistakes_are_one_line(tmp_path, change, message):
    cfg = {**SMALL, **{k: ({**SMALL[k], **v} if isinstance(v, dict) and k in SMALL else v)
                       for k, v in change.items()}}
    r = run_cli("flow", _write(tmp_path, cfg), "--out", tmp_path / "run")
    assert r.returncode == 2 and message in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_flow_and_report_cli_bad_input(tmp_path):
    (tmp_path / "bad.yaml").write_text("search: [1, 2\n")
    r = run_cli("flow", tmp_path / "bad.yaml", "--out", tmp_path / "run")
    assert r.returncode == 2 and "not valid YAML at line" in r.stderr
    r = run_cli("flow", tmp_path / "missing.yaml", "--out", tmp_path / "run")
    assert r.returncode == 2 and "cannot be read" in r.stderr
    r = run_cli("report", tmp_path)
    assert r.returncode == 2 and "run 'hannah-hw flow' first" in r.stderr
