"""The end-to-end flow: hardware-aware search -> the Pareto front confirmed in RTL simulation
-> the chosen network trained, generated, simulated, given firmware, run on the SoC and built
into a bitstream -> the report. RUNDIR/flow.json records every finished stage with the key of
the settings it ran with, written atomically: a rerun skips what is done, and a run killed in
any way loses only the stage it was in (the search inside that stage keeps every candidate)."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from hannah_hw.flow_config import (
    RECORD,
    STAGES,
    FlowError,
    check_space,
    read_record,
    stage_keys,
    without_secrets,
)
from hannah_hw.fpga.boards import board
from hannah_hw.fw.build import build_firmware, run_host
from hannah_hw.ir.interpreter import quantize_input
from hannah_hw.ir.interpreter import run as interpret
from hannah_hw.ir.qgraph import QGraph
from hannah_hw.nas.archspec import ArchSpec, canonical_ref
from hannah_hw.nas.search.objectives import SearchConfigError
from hannah_hw.qat.settings import TrainSettings
from hannah_hw.report import write_report
from hannah_hw.stages.generate import generate
from hannah_hw.stages.price import HardwareSettings, evaluation_settings, search_evaluator
from hannah_hw.stages.simulate import simulate
from hannah_hw.stages.soc_sim import soc_simulate
from hannah_hw.util.files import write_if_changed

Log = Callable[[str], None]


def _write_json(path: Path, data) -> None:

    write_if_changed(path, json.dumps(data, indent=2, default=_plain) + "\n")


def _plain(v):
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, Path):
        return str(v)
    raise TypeError(f"{type(v).__name__} is not JSON serialisable")


def search_config(cfg: dict):
    from hannah_hw.nas.search.study import SearchConfig
    from hannah_hw.qat.datasets import space_kwargs_for

    s, d, hw = cfg["search"], cfg["data"], cfg["hardware"]
    training = TrainSettings(dataset=d["dataset"], epochs=s["epochs"], qat_epochs=s["qat_epochs"],
                             wbits=s["wbits"], abits=s["abits"], limit=d["limit"],
                             kws_clips=d["kws_clips"])
    return SearchConfig(
        space=canonical_ref(cfg["space"]),
        space_kwargs={**space_kwargs_for(d["dataset"]), **cfg["space_args"]},
        strategy=s["strategy"], budget=s["budget"], population=s["population"],
        objectives=tuple(s["objectives"]), constraints=tuple(s["constraints"]), seed=s["seed"],
        evaluation=evaluation_settings(
            training, HardwareSettings(pe_cols=hw["pe_cols"], board=hw["board"])))


def _search(cfg: dict, run: Path, log: Log) -> dict:
    from hannah_hw.nas.search.runner import run_search, summary
    from hannah_hw.nas.search.study import storage_url

    sdir = run / "search"
    url = storage_url(sdir, cfg["search"]["storage"])
    t0 = time.perf_counter()
    try:
        run_search(search_config(cfg), sdir, url, workers=cfg["search"]["workers"],
                   evaluators=search_evaluator)
    except SearchConfigError as e:
        raise FlowError(f"search in {sdir}: {e}".replace("--study directory", "RUNDIR")) from None
    s = summary(url)
    _write_json(sdir / "summary.json", s)
    done = [r for r in s["rows"] if r["state"] == "done"]
    if not s["pareto"]:
        first = next((r["error"] for r in s["rows"] if r["state"] == "failed"), "")
        raise FlowError(f"search in {sdir}: no feasible candidate among {len(s['rows'])}"
                        + (f" (first error: {first})" if first else
                           "; loosen search.constraints or raise search.budget"))
    log(f"{len(done)} candidates evaluated, {len(s['pareto'])} on the Pareto front")
    return {"candidates": len(done), "failed": len(s["rows"]) - len(done),
            "front": s["pareto"], "seconds": time.perf_counter() - t0}


def _front_members(s: dict, k: int) -> list[dict]:
    """Up to ``k`` front members spread evenly along the first objective."""
    first = s["config"]["objectives"][0].split(":")[0]
    front = sorted((r for r in s["rows"] if r["number"] in s["pareto"]),
                   key=lambda r: r["metrics"][first])
    if len(front) <= k:
        return front
    idx = sorted({round(i * (len(front) - 1) / (k - 1)) for i in range(k)}) if k > 1 else [0]
    return [front[i] for i in idx]


def _confirm(cfg: dict, run: Path, log: Log) -> dict:
    """Generate and simulate front members: measured cycles and energy beside the predictions
    the search used, and bit-exactness of the RTL against the interpreter."""

    sdir = run / "search"
    s = json.loads((sdir / "summary.json").read_text())
    x = np.load(sdir / "test_inputs.npy")[:cfg["confirm"]["samples"]]
    out = []
    for r in _front_members(s, cfg["confirm"]["front"]):
        stem = f"trial_{r['number']:05d}"
        g = QGraph.load(sdir / "qgraphs" / f"{stem}.json")
        hwdir = run / "confirm" / stem
        _generate(g, hwdir, cfg)
        _, rep = simulate(hwdir, quantize_input(g, x), clock_hz=_clock_hz(cfg))
        m = r["metrics"]
        entry = {"number": r["number"], "metrics": m, "measured_cycles": rep.cycles,
                 "predicted_cycles": m["cycles"], "measured_energy_uj": rep.energy_uj,
                 "predicted_energy_uj": m["energy_uj"],
                 "cycle_error": (m["cycles"] - rep.cycles) / rep.cycles,
                 "energy_error": (m["energy_uj"] - rep.energy_uj) / rep.energy_uj,
                 "utilization": rep.utilization, "bit_exact": rep.reference_match}
        out.append(entry)
        log(f"candidate {r['number']}: {rep.cycles:,} cycles measured, "
            f"{int(m['cycles']):,} predicted; RTL "
            f"{'==' if rep.reference_match else '!='} interpreter")
    if not all(e["bit_exact"] for e in out):
        raise FlowError("RTL simulation differs from the interpreter for candidate(s) "
                        f"{[e['number'] for e in out if not e['bit_exact']]}")
    return {"candidates": out,
            "max_cycle_error": max((abs(e["cycle_error"]) for e in out), default=0.0),
            "max_energy_error": max((abs(e["energy_error"]) for e in out), default=0.0)}


def _clock_hz(cfg: dict) -> float:
    """The board's bitstream clock: the one the search priced latency and leakage at."""

    return board(cfg["hardware"]["board"]).target_hz


