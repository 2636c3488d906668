"""Issue 14's acceptance suite: hostile inputs for every command that reads a file.

Small valid artefacts are made once (a QGraph, its X.npy, quantised ONNX models, a HWDIR, a
FWDIR, a flow file and a RUNDIR); hypothesis mutates them (tests/hostile_inputs.py) and runs
the CLI in-process on each mutant in a fresh directory. Every case must end in one of:

* exit 0 with a sane result (the output exists, loads, has the right shape and range),
* exit 2 with exactly one line on stderr, ``hannah-hw: error: ...`` (or click's own usage
  error for a bad option value),
* "validated": the input passed every check up to the Verilator build (simulate, soc-sim)
  or the search's first candidate (flow), where a stub stops the case,

never a traceback, never a write outside the command's outputs (the case's directory and the
shared artefacts are compared before and after), never a hang past the case's time limit.

Outcomes are counted per command and written to ``$HOSTILE_SUMMARY`` (default
``/tmp/hostile_summary.json``). Longer runs: ``HOSTILE_SCALE=20`` (examples x 20) or
``HOSTILE_EXAMPLES=N`` (N per command), ``HOSTILE_SEED=S`` (other cases than the default
derandomised ones), ``HOSTILE_REPRO_DIR=DIR`` (the inputs and command of each distinct failure),
``HOSTILE_SIM=1`` (simulate runs the real, shared Verilator build when accel.v is unchanged).
"""

from __future__ import annotations

import copy
import json
import os
import resource
import shutil
import signal
import stat
import tempfile
import time
import traceback
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from hostile_inputs import (
    DIRECTORY,
    bytes_mutation,
    is_finite_number,
    json_mutation,
    npy_bytes,
    npy_mutation,
    npz_bytes,
    npz_mutation,
    onnx_mutation,
    write_content,
)
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from hannah_hw.cli import main

ROOT = Path(__file__).resolve().parents[1]
SCALE = float(os.environ.get("HOSTILE_SCALE", "1"))
FIXED = os.environ.get("HOSTILE_EXAMPLES")
SEED = os.environ.get("HOSTILE_SEED")
SUMMARY = Path(os.environ.get("HOSTILE_SUMMARY",
                              Path(tempfile.gettempdir()) / "hostile_summary.json"))
REPRO = os.environ.get("HOSTILE_REPRO_DIR")
REAL_SIM = os.environ.get("HOSTILE_SIM") == "1"
MEM_HEADROOM = 3 << 30  # bytes a case may allocate beyond what the process holds
HW_FILES = ("qgraph.json", "qgraph.npz", "config.json", "program.json", "program.npz",
            "accel.v", "summary.json")


class ReachedBuild(BaseException):  # noqa: N818 -- not an error: the case got this far
    """A stub at the Verilator build (or the flow's first stage): every check before passed."""


class CaseTimeout(BaseException):  # noqa: N818
    """The case ran past its limit."""


def hostile(n: int):
    """Hypothesis settings of a command's test: ``n`` examples (scaled by the environment),
    no deadline, no shrinking (a case is already one or two edits) and no database."""
    def deco(fn):
        fn = settings(max_examples=int(FIXED) if FIXED else max(1, round(n * SCALE)),
                      deadline=None, derandomize=SEED is None, database=None,
                      phases=[Phase.explicit, Phase.generate], print_blob=False,
                      suppress_health_check=list(HealthCheck))(fn)
        return hypothesis_seed(int(SEED))(fn) if SEED is not None else fn
    return deco


# outcomes ---------------------------------------------------------------------------------

LEDGER: dict = {"counts": {}, "failures": {}, "validated_notes": {}, "warnings": {},
                "seconds": {}}


def _record(cmd: str, outcome: str) -> None:
    LEDGER["counts"].setdefault(cmd, Counter())[outcome] += 1


def _fail(cmd: str, case: Case, kind: str, detail: str, key_detail: str, args, exc_text=""):
    key = f"{cmd} | {kind} | {key_detail}"
    f = LEDGER["failures"].get(key)
    if f is None:
        f = LEDGER["failures"][key] = {"key": key, "command": cmd, "kind": kind,
                                       "detail": detail,
                                       "mutation": case.note, "args": list(args), "count": 0,
                                       "traceback": exc_text[-4000:], "repro": None}
        if REPRO:
            dest = Path(REPRO) / f"{cmd}-{len(LEDGER['failures']):03d}"
            shutil.rmtree(dest, ignore_errors=True)
            shutil.copytree(case.pristine, dest / "in", symlinks=True)
            (dest / "work").mkdir()
            (dest / "cmd.sh").write_text(
                "#!/bin/sh\n# " + case.note.replace("\n", " ") + "\n"
                + f"# {kind}: {detail[:300]}\n" + 'cd "$(dirname "$0")/work" && hannah-hw '
                + " ".join(_quote(a) for a in args) + "\n")
            f["repro"] = str(dest)
    f["count"] += 1


def _quote(a: str) -> str:
    return a if a and all(c.isalnum() or c in "./_-=" for c in a) else f"'{a}'"


def _frames(tb) -> tuple[str, str]:
    """Where the exception was raised, and the deepest frame in hannah_hw."""
    frames = traceback.extract_tb(tb)
    last = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"
    ours = [f for f in frames if "/hannah_hw/" in f.filename]
    mine = (f"{ours[-1].filename.split('/hannah_hw/')[-1]}:{ours[-1].lineno} in {ours[-1].name}"
            if ours else last)
    return last.replace(str(ROOT) + "/", ""), "hannah_hw/" + mine if ours else mine


