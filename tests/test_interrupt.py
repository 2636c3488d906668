"""Interrupted searches and flows: SIGINT, SIGTERM or SIGKILL at a random moment, then a
resumed run meets the budget exactly, at once, with no architecture evaluated twice; an
interrupted run never reports success; killing the parent of ``--workers 2`` kills its
workers."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml

from conftest import ROOT, SPACES
from hannah_hw.nas.search.storage import opening_lock
from hannah_hw.nas.search.study import STUDY_NAME, storage_url

State = optuna.trial.TrialState
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
BUDGET = 24
SIGNALS = [signal.SIGINT, signal.SIGTERM, signal.SIGKILL]
MESSAGE = re.compile(r"^hannah-hw: interrupted \((SIGINT|SIGTERM)\)(: (\d+) of (\d+) "
                     r"candidates done)?; run the same command again to resume$")


def _trials(study: Path) -> list[optuna.trial.FrozenTrial]:
    """The study's trials, read while a search may be creating it: opening Optuna's storage
    creates its tables, so it is opened under the search's own lock (else the two race and
    the search stops on a duplicate ``alembic_version`` row)."""
    if not (study / "study.db").exists():
        return []
    url = storage_url(study, None)
    with opening_lock(url):
        storage = optuna.storages.RDBStorage(url)
    try:
        return optuna.load_study(study_name=STUDY_NAME, storage=storage).get_trials()
    except KeyError:  # killed before the study was created
        return []
    finally:
        storage.engine.dispose()


def _search(study: Path, workers: int = 1, budget: int = BUDGET) -> list[str]:
    return [sys.executable, "-m", "hannah_hw.cli", "search", SPACES["kws"], "--study",
            str(study), "--strategy", "aging", "--population", "6", "--budget", str(budget),
            "--seed", "4", "--workers", str(workers)]


def _finished(study: Path) -> int:
    try:
        with sqlite3.connect(study / "study.db", timeout=30) as con:
            return con.execute("SELECT count(*) FROM trials WHERE state = 'COMPLETE'"
                               ).fetchone()[0]
    except sqlite3.OperationalError:  # not there yet
        return 0


def _interrupt(cmd: list[str], sig: int, delay: float, log: Path,
               busy: Path | None = None) -> int:
    """Signal ``cmd`` ``delay`` s after its start, or (``busy``: its study dir) after it has
    finished a candidate: then certainly inside the search loop."""
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=f)
    if busy is not None:
        start, deadline = _finished(busy), time.monotonic() + 120
        while _finished(busy) == start and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
    time.sleep(delay)
    proc.send_signal(sig)
    return proc.wait(timeout=120)


def _check_interrupted(rc: int, sig: int, log: Path, study: Path, budget: int) -> None:
    """Never success unless it had finished; SIGINT/SIGTERM: 128 + signal, one line that
    tells the truth, and no candidate left running (it was given back, not abandoned)."""
    ts = _trials(study)
    if sum(t.state == State.COMPLETE for t in ts) == budget:
        return  # it had finished (a signal after its handlers are gone kills it)
    assert rc != 0
    if not ts:
        return  # stopped before the study was created (perhaps while Python started)
    if sig == signal.SIGKILL:
        assert rc == -signal.SIGKILL
        return
    last = log.read_text().replace("\r", "\n").strip().splitlines()[-1]
    assert rc == 128 + sig, f"exit {rc}: {last}"
    m = MESSAGE.match(last)
    assert m and m.group(1) == signal.Signals(sig).name, last
    if m.group(3):  # N of M: the finished candidates that count
        counted = [t for t in ts if t.state in (State.COMPLETE, State.FAIL)
                   and t.user_attrs.get("reason") not in ("stale", "interrupted", "over_budget")]
        assert (int(m.group(3)), int(m.group(4))) == (len(counted), budget)
    assert not [t for t in ts if t.state == State.RUNNING]


def _check_exact(study: Path, budget: int) -> None:
    """The budget exactly, each architecture once, a cut-off candidate retried once with the
    same architecture, archs/ holding exactly the finished ones."""
    ts = _trials(study)
    done = [t for t in ts if t.state == State.COMPLETE]
    assert len(done) == budget
    assert len({t.user_attrs["key"] for t in done}) == budget
    assert not [t for t in ts if t.state in (State.RUNNING, State.WAITING)]
    for cut in (t for t in ts if t.user_attrs.get("reason") in ("stale", "interrupted")):
        retries = [t for t in ts if t.user_attrs.get("retry_of") == cut.number]
        assert len(retries) == ("arch" in cut.user_attrs)
        assert all(r.user_attrs["arch"] == cut.user_attrs["arch"] for r in retries)
    assert {p.name for p in (study / "archs").glob("*.json")} == {
        f"trial_{t.number:05d}.json" for t in done}


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: s.name)
def test_search_interrupted_twice_at_random_points_resumes_to_the_exact_budget(tmp_path, sig):
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    study = tmp_path / "study"
    for i in range(2):  # at any moment; then the resume, in its search loop
        log = tmp_path / f"run{i}.log"
        delay = rng.uniform(0.05, 3.0) if i == 0 else rng.uniform(0.0, 0.3)
        rc = _interrupt(_search(study), sig, delay, log, busy=study if i else None)
        try:
            _check_interrupted(rc, sig, log, study, BUDGET)
        except AssertionError as e:
            raise AssertionError(f"seed {seed}, run {i}, signal after {delay:.2f} s") from e
    t0 = time.monotonic()
    r = subprocess.run(_search(study), cwd=ROOT, env=ENV, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    # at once: nothing waits for the 60 s heartbeat timeout
    assert time.monotonic() - t0 < 45, f"seed {seed}: the resume waited"
    _check_exact(study, BUDGET)


def _descendants(pid: int) -> set[int]:
    out, todo = set(), [pid]
    while todo:
        p = todo.pop()
        try:
            kids = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        out |= {int(k) for k in kids}
        todo += [int(k) for k in kids]
    return out


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_killing_the_parent_of_two_workers_leaves_no_worker_running(tmp_path):
    """Both workers are mid-candidate when their parent is SIGKILLed; they stop at once,
    giving their candidates back."""
    study = tmp_path / "study"
    cmd = [sys.executable, "-m", "hannah_hw.cli", "search", SPACES["image"], "--study",
           str(study), "--strategy", "random", "--budget", "20", "--dataset", "digits",
           "--epochs", "40", "--qat-epochs", "1", "--workers", "2"]
    log = tmp_path / "search.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=out)
    try:
        deadline = time.monotonic() + 180
        while True:
            evaluating = {t.user_attrs["worker"] for t in _trials(study)
                          if t.state == State.RUNNING and "key" in t.user_attrs}
            if len(evaluating) == 2:
                break
            assert proc.poll() is None and time.monotonic() < deadline, \
                f"workers never ran (exit {proc.poll()}): {log.read_text()[-2000:]}"
            time.sleep(0.2)
        workers = {int(w.rpartition(":")[2]) for w in evaluating}
        family = _descendants(proc.pid)
        assert workers <= family
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 30
    while any(_running(p) for p in family) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in family if _running(p)], "a child outlived its parent"
    cut = [t for t in _trials(study) if t.user_attrs.get("worker") in evaluating
           and "key" in t.user_attrs and t.state != State.COMPLETE]
    assert len(cut) == 2 and all(t.state == State.FAIL for t in cut)
    assert {t.user_attrs["reason"] for t in cut} == {"interrupted"}  # given back on the way out


FLOW = {
    "name": "interrupted", "space": "nas/image_cnn.py:image_cnn",
    "space_args": {"max_macs": 60000}, "data": {"dataset": "digits", "limit": 200},
    "search": {"strategy": "random", "budget": 3, "epochs": 1, "qat_epochs": 1,
               "objectives": ["error:min", "cycles:min"]},
    "hardware": {"board": "ulx3s", "pe_cols": 4},
}
# the flow as `hannah-hw flow` runs it, cut after its search stage (the later stages need
# Verilator and minutes; tests/test_flow.py runs them)
FLOW_SEARCH_ONLY = ("import sys; from hannah_hw import flow; "
                    "flow.RUNNERS = {'search': flow.RUNNERS['search']}; "
                    "from hannah_hw.cli import main; sys.argv[0] = 'hannah-hw'; main()")


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: s.name)
def test_flow_interrupted_at_a_random_point_resumes_to_the_exact_budget(tmp_path, sig):
    seed = random.randrange(1 << 30)
    cfg = tmp_path / "flow.yaml"
    cfg.write_text(yaml.safe_dump(FLOW))
    run = tmp_path / "run"
    cmd = [sys.executable, "-c", FLOW_SEARCH_ONLY, "flow", str(cfg), "--out", str(run)]
    delay = random.Random(seed).uniform(0.05, 6.0)
    rc = _interrupt(cmd, sig, delay, tmp_path / "run0.log")
    last = (tmp_path / "run0.log").read_text().strip().splitlines()[-1:]
    where = f"seed {seed}, after {delay:.2f} s: exit {rc}: {last}"
    if not (run / "flow.json").exists():  # not finished: never success
        assert rc != 0, where
        if _trials(run / "search"):  # stopped in the search: 128 + signal and one line
            assert rc == (-sig if sig == signal.SIGKILL else 128 + sig), where
        if rc == 128 + sig:
            assert last[0].startswith("interrupted: finished stages are kept") or (
                MESSAGE.match(last[0])), where
            assert not [t for t in _trials(run / "search") if t.state == State.RUNNING]
    r = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    rec = json.loads((run / "flow.json").read_text())
    assert rec["stages"]["search"]["result"]["candidates"] == FLOW["search"]["budget"]
    _check_exact(run / "search", FLOW["search"]["budget"])