def _generate(g, hwdir: Path, cfg: dict) -> dict:

    hw = cfg["hardware"]
    return generate(g, hwdir, pe_cols=hw["pe_cols"], fit=hw["board"])


def _train(cfg: dict, run: Path, log: Log) -> dict:
    """The chosen network: the confirmed candidate minimising ``train.choose``, trained
    again for longer (or, with ``train.epochs: 0``, the search's own model)."""
    from hannah_hw.qat.pipeline import TrainConfig, train_qat

    confirmed = read_record(run)["stages"]["confirm"]["result"]["candidates"]
    key = cfg["train"]["choose"]
    if any(key not in e["metrics"] for e in confirmed):
        raise FlowError(f"train.choose: {key!r} is not a search metric; choose from "
                        f"{', '.join(sorted(confirmed[0]['metrics']))}")
    best = min(confirmed, key=lambda e: (e["metrics"][key], e["measured_cycles"]))
    stem = f"trial_{best['number']:05d}"
    spec = ArchSpec.load(run / "search" / "archs" / f"{stem}.json")
    tdir = run / "train"
    log(f"chosen: candidate {best['number']} ({key} {best['metrics'][key]:.4g})")
    t, d, s = cfg["train"], cfg["data"], cfg["search"]
    mine = json.dumps({"candidate": best["number"], "train": t, "data": d,
                       "bits": [s["wbits"], s["abits"], s["seed"]]}, sort_keys=True)
    if (tdir / "chosen.json").is_file() and (tdir / "chosen.json").read_text() != mine:
        shutil.rmtree(tdir)  # another choice or other settings: its checkpoints do not apply
    tdir.mkdir(parents=True, exist_ok=True)
    (tdir / "chosen.json").write_text(mine)
    if t["epochs"] == 0:
        QGraph.load(run / "search" / "qgraphs" / f"{stem}.json").save(tdir / "qgraph.json")
        shutil.copy(run / "search" / "test_inputs.npy", tdir / "test_inputs.npy")
        spec.save(tdir / "arch.json")
        metrics = {k: best["metrics"].get(k) for k in ("float_accuracy", "accuracy")}
        metrics["quant_accuracy"] = metrics.pop("accuracy")
    else:
        tc = TrainConfig(d["dataset"], t["epochs"], t["qat_epochs"], s["wbits"], s["abits"],
                         seed=s["seed"], patience=t["patience"], data_dir=d["data_dir"],
                         kws_clips=d["kws_clips"], limit=d["limit"])
        metrics = train_qat(spec, tc, tdir)
    return {"candidate": best["number"], "choose": key,
            "float_accuracy": metrics["float_accuracy"],
            "quant_accuracy": metrics["quant_accuracy"], "bit_exact": metrics.get("bit_exact"),
            "search_accuracy": best["metrics"].get("accuracy")}


def _batch(run: Path, n: int):

    g = QGraph.load(run / "train" / "qgraph.json")
    return g, quantize_input(g, np.load(run / "train" / "test_inputs.npy")[:n])


def _generate_stage(cfg: dict, run: Path, log: Log) -> dict:
    g, _ = _batch(run, 1)
    s = _generate(g, run / "hw", cfg)
    log(f"{s['mac_units']} MAC lanes, predicted {s['predicted_cycles']:,} cycles per inference")
    return {k: s[k] for k in ("config", "mac_units", "memory_bits", "predicted_cycles",
                              "predicted_utilization", "macs")}