def _snapshot(root: Path) -> dict:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            s = p.lstat()
            kind = stat.S_IFMT(s.st_mode)
            out[str(p.relative_to(root))] = (kind,) if stat.S_ISDIR(s.st_mode) else (
                kind, s.st_size, s.st_mtime_ns)
    return out


def _show_on_stderr(message, category, filename, lineno, file=None, line=None):
    import sys

    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def _vmdata() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmData:"):
            return int(line.split()[1]) * 1024
    return 0


class Case:
    """A fresh directory: ``in/`` (the mutated inputs) and ``work/`` (the working directory;
    the outputs go there)."""

    def __init__(self, base: Path, files: dict, note: str):
        self.root = Path(tempfile.mkdtemp(prefix="case-", dir=base))
        self.inp, self.work = self.root / "in", self.root / "work"
        self.work.mkdir()
        for rel, content in files.items():
            if isinstance(content, Path):  # a valid directory, copied whole
                shutil.copytree(content, self.inp / rel, symlinks=True)
            else:
                write_content(self.inp / rel, content)
        self.inp.mkdir(exist_ok=True)
        self.note = note
        self.pristine = self.root / "pristine"
        if REPRO:
            shutil.copytree(self.inp, self.pristine, symlinks=True)

    def close(self):
        shutil.rmtree(self.root, ignore_errors=True)


def run_case(cmd: str, args: list[str], case: Case, outputs: list[str], limit: float,
             arts=None, sane=None) -> str:
    """Run ``hannah-hw ARGS`` in ``case.work``; classify and record the outcome. ``outputs``
    are the paths (relative to ``case.work``) the command may write."""
    args = [str(a) for a in args]
    allowed = [os.path.normpath(str(case.work / o)) for o in outputs]
    before = _snapshot(case.root)
    shared = _snapshot(arts.base) if arts is not None else None
    root_before = set(os.listdir(ROOT))
    old_cwd, old_handler = os.getcwd(), signal.getsignal(signal.SIGALRM)
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)

    def alarm(signum, frame):
        raise CaseTimeout()

    result, escaped, t0 = None, None, time.perf_counter()
    os.chdir(case.work)
    signal.signal(signal.SIGALRM, alarm)
    cap = _vmdata() + MEM_HEADROOM
    resource.setrlimit(resource.RLIMIT_DATA,
                       (cap if hard == resource.RLIM_INFINITY else min(cap, hard), hard))
    try:
        signal.setitimer(signal.ITIMER_REAL, limit)
        with warnings.catch_warnings():  # as a user sees them: on stderr, not pytest's record
            warnings.simplefilter("default")  # Python's own defaults, outside pytest
            for cat in (DeprecationWarning, PendingDeprecationWarning, ImportWarning,
                        ResourceWarning):
                warnings.simplefilter("ignore", cat)
            warnings.showwarning = _show_on_stderr
            result = CliRunner().invoke(main, args, catch_exceptions=True)
    except (ReachedBuild, CaseTimeout) as e:
        escaped = e
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old_handler)
        resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))
        os.chdir(old_cwd)
    LEDGER["seconds"][cmd] = LEDGER["seconds"].get(cmd, 0.0) + time.perf_counter() - t0

    outcome = _classify(cmd, args, case, result, escaped, limit, sane)
    # never a write outside the outputs
    after = _snapshot(case.root)
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    outside = [k for k in changed if not _allowed(case.root / k, allowed)]
    if outside:
        _fail(cmd, case, "write-outside-outputs", f"changed {outside[:5]}",
              ",".join(sorted({Path(k).name for k in outside}))[:80], args)
        outcome = "failure"
    if shared is not None and _snapshot(arts.base) != shared:
        _fail(cmd, case, "write-into-shared-artefacts", "the session's artefacts changed",
              "shared", args)
        outcome = "failure"
    names = {Path(a).name for a in args} | {Path(o).name for o in outputs}
    new_root = sorted((set(os.listdir(ROOT)) - root_before) & names)
    if new_root:
        _fail(cmd, case, "write-into-repository", f"new in {ROOT}: {new_root}",
              ",".join(new_root), args)
        outcome = "failure"
    _record(cmd, outcome)
    return outcome


def _allowed(path: Path, allowed: list[str]) -> bool:
    """An output, inside one, or a directory made on the way to one."""
    p = os.path.normpath(str(path))
    return any(p == a or p.startswith(a + os.sep)
               or (path.is_dir() and a.startswith(p + os.sep)) for a in allowed)


def _classify(cmd, args, case, result, escaped, limit, sane) -> str:
    if isinstance(escaped, ReachedBuild):
        notes = LEDGER["validated_notes"].setdefault(cmd, [])
        if len(notes) < 200 and case.note not in notes:
            notes.append(case.note)
        return "validated"
    if isinstance(escaped, CaseTimeout):
        _fail(cmd, case, "hang", f"no answer within {limit} s", "hang", args)
        return "failure"
    exc = result.exception
    if exc is not None and not isinstance(exc, SystemExit):
        last, mine = _frames(result.exc_info[2])
        text = "".join(traceback.format_exception(*result.exc_info))
        _fail(cmd, case, "traceback",
              f"{type(exc).__name__}: {str(exc)[:300]} (raised at {last})",
              f"{type(exc).__name__} at {mine}", args, text)
        return "failure"
    err = result.stderr.strip()
    lines = err.splitlines()
    if result.exit_code == 2:
        if len(lines) == 1 and lines[0].startswith("hannah-hw: error: "):
            return "exit2"
        if lines and lines[0].startswith("Usage:") and lines[-1].startswith("Error:"):
            return "exit2-usage"
        head = " / ".join(ln[:60] for ln in lines[:3])
        _fail(cmd, case, "exit2-not-one-line", f"{len(lines)} stderr lines: {head}",
              lines[-1][:50] if lines else "empty", args)
        return "failure"
    if result.exit_code == 1 and cmd == "simulate" and "DIFFER" in result.stdout:
        notes = LEDGER["validated_notes"].setdefault("simulate (outputs differ)", [])
        if len(notes) < 200 and case.note not in notes:
            notes.append(case.note)
        return "exit1-differs"
    if result.exit_code != 0:
        _fail(cmd, case, f"exit-{result.exit_code}", err[-300:], f"exit {result.exit_code}",
              args)
        return "failure"
    if sane is not None:
        try:
            problem = sane(case, result)
        except Exception as e:  # the result does not even load
            problem = f"{type(e).__name__}: {e}"
        if problem:
            _fail(cmd, case, "insane-result", problem, problem.split(":")[0][:60], args)
            return "failure"
    if "Warning:" in result.stderr:
        notes = LEDGER["warnings"].setdefault(cmd, {})
        for ln in result.stderr.splitlines():
            if "Warning:" in ln and len(notes) < 50:
                notes.setdefault(ln.strip()[:200], case.note)
        return "ok-with-warnings"
    return "ok"


def _finish(cmd: str) -> None:
    """The command's test fails if any case failed; the message lists the distinct ones."""
    mine = [f for f in LEDGER["failures"].values() if f["command"] == cmd]
    c = dict(LEDGER["counts"].get(cmd, {}))
    assert not mine, f"{cmd}: {c}; {len(mine)} distinct failures:\n" + "\n".join(
        f"  [{f['count']}x] {f['kind']}: {f['detail'][:200]}\n      case: {f['mutation'][:200]}"
        for f in mine)


# the valid artefacts ----------------------------------------------------------------------

class Artefacts:
    pass


def _cli_ok(*args):
    r = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return r


SMALL_FLOW = {
    "name": "hostile",
    "space": str(ROOT / "nas" / "image_cnn.py") + ":image_cnn",
    "space_args": {"max_macs": 60000},
    "data": {"dataset": "digits"},
    "search": {"strategy": "random", "budget": 3, "epochs": 2, "qat_epochs": 1,
               "objectives": ["error:min", "cycles:min"], "constraints": ["weights<=25000"]},
    "hardware": {"board": "ulx3s", "pe_cols": 4},
    "confirm": {"front": 2, "samples": 2},
    "train": {"epochs": 0},
    "deploy": {"simulate_samples": 4, "soc_samples": 1, "bitstream": [], "cpu": "serv",
               "reference": False},
}


@pytest.fixture(scope="module")
def arts(tmp_path_factory):
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from onnx_models import float_cnn, quantize
    from test_accel_model import lowered
    from test_qat import every_op_1d

    a = Artefacts()
    a.base = tmp_path_factory.mktemp("hostile-artefacts")
    a.cases = tmp_path_factory.mktemp("hostile-cases")
    old = os.getcwd()
    os.chdir(a.base)
    try:
        qg, x = lowered(every_op_1d, 8, 8, "fixed", n=4)
        qg.save(a.base / "qg.json")
        a.x = x.astype(np.float32)
        a.x_bytes = npy_bytes(a.x)
        a.qjson = (a.base / "qg.json").read_text()
        a.qdoc = json.loads(a.qjson)
        a.qnpz = (a.base / "qg.npz").read_bytes()
        with np.load(a.base / "qg.npz") as z:
            a.qarrays = {k: z[k] for k in z.files}
        a.in_lo, a.in_hi = qg.tensors[qg.inputs[0]].range
        a.onnx = {}
        for fmt in ("qdq", "qop"):
            src, shape = float_cnn(a.base / "f.onnx", seed=1, dims=1, pools=True)
            quantize(src, a.base / f"{fmt}.onnx", shape, fmt, fmt == "qdq")
            a.onnx[fmt] = (a.base / f"{fmt}.onnx").read_bytes()
        _cli_ok("generate", "qg.json", "--out", "hw")
        a.hw = a.base / "hw"
        a.hw_bytes = {f: (a.hw / f).read_bytes() for f in HW_FILES}
        _cli_ok("firmware", "hw", "--out", "fw", "--target", "host", "--target", "rv32",
                "--cpu", "serv", "--no-reference")
        a.fw = a.base / "fw"
        a.energy = json.loads((ROOT / "hannah_hw" / "accel" / "energy_45nm.json").read_text())
        a.flow = copy.deepcopy(SMALL_FLOW)
        a.run = _make_rundir(a)
    finally:
        os.chdir(old)
    return a