def _simulate(cfg: dict, run: Path, log: Log) -> dict:

    g, x = _batch(run, cfg["deploy"]["simulate_samples"])
    y, rep = simulate(run / "hw", x, clock_hz=_clock_hz(cfg))
    np.save(run / "hw-outputs.npy", y)
    _write_json(run / "sim-report.json", rep.to_dict())
    if not rep.reference_match:
        raise FlowError(f"RTL outputs differ from the interpreter in {rep.mismatching_outputs}"
                        " integers (see sim-report.json)")
    log(f"{len(x)} inputs: {rep.cycles:,} cycles, U = {rep.utilization:.3f}, "
        f"{rep.energy_uj:.3f} uJ per inference; RTL == interpreter")
    return {k: getattr(rep, k) for k in (
        "samples", "cycles", "utilization", "energy_uj", "pj_per_mac", "ratio_to_floor",
        "latency_s", "predicted_cycles", "cycle_error", "energy_error", "reference_match",
        "clock_hz", "sim_cycles_per_s")}


def _firmware(cfg: dict, run: Path, log: Log) -> dict:
    from hannah_hw.fw.emit import emit_firmware

    fw = emit_firmware(run / "hw", run / "fw")
    host = build_firmware(fw, "host")
    dep = cfg["deploy"]
    rv32 = build_firmware(fw, "rv32", None, dep["reference"], dep["cpu"])
    g, x = _batch(run, cfg["deploy"]["simulate_samples"])
    y = run_host(fw, x, g.tensors[g.outputs[0]].shape)
    same = bool(np.array_equal(y, interpret(g, x)))
    if not same:
        raise FlowError("the firmware's reference kernels on the host differ from the interpreter")
    log(f"host and rv32 builds ({rv32['isa']} on {rv32['cpu']}); host reference kernels == "
        f"interpreter on {len(x)} inputs")
    return {"host_bit_exact": same, "samples": len(x), "cppcheck": host.get("cppcheck"),
            "size": rv32["size"], "ram_bytes": rv32["ram_bytes"], "cpu": rv32["cpu"],
            "isa": rv32["isa"], "reference": rv32["reference"]}


def _soc(cfg: dict, run: Path, log: Log) -> dict:

    g, x = _batch(run, cfg["deploy"]["soc_samples"])
    y, rep = soc_simulate(run / "fw", x, g.tensors[g.outputs[0]].shape)
    rep["reference_match"] = bool(np.array_equal(y, interpret(g, x)))
    _write_json(run / "soc-report.json", rep)
    if not rep["reference_match"]:
        raise FlowError("the firmware on the simulated SoC differs from the interpreter")
    log(f"{len(x)} inputs on {rep['cpu']} + accelerator: {rep['cycles']:,} cycles end to end, "
        f"driver {100 * rep['driver_share']:.2f} %; SoC == interpreter")
    return {k: rep[k] for k in ("cycles", "accel_cycles", "dma_cycles", "driver_cycles",
                                "driver_share", "reference_match", "sim_cycles_per_s", "cpu",
                                "isa")}


def _bitstream(cfg: dict, run: Path, log: Log) -> dict:
    from hannah_hw.fpga.build import build_bitstream

    board, out = cfg["hardware"]["board"], {}
    for top in cfg["deploy"]["bitstream"]:
        rep = build_bitstream(run / "hw", board, run / f"bitstream-{top}", top=top,
                              fwdir=run / "fw")
        out[top] = rep
        log(f"{top} on {board}: {rep['bitstream']}")
    return out


def _report(cfg: dict, run: Path, log: Log) -> dict:
    html, md = write_report(run)
    log(f"wrote {html} and {md}")
    return {"html": str(html), "markdown": str(md)}


RUNNERS = {"search": _search, "confirm": _confirm, "train": _train,
           "generate": _generate_stage, "simulate": _simulate, "firmware": _firmware,
           "soc": _soc, "bitstream": _bitstream, "report": _report}
assert list(RUNNERS) == list(STAGES)


def run_flow(cfg: dict, rundir: Path, log: Log = print, where: str = "flow file") -> dict:
    """Run the stages not yet done with these settings; returns the record. ``where`` (the
    flow file) names the source of a configuration error."""
    rundir = Path(rundir)
    rec = read_record(rundir)
    check_space(cfg, str(where))  # before any stage, and before RUNDIR is made
    rundir.mkdir(parents=True, exist_ok=True)
    rec["config"] = without_secrets(cfg)
    keys = stage_keys(cfg)
    stale = False
    for i, (stage, fn) in enumerate(RUNNERS.items(), 1):
        done = rec["stages"].get(stage)
        if done and done["key"] == keys[stage] and not stale:
            log(f"[{i}/{len(RUNNERS)}] {stage}: done ({done['seconds']:.0f} s), skipped")
            continue
        stale = True  # a stage rerun makes every later one stale
        log(f"[{i}/{len(RUNNERS)}] {stage} ...")
        t0 = time.perf_counter()
        result = fn(cfg, rundir, lambda msg, s=stage: log(f"    {s}: {msg}"))
        rec["stages"][stage] = {"key": keys[stage], "seconds": time.perf_counter() - t0,
                                "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
                                "result": result}
        _write_json(rundir / RECORD, rec)
    return rec