def _make_rundir(a) -> Path:
    """A RUNDIR as a finished flow leaves it, without running one: a real search study
    (symbolic metrics), the real HWDIR, a simulation report from the cost model's counters."""
    from hannah_hw.accel.hwdesc import COUNTERS
    from hannah_hw.accel.schedule import layer_events
    from hannah_hw.flow_config import load_flow_config, stage_keys
    from hannah_hw.hw.hwdir import load_hwdir
    from hannah_hw.nas.search.runner import summary
    from hannah_hw.nas.search.study import storage_url
    from hannah_hw.stages.simulate import measured_report

    run = a.base / "run"
    _cli_ok("search", SMALL_FLOW["space"], "--study", run / "search", "--budget", "4",
            "--strategy", "random", "--objective", "macs:min", "--objective", "weights:min")
    s = summary(storage_url(run / "search", None))
    for r in s["rows"]:
        r.pop("arch", None)
    (run / "search" / "summary.json").write_text(json.dumps(s, indent=1))
    (a.base / "flow.yaml").write_text(yaml.safe_dump(SMALL_FLOW))
    cfg = load_flow_config(a.base / "flow.yaml")
    _, acfg, prog = load_hwdir(a.hw)
    stats = [{**{k: m[k] for k in COUNTERS}, "name": f"layer{i}"}
             for i, m in enumerate(layer_events(d, acfg) for d in prog.descriptors)]
    rep = measured_report(acfg, prog, [stats] * 4, np.zeros(1), np.zeros(1),
                          {"sim_cycles": 4000, "sim_seconds": 0.01}).to_dict()
    (run / "sim-report.json").write_text(json.dumps(rep, indent=1))
    shutil.copytree(a.hw, run / "hw")
    hw_summary = json.loads((a.hw / "summary.json").read_text())
    fw_rec = json.loads((a.fw / "firmware.json").read_text())["rv32"]
    front = s["pareto"][0]
    metrics = {**next(r["metrics"] for r in s["rows"] if r["number"] == front), "error": 0.1,
               "cycles": rep["cycles"], "energy_uj": rep["energy_uj"]}
    results = {
        "search": {"candidates": len(s["rows"]), "failed": 0, "front": s["pareto"],
                   "seconds": 1.5},
        "confirm": {"candidates": [{
            "number": front, "metrics": metrics, "measured_cycles": rep["cycles"],
            "predicted_cycles": rep["cycles"], "measured_energy_uj": rep["energy_uj"],
            "predicted_energy_uj": rep["energy_uj"], "cycle_error": 0.0, "energy_error": 0.0,
            "utilization": rep["utilization"], "bit_exact": True}],
            "max_cycle_error": 0.0, "max_energy_error": 0.0},
        "train": {"candidate": front, "choose": "error", "float_accuracy": 0.9,
                  "quant_accuracy": 0.89, "bit_exact": {"identical": 40, "outputs": 40},
                  "search_accuracy": 0.88},
        "generate": {k: hw_summary[k] for k in ("config", "mac_units", "memory_bits",
                                                "predicted_cycles", "predicted_utilization",
                                                "macs")},
        "simulate": {k: rep[k] for k in ("samples", "cycles", "utilization", "energy_uj",
                                         "pj_per_mac", "ratio_to_floor", "latency_s",
                                         "predicted_cycles", "cycle_error", "energy_error",
                                         "reference_match", "clock_hz", "sim_cycles_per_s")},
        "firmware": {"host_bit_exact": True, "samples": 4, "cppcheck": "clean",
                     "size": fw_rec["size"], "ram_bytes": fw_rec["ram_bytes"],
                     "cpu": fw_rec["cpu"], "isa": fw_rec["isa"], "reference": False},
        "soc": {"cycles": 9000, "accel_cycles": rep["cycles"], "dma_cycles": 200,
                "driver_cycles": 9000 - 200 - rep["cycles"], "driver_share": 0.5,
                "reference_match": True, "sim_cycles_per_s": 1e6, "cpu": "serv",
                "isa": "rv32i"},
        "bitstream": {"accel": {"board": "ulx3s", "bitstream": "accel.bit",
                                "resources": {"lut": {"used": 5000, "available": 24288},
                                              "dsp": {"used": 4, "available": 28}},
                                "placed": {}, "fmax_mhz": 48.5, "target_mhz": 25}},
    }
    keys = stage_keys(cfg)
    rec = {"config": cfg, "stages": {k: {"key": keys[k], "seconds": 1.0,
                                         "finished": "2026-01-01 00:00:00", "result": v}
                                     for k, v in results.items()}}
    (run / "flow.json").write_text(json.dumps(rec, indent=2))
    return run


@pytest.fixture(scope="module", autouse=True)
def stubs(arts):
    """Stop before the Verilator builds and the flow's work; keep the ledger."""
    import hannah_hw.nas.search.runner as search_runner
    import hannah_hw.simulate.accel_sim as accel_sim
    import hannah_hw.soc.sim as soc_sim
    import hannah_hw.stages.simulate as simulate_stage

    real_build = accel_sim.build_harness
    state = {"accel_v": arts.hw_bytes["accel.v"]}
    if REAL_SIM:  # the one shared Verilator build, outside any case's time limit
        real_build(arts.hw / "accel.v")

    def build_harness(verilog):
        if REAL_SIM and Path(verilog).read_bytes() == state.get("accel_v"):
            return real_build(verilog)
        raise ReachedBuild("accel harness")

    def build_soc(*args, **kwargs):
        raise ReachedBuild("SoC")

    def run_search(config, study_dir, url, workers=1, show_progress=True,
                   evaluators=search_runner.cost_only):
        search_runner.validate(config, evaluators)  # what it does before its first candidate
        raise ReachedBuild("flow")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(simulate_stage, "build_harness", build_harness)
        mp.setattr(soc_sim, "build_soc", build_soc)
        mp.setattr(search_runner, "run_search", run_search)
        yield state
    counts = {k: dict(v) for k, v in LEDGER["counts"].items()}
    total = Counter()
    for v in LEDGER["counts"].values():
        total.update(v)
    out = {"total_cases": sum(total.values()), "outcomes": dict(total), "per_command": counts,
           "seconds": {k: round(v, 1) for k, v in LEDGER["seconds"].items()},
           "settings": {"scale": SCALE, "examples": FIXED, "seed": SEED, "real_sim": REAL_SIM},
           "distinct_failures": len(LEDGER["failures"]),
           "failures": sorted(LEDGER["failures"].values(),
                              key=lambda f: (f["command"], f["kind"], f["detail"])),
           "validated_notes": LEDGER["validated_notes"], "warnings": LEDGER["warnings"]}
    SUMMARY.write_text(json.dumps(out, indent=1, default=str))
    print(f"\nhostile inputs: {out['total_cases']} cases, {dict(total)}; "
          f"{len(LEDGER['failures'])} distinct failures; summary in {SUMMARY}")
    for cmd, c in counts.items():
        print(f"  {cmd:12s} {c}")


# strategies for each command's inputs ---------------------------------------------------------

def _dump(doc) -> str:
    return json.dumps(doc, indent=1)


@st.composite
def qgraph_files(draw, a, prefix: str = "qg", mutate=None):
    """qg.json + qg.npz: one mutated (JSON edits, an array edited with its spec, bytes)."""
    what = mutate or draw(st.sampled_from(["json", "json", "json", "npz", "npz", "bytes-json",
                                           "bytes-npz"]))
    text, npz, note = a.qjson, a.qnpz, "qgraph unchanged"
    if what == "json":
        doc, note = draw(json_mutation(a.qdoc))
        text = _dump(doc)
    elif what == "npz":
        npz, spec, note = draw(npz_mutation(a.qarrays, a.qdoc["arrays"]))
        text = _dump({**a.qdoc, "arrays": spec})
    elif what == "bytes-json":
        text, note = draw(bytes_mutation(a.qjson.encode()))
        note = f"{prefix}.json {note}"
    elif what == "bytes-npz":
        npz, note = draw(bytes_mutation(a.qnpz))
        note = f"{prefix}.npz {note}"
    return {f"{prefix}.json": text, f"{prefix}.npz": npz}, f"qgraph {what}: {note}"


OUT_NPY = ("y.npy",) * 5 + ("y", "missing/dir/y.npy", ".", "y.txt")


def _int_opts(draw, name, values):
    v = draw(st.sampled_from((None,) * 12 + values))
    return [] if v is None else [name, str(v)]


PE_COLS = (0, -1, 1, 3, 7, 64, 2**31, 2**40)
CLOCKS = (0, -1, "nan", "inf", "-inf", 1e-300, 1e300, 24)


# the tests ------------------------------------------------------------------------------------

def _npy_out_sane(a, qfile: Path, xfile: Path, out: Path, dequantize: bool):
    from hannah_hw.ir.qgraph import QGraph

    def check(case, result):
        g = QGraph.load(case.work / qfile)
        x = np.load(case.work / xfile)
        t_in, t_out = g.tensors[g.inputs[0]], g.tensors[g.outputs[0]]
        n = 1 if x.ndim == len(t_in.shape) else len(x)
        y = np.load(case.work / out)
        if y.shape != (n, *t_out.shape):
            return f"shape: {y.shape}, expected {(n, *t_out.shape)}"
        if dequantize:
            return None if np.isfinite(y).all() else "non-finite dequantised outputs"
        if not np.issubdtype(y.dtype, np.integer):
            return f"dtype: {y.dtype} is not an integer type"
        lo, hi = t_out.range
        if y.size and (y.min() < lo or y.max() > hi):
            return f"range: outputs [{y.min()}, {y.max()}] outside [{lo}, {hi}]"
        return None
    return check


def test_unmutated_artefacts_pass(arts, tmp_path):
    """The harness's baseline: every command accepts the valid artefacts."""
    from hannah_hw.hw.hwdir import load_hwdir

    def go(cmd, args, files, outputs, sane=None):
        case = Case(arts.cases, files, "unmutated")
        try:
            return run_case(cmd, args, case, outputs, 120, arts, sane)
        finally:
            case.close()

    q = {"qg.json": arts.qjson, "qg.npz": arts.qnpz}
    assert go("baseline", ["infer", "../in/qg.json", "--input", "../in/X.npy", "--output",
                           "y.npy"], {**q, "X.npy": arts.x_bytes}, ["y.npy"],
              _npy_out_sane(arts, Path("../in/qg.json"), Path("../in/X.npy"), Path("y.npy"),
                            False)) == "ok"
    assert go("baseline", ["cost", "../in/qg.json", "--json"], q, []) == "ok"
    assert go("baseline", ["generate", "../in/qg.json", "--out", "hw"], q, ["hw"],
              lambda c, r: load_hwdir(c.work / "hw") and None) == "ok"
    assert go("baseline", ["export-onnx", "../in/qg.json", "-o", "m.onnx"], q, ["m.onnx"]) \
        == "ok"
    for fmt in ("qdq", "qop"):
        assert go("baseline", ["import-onnx", "../in/m.onnx", "-o", "qg.json"],
                  {"m.onnx": arts.onnx[fmt]}, ["qg.json", "qg.npz"]) == "ok"
    hw = {"hw": arts.hw, "X.npy": arts.x_bytes}
    assert go("baseline", ["simulate", "../in/hw", "--input", "../in/X.npy", "--output",
                           "y.npy"], hw, ["y.npy"]) in ("validated", "ok")
    assert go("baseline", ["firmware", "../in/hw", "--out", "fw", "--target", "host"], hw,
              ["fw"]) == "ok"
    fw = {**hw, "fw": arts.fw, "fw/hwdir.json": json.dumps({"hwdir": "../in/hw"})}
    assert go("baseline", ["soc-sim", "../in/fw", "--input", "../in/X.npy", "--output",
                           "y.npy"], fw, ["y.npy"]) == "validated"
    assert go("baseline", ["flow", "../in/flow.yaml", "--out", "run"],
              {"flow.yaml": yaml.safe_dump(arts.flow)}, ["run"]) == "validated"
    assert go("baseline", ["report", "run"], {}, ["run"], None) == "exit2"  # no RUNDIR yet
    case = Case(arts.cases, {}, "unmutated RUNDIR")
    shutil.copytree(arts.run, case.work / "run")
    try:
        assert run_case("baseline", ["report", "run"], case,
                        ["run/report.html", "run/report.md", "run/report"], 120, arts) == "ok"
    finally:
        case.close()
    _finish("baseline")


def test_infer(arts):
    @st.composite
    def cases(draw):
        files = {"qg.json": arts.qjson, "qg.npz": arts.qnpz, "X.npy": arts.x_bytes}
        what = draw(st.sampled_from(["qgraph", "qgraph", "input", "input", "both", "output"]))
        notes = []
        if what in ("qgraph", "both"):
            q, n = draw(qgraph_files(arts))
            files.update(q)
            notes.append(n)
        if what in ("input", "both"):
            files["X.npy"], n = draw(npy_mutation(arts.x, arts.in_lo, arts.in_hi))
            notes.append(n)
        out = draw(st.sampled_from(OUT_NPY)) if what == "output" else "y.npy"
        deq = draw(st.booleans())
        return files, "; ".join(notes) or f"--output {out}", out, deq

    @hostile(250)
    @given(cases())
    def one(c):
        files, note, out, deq = c
        case = Case(arts.cases, files, note)
        try:
            run_case("infer", ["infer", "../in/qg.json", "--input", "../in/X.npy", "--output",
                               out, *(["--dequantize"] if deq else [])], case, [out], 20, arts,
                     _npy_out_sane(arts, Path("../in/qg.json"), Path("../in/X.npy"),
                                   Path(out), deq))
        finally:
            case.close()

    one()
    _finish("infer")


def _cost_sane(case, result):
    c = json.loads(result.stdout)
    if not (isinstance(c["cycles"], int) and c["cycles"] > 0):
        return f"cycles: {c['cycles']!r}"
    for k in ("latency_s", "energy_pj", "pj_per_mac"):
        if not (is_finite_number(c[k]) and c[k] > 0):
            return f"{k}: {c[k]!r}"
    if not (is_finite_number(c["utilization"]) and 0 < c["utilization"] <= 1):
        return f"utilization: {c['utilization']!r}"
    return None


def test_cost(arts):
    @st.composite
    def cases(draw):
        files = {"qg.json": arts.qjson, "qg.npz": arts.qnpz}
        note = "options only"
        if draw(st.integers(0, 4)):
            q, note = draw(qgraph_files(arts))
            files.update(q)
        opts = [] if draw(st.integers(0, 2)) else (
            _int_opts(draw, "--pe-cols", PE_COLS) + _int_opts(draw, "--clock-mhz", CLOCKS)
            + _int_opts(draw, "--board", ("icebreaker", "ulx3s")))
        return files, note, opts

    @hostile(150)
    @given(cases())
    def one(c):
        files, note, opts = c
        case = Case(arts.cases, files, f"{note}; {' '.join(opts)}")
        try:
            run_case("cost", ["cost", "../in/qg.json", "--json", *opts], case, [], 20, arts,
                     _cost_sane)
        finally:
            case.close()

    one()
    _finish("cost")


def test_export_onnx(arts):
    def sane(case, result):
        import onnx

        onnx.checker.check_model(onnx.load(str(case.work / "m.onnx")))

    @hostile(80)
    @given(qgraph_files(arts))
    def one(c):
        files, note = c
        case = Case(arts.cases, files, note)
        try:
            run_case("export-onnx", ["export-onnx", "../in/qg.json", "-o", "m.onnx"], case,
                     ["m.onnx"], 30, arts, sane)
        finally:
            case.close()

    one()
    _finish("export-onnx")


def test_import_onnx(arts):
    def sane(case, result):
        from hannah_hw.ir.qgraph import QGraph

        QGraph.load(case.work / "qg.json")

    @hostile(120)
    @given(st.sampled_from(["qdq", "qop"]).flatmap(
        lambda fmt: onnx_mutation(arts.onnx[fmt]).map(lambda r: (fmt, *r))))
    def one(c):
        fmt, data, note = c
        case = Case(arts.cases, {"m.onnx": data}, f"{fmt} model: {note}")
        try:
            run_case("import-onnx", ["import-onnx", "../in/m.onnx", "-o", "qg.json"], case,
                     ["qg.json", "qg.npz"], 30, arts, sane)
        finally:
            case.close()

    one()
    _finish("import-onnx")


def test_generate(arts):
    from hannah_hw.hw.hwdir import load_hwdir

    def sane(out):
        def check(case, result):
            load_hwdir(case.work / out)  # what generate writes, it can read
            s = json.loads((case.work / out / "summary.json").read_text())
            if not (isinstance(s["predicted_cycles"], int) and s["predicted_cycles"] > 0):
                return f"predicted_cycles: {s['predicted_cycles']!r}"
        return check

    @st.composite
    def cases(draw):
        files = {"qg.json": arts.qjson, "qg.npz": arts.qnpz}
        note = "options only"
        if draw(st.integers(0, 5)):
            q, note = draw(qgraph_files(arts))
            files.update(q)
        opts = [] if draw(st.integers(0, 2)) else (
            _int_opts(draw, "--pe-cols", PE_COLS) + _int_opts(draw, "--pe-rows", (0, 2, -1))
            + _int_opts(draw, "--fit", ("icebreaker", "ulx3s")))
        out = draw(st.sampled_from(("hw",) * 6 + ("a/b/hw", "afile", ".")))
        return files, note, opts, out

    @hostile(30)
    @given(cases())
    def one(c):
        files, note, opts, out = c
        case = Case(arts.cases, files, f"{note}; {' '.join(opts)}; --out {out}")
        if out == "afile":
            (case.work / "afile").write_text("not a directory")
        try:
            run_case("generate", ["generate", "../in/qg.json", "--out", out, *opts], case,
                     [out], 60, arts, sane(out))
        finally:
            case.close()

    one()
    _finish("generate")


@st.composite
def hwdir_files(draw, a):
    """A copy of the HWDIR with one file mutated; its hash in summary.json updated to match
    (or not), so the edit reaches the checks behind the hash check."""
    import hashlib

    name = draw(st.sampled_from(HW_FILES))
    data, extra = a.hw_bytes[name], {}
    how = draw(st.sampled_from(["edit", "edit", "edit", "bytes"])) if name.endswith(
        (".json", ".npz")) else "bytes"
    if how == "edit" and name.endswith(".json"):
        doc, note = draw(json_mutation(json.loads(data)))
        data = _dump(doc).encode()
    elif how == "edit":
        with np.load(a.hw / name) as z:
            arrays = {k: z[k] for k in z.files}
        spec = a.qdoc["arrays"] if name == "qgraph.npz" else None
        data, new_spec, note = draw(npz_mutation(arrays, spec))
        if spec is not None and new_spec != spec:  # the QGraph's spec follows the arrays
            extra["qgraph.json"] = _dump({**a.qdoc, "arrays": new_spec}).encode()
    else:
        data, note = draw(bytes_mutation(data))
    extra[name] = data
    files = {"hw": a.hw, **{f"hw/{k}": v for k, v in extra.items()}}
    rehash = name != "summary.json" and isinstance(data, bytes) and draw(st.booleans())
    if rehash:
        s = json.loads(a.hw_bytes["summary.json"])
        for k, v in extra.items():
            s["files"][k] = hashlib.sha256(v).hexdigest()
        files["hw/summary.json"] = json.dumps(s, indent=2)
    return files, f"HWDIR {name}: {note}{' (rehashed)' if rehash else ''}"


def test_simulate(arts):
    @st.composite
    def cases(draw):
        files, note = draw(hwdir_files(arts)) if draw(st.integers(0, 5)) else (
            {"hw": arts.hw}, "HWDIR unchanged")
        files["X.npy"] = arts.x_bytes
        notes = [note]
        if draw(st.integers(0, 3)) == 0:
            files["X.npy"], n = draw(npy_mutation(arts.x, arts.in_lo, arts.in_hi))
            notes.append(n)
        opts = [] if draw(st.integers(0, 3)) else (
            _int_opts(draw, "--clock-mhz", CLOCKS) + _int_opts(draw, "--rate-hz", CLOCKS)
            + _int_opts(draw, "--max-cycles", (0, -1, 1, 2**70)))
        if draw(st.integers(0, 5)) == 0:
            doc, n = draw(json_mutation(arts.energy))
            files["e.json"] = _dump(doc)
            opts += ["--energy-table", "../in/e.json"]
            notes.append(f"energy table: {n}")
        return files, "; ".join(notes), opts

    @hostile(100)
    @given(cases())
    def one(c):
        files, note, opts = c
        case = Case(arts.cases, files, f"{note}; {' '.join(opts)}")
        try:
            run_case("simulate", ["simulate", "../in/hw", "--input", "../in/X.npy", "--output",
                                  "y.npy", "--report", "r.json", *opts], case,
                     ["y.npy", "r.json"], 120 if REAL_SIM else 30, arts)
        finally:
            case.close()

    one()
    _finish("simulate")


def test_firmware(arts):
    @hostile(25)
    @given(hwdir_files(arts))
    def one(c):
        files, note = c
        case = Case(arts.cases, files, note)
        try:
            run_case("firmware", ["firmware", "../in/hw", "--out", "fw", "--target", "host"],
                     case, ["fw"], 60, arts,
                     lambda case, r: None if (case.work / "fw" / "hh_host").is_file()
                     else "no fw/hh_host")
        finally:
            case.close()

    one()
    _finish("firmware")


FW_FILES = ("firmware.json", "hwdir.json", "hh_fw.bin", "hh_model.h")


def test_soc_sim(arts):
    @st.composite
    def cases(draw):
        files = {"hw": arts.hw, "fw": arts.fw, "X.npy": arts.x_bytes}
        hwdir_json = {"hwdir": "../in/hw"}
        target = draw(st.sampled_from(["fw", "fw", "fw", "hw", "input"]))
        if target == "fw":
            name = draw(st.sampled_from(FW_FILES))
            if name.endswith(".json") and draw(st.integers(0, 3)):
                doc = hwdir_json if name == "hwdir.json" else json.loads(
                    (arts.fw / name).read_text())
                doc, note = draw(json_mutation(doc))
                files[f"fw/{name}"] = _dump(doc)
            else:
                files[f"fw/{name}"], note = draw(bytes_mutation((arts.fw / name).read_bytes()))
            note = f"FWDIR {name}: {note}"
        elif target == "hw":
            hw, note = draw(hwdir_files(arts))
            files.update(hw)
        else:
            files["X.npy"], note = draw(npy_mutation(arts.x, arts.in_lo, arts.in_hi))
        if "fw/hwdir.json" not in files:
            files["fw/hwdir.json"] = json.dumps(hwdir_json)
        opts = [] if draw(st.integers(0, 3)) else (
            _int_opts(draw, "--limit", (0, -1, 2**40))
            + _int_opts(draw, "--max-cycles", (0, -1, 2**70))
            + _int_opts(draw, "--board", ("icebreaker", "ulx3s")))
        return files, note, opts

    @hostile(90)
    @given(cases())
    def one(c):
        files, note, opts = c
        # the FWDIR is copied whole, then the mutated file replaces its copy
        ordered = {k: files[k] for k in sorted(files, key=lambda k: (k.count("/"), k))}
        case = Case(arts.cases, ordered, f"{note}; {' '.join(opts)}")
        try:
            run_case("soc-sim", ["soc-sim", "../in/fw", "--input", "../in/X.npy", "--output",
                                 "y.npy", *opts], case, ["y.npy"], 30, arts)
        finally:
            case.close()

    one()
    _finish("soc-sim")


@st.composite
def flow_yaml(draw, a):
    what = draw(st.sampled_from(["edit"] * 8 + ["bytes", "bytes", "special"]))
    text = yaml.safe_dump(a.flow)
    if what == "edit":
        doc, note = draw(json_mutation(a.flow))
        return yaml.safe_dump(doc, allow_unicode=False), f"flow file: {note}"
    if what == "bytes":
        data, note = draw(bytes_mutation(text.encode()))
        return data, f"flow file {note}"
    special = draw(st.sampled_from(["python-tag", "alias-bomb", "list", "scalar", "dup-key",
                                    "tabs", "huge-int"]))
    content = {
        "python-tag": "!!python/object/apply:os.system ['true']\n",
        "alias-bomb": text.replace("space_args:\n", "space_args:\n" + "".join(
            f"  a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10 if i else ["1"] * 10) + "]\n"
            for i in range(7))),
        "list": "- 1\n- 2\n", "scalar": "42\n",
        "dup-key": text + "name: again\n",
        "tabs": text.replace("  ", "\t"),
        "huge-int": text.replace("budget: 3", "budget: " + "9" * 5000),
    }[special]
    return content, f"flow file special: {special}"


def test_flow(arts):
    @hostile(150)
    @given(flow_yaml(arts))
    def one(c):
        content, note = c
        case = Case(arts.cases, {"flow.yaml": content}, note)
        try:
            run_case("flow", ["flow", "../in/flow.yaml", "--out", "run"], case, ["run"], 20,
                     arts)
        finally:
            case.close()

    one()
    _finish("flow")


RUN_FILES = ("flow.json", "flow.json", "flow.json", "search/summary.json", "sim-report.json",
             "hw/config.json")


def test_report(arts):
    def sane(case, result):
        html = (case.inp / "run" / "report.html").read_text()
        if "<html" not in html or not (case.inp / "run" / "report.md").is_file():
            return "report.html/report.md missing or not HTML"

    @st.composite
    def cases(draw):
        name = draw(st.sampled_from(RUN_FILES))
        data = (arts.run / name).read_bytes()
        if draw(st.integers(0, 4)):
            doc, note = draw(json_mutation(json.loads(data)))
            return name, _dump(doc), note
        content, note = draw(bytes_mutation(data))
        return name, content, note

    @hostile(30)
    @given(cases())
    def one(c):
        name, content, note = c
        case = Case(arts.cases, {"run": arts.run, f"run/{name}": content},
                    f"RUNDIR {name}: {note}")
        try:
            run_case("report", ["report", "../in/run"], case,
                     ["../in/run/report.html", "../in/run/report.md", "../in/run/report"], 60,
                     arts, sane)
        finally:
            case.close()

    one()
    _finish("report")


def test_sanity_of_the_mutators(arts):
    """The strategies produce what they say (a few draws, no CLI)."""
    doc = {"a": [1, 2, {"b": "x"}], "c": 0.5}

    @settings(max_examples=30, database=None, derandomize=True)
    @given(json_mutation(doc))
    def one(r):
        new, note = r
        assert note and json.dumps(new)
    one()
    assert DIRECTORY.kind == "directory"
    assert npz_bytes({"a": np.zeros(2)})[:2] == b"PK"

