"""Search: strategies, the study store, resume after SIGKILL, several workers, the CLI."""

import dataclasses
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time

import numpy as np
import optuna
import pytest

from conftest import ROOT, run_cli
from hannah_hw.nas.search import SearchConfig, run_search, summary
from hannah_hw.nas.search.pareto import crowding_distance, nondominated_sort, pareto_front
from hannah_hw.nas.search.storage import opening_lock
from hannah_hw.nas.search.study import STUDY_NAME, storage_url


def test_nondominated_sort_and_crowding():
    F = np.array([[1, 5], [2, 2], [5, 1], [3, 3], [4, 4], [2, 2]], float)
    fronts = nondominated_sort(F)
    assert fronts[0] == [0, 1, 2, 5] and fronts[1] == [3] and fronts[2] == [4]
    assert pareto_front(F) == [0, 1, 2, 5]
    d = crowding_distance(F[[0, 1, 2]])
    assert np.isinf(d[0]) and np.isinf(d[2]) and d[1] == pytest.approx(2.0)
    # constraint domination: any feasible point beats an infeasible one
    assert nondominated_sort(F[:2] * [[10, 10], [1, 1]], np.array([0.0, 0.5]))[0] == [0]


def trials(study_dir, url=None):
    url = url or storage_url(study_dir, None)
    with opening_lock(url):  # opening creates tables: never race a search doing the same
        storage = optuna.storages.RDBStorage(url)
    return optuna.load_study(study_name=STUDY_NAME, storage=storage).get_trials(deepcopy=False)


def complete(ts):
    return [t for t in ts if t.state == optuna.trial.TrialState.COMPLETE]


@pytest.mark.parametrize("strategy", ["random", "aging", "nsga2"])
def test_strategies_fill_the_budget_with_distinct_valid_candidates(tmp_path, spaces, strategy):
    config = SearchConfig(space=spaces["kws"], strategy=strategy, budget=24,
                          objectives=("macs:min", "peak_memory:min"),
                          constraints=("weights<=15000",), seed=1, population=8)
    run_search(config, tmp_path, storage_url(tmp_path, None), show_progress=False)
    done = complete(trials(tmp_path))
    assert len(done) == 24
    assert len({t.user_attrs["key"] for t in done}) == 24
    assert all(t.user_attrs["metrics"]["weights"] <= 15000 for t in done)
    assert len(list((tmp_path / "archs").glob("*.json"))) == 24
    s = summary(storage_url(tmp_path, None))
    front = [r for r in s["rows"] if r["number"] in s["pareto"]]
    assert front and all(r["feasible"] for r in front)


def test_evolution_improves_on_random_sampling(tmp_path, spaces):
    """Aging evolution minimising MACs must beat its own random warm-up population."""
    config = SearchConfig(space=spaces["kws"], strategy="aging", budget=60,
                          objectives=("macs:min",), seed=3, population=10)
    run_search(config, tmp_path, storage_url(tmp_path, None), show_progress=False)
    done = sorted(complete(trials(tmp_path)), key=lambda t: t.number)
    warmup = min(t.values[0] for t in done[:10])
    assert min(t.values[0] for t in done[10:]) < warmup


def _config(spaces, **kw) -> SearchConfig:
    return SearchConfig(**{"space": spaces["kws"], "strategy": "random",
                           "objectives": ("macs:min",), **kw})


def test_resumed_study_must_keep_its_settings(tmp_path, spaces):
    url = storage_url(tmp_path, None)
    run_search(_config(spaces, budget=3), tmp_path, url, show_progress=False)
    with pytest.raises(ValueError, match="strategy"):
        run_search(_config(spaces, budget=3, strategy="aging"), tmp_path, url,
                   show_progress=False)
    run_search(_config(spaces, budget=5), tmp_path, url,
               show_progress=False)  # a larger budget continues the same study
    assert len(complete(trials(tmp_path))) == 5


SEARCH_ARGS = ["search", "{space}", "--study", "{study}", "--strategy", "aging", "--budget", "8",
               "--population", "4", "--dataset", "digits", "--epochs", "3", "--seed", "5"]


def _args(spaces, study, extra=()):
    return [a.format(space=spaces["image"], study=study) for a in SEARCH_ARGS] + list(extra)


def _count_done(db):
    if not db.exists():
        return 0, 0
    try:
        with sqlite3.connect(db, timeout=30) as con:
            done = con.execute("select count(*) from trials where state='COMPLETE'").fetchone()
            evaluating = con.execute(  # running, and past the proposal: under evaluation
                "select count(*) from trials t join trial_user_attributes a "
                "on a.trial_id = t.trial_id where t.state='RUNNING' and a.key='key'").fetchone()
    except sqlite3.OperationalError:  # the schema is still being created
        return 0, 0
    return done[0], evaluating[0]


@pytest.mark.slow
def test_search_resumes_after_sigkill_without_losing_or_repeating_work(tmp_path, spaces):
    study = tmp_path / "study"
    cmd = [sys.executable, "-m", "hannah_hw.cli", *_args(spaces, study)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline:
        done, running = _count_done(study / "study.db")
        if done >= 2 and running >= 1:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = {t.number: (t.user_attrs["key"], t.user_attrs["metrics"])
              for t in complete(trials(study))}
    assert 2 <= len(before) < 8
    # the candidate seen under evaluation is normally cut off; it may (rarely) have finished
    # in the milliseconds before the kill landed
    cut_off = any(t.state == optuna.trial.TrialState.RUNNING for t in trials(study))

    run_cli(*_args(spaces, study), check=True)
    after = trials(study)
    done = complete(after)
    assert len(done) == 8  # the budget, exactly
    keys = [t.user_attrs["key"] for t in done]
    assert len(set(keys)) == 8  # nothing evaluated twice
    for number, (key, metrics) in before.items():  # nothing finished was lost or redone
        t = after[number]
        assert t.user_attrs["key"] == key and t.user_attrs["metrics"] == metrics
    killed = [t for t in after if t.user_attrs.get("reason") == "stale"]
    assert len(killed) == int(cut_off)
    for k in (k for k in killed if "arch" in k.user_attrs):  # proposed: evaluated again,
        retried = [t for t in done if t.user_attrs.get("retry_of") == k.number]
        # with the same architecture, exactly once
        assert len(retried) == 1 and retried[0].user_attrs["arch"] == k.user_attrs["arch"]


@pytest.mark.slow
def test_two_workers_share_one_study(tmp_path, spaces):
    study = tmp_path / "study"
    res = run_cli(*_args(spaces, study, ["--workers", "2"]), check=True)
    done = complete(trials(study))
    assert len(done) == 8
    assert len({t.user_attrs["key"] for t in done}) == 8
    assert len({t.user_attrs["worker"] for t in done}) == 2
    assert all(0 <= t.user_attrs["metrics"]["accuracy"] <= 1 for t in done)
    assert "Pareto front" in res.stdout


def test_search_show_prints_table_and_front(tmp_path, spaces):
    run_cli("search", spaces["image"], "--study", tmp_path, "--budget", "6", "--strategy",
            "random", "--seed", "2", check=True)
    out = run_cli("search", "--study", tmp_path, "--show", check=True).stdout
    assert "Pareto front" in out and out.count("\n") >= 8
    data = json.loads(run_cli("search", "--study", tmp_path, "--show", "--json",
                              check=True).stdout)
    assert len(data["rows"]) == 6 and data["pareto"]
    run_cli("search", "--study", tmp_path, "--show", "--plot", tmp_path / "front.png",
            check=True)
    assert (tmp_path / "front.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("args,msg", [
    (["search", "nas/missing.py:space", "--study", "{tmp}"], "does not exist"),
    (["search", "nas/kws_tcresnet.py:conv_bn", "--study", "{tmp}"], "not decorated"),
    (["search", "nas/kws_tcresnet.py:kws_tcresnet", "--study", "{tmp}", "--objective",
      "accuracy:max"], "unknown objective metric 'accuracy'"),
    (["search", "nas/kws_tcresnet.py:kws_tcresnet", "--study", "{tmp}", "--objective",
      "macs:up"], "malformed objective"),
    (["search", "nas/kws_tcresnet.py:kws_tcresnet", "--study", "{tmp}", "--constraint",
      "macs=<5"], "malformed constraint"),
    (["search", "--study", "{tmp}", "--show"], "no study"),
    (["space", "show", "nas/kws_tcresnet.py"], "expected FILE.py:FUNCTION"),
])
def test_bad_input_is_one_line_and_exit_code_2(tmp_path, args, msg):
    res = run_cli(*[a.format(tmp=tmp_path / "s") for a in args])
    assert res.returncode == 2, res.stderr
    assert msg in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_a_study_stored_flat_before_the_split_resumes_and_keeps_its_settings(tmp_path, spaces):
    from hannah_hw.nas.search import SearchConfigError
    from hannah_hw.nas.search.study import open_study
    from hannah_hw.qat.settings import TrainSettings
    from hannah_hw.stages.price import HardwareSettings, evaluation_settings

    def trained(epochs):
        return evaluation_settings(TrainSettings(dataset="digits", epochs=epochs, qat_epochs=1),
                                   HardwareSettings(board="icebreaker"))

    flat = {"space": spaces["kws"], "strategy": "random", "budget": 2,
            "objectives": ["error:min"], "constraints": [], "seed": 0, "space_kwargs": {},
            "dataset": "digits", "epochs": 1, "population": 20, "qat_epochs": 1, "wbits": 8,
            "abits": 8, "limit": None, "kws_clips": 20000, "pe_cols": None, "board": "icebreaker"}
    cost_only = {**flat, "dataset": None, "epochs": 0, "qat_epochs": 0, "board": None}
    now = _config(spaces, budget=3, objectives=("error:min",), evaluation=trained(1))
    for name, stored, resumed in (("trained", flat, now),
                                  ("cost", cost_only, dataclasses.replace(now, evaluation={}))):
        (tmp_path / name).mkdir()
        url = storage_url(tmp_path / name, None)
        open_study(url, _config(spaces, budget=2))[0].set_user_attr("config", stored)
        assert open_study(url, resumed)[1] == resumed  # converted; the larger budget is stored
        assert open_study(url)[1] == resumed
    url = storage_url(tmp_path / "trained", None)
    with pytest.raises(SearchConfigError, match=r"\(training\.epochs: 1 there vs 2 now\); use a "):
        open_study(url, dataclasses.replace(now, evaluation=trained(2)))


def test_space_show_lists_parameters_and_a_sample(tmp_path, spaces):
    res = run_cli("space", "show", spaces["kws"], "--seed", "4", "--save", tmp_path / "a.json",
                  check=True)
    assert "kws_tcresnet_0.dynamic_depth_0.ChoiceOp_0.depth" in res.stdout
    assert "points before constraints" in res.stdout and "macs" in res.stdout
    assert json.loads((tmp_path / "a.json").read_text())["params"]


def test_a_dead_workers_candidate_is_failed_and_queued_again(tmp_path, spaces):
    from hannah_hw.nas.search.study import open_study, reap_stale

    url = storage_url(tmp_path, None)
    study, _ = open_study(url, _config(spaces, budget=3))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # its pid now belongs to no process
    trial = study.ask()
    trial.set_user_attr("worker", f"{socket.gethostname()}:{dead.pid}")
    trial.set_user_attr("arch", '{"params": {}}')
    trial.set_user_attr("key", "k1")
    alive = study.ask()
    alive.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
    assert reap_stale(study) == 1
    ts = trials(tmp_path)
    assert ts[trial.number].state == optuna.trial.TrialState.FAIL
    assert ts[trial.number].user_attrs["reason"] == "stale"
    assert ts[alive.number].state == optuna.trial.TrialState.RUNNING
    queued = [t for t in ts if t.state == optuna.trial.TrialState.WAITING]
    assert len(queued) == 1 and queued[0].user_attrs["retry_of"] == trial.number
    assert queued[0].user_attrs["arch"] == '{"params": {}}'
    assert reap_stale(study) == 0  # reaped once only


@pytest.mark.parametrize("storage,cause", [
    ("garbage", "is not a database URL"),
    ("foo://x/y", "unknown database type 'foo'"),
    ("postgresql://hannah:s3cret@127.0.0.1:1/db", "Connection refused"),
    ("sqlite:////nonexistent-dir/study.db", "No such file or directory"),
    (None, "file is not a database; remove it"),  # a corrupt study.db
])
def test_a_bad_storage_url_is_one_line_naming_it_and_the_cause(tmp_path, storage, cause):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "study.db").write_bytes(b"not a database, " * 8)
    args = ["--storage", storage] if storage else []
    # the search, and for the default storage also --show
    for extra in ([SPACES_KWS, "--budget", "2"], *([["--show"]] if storage is None else [])):
        res = run_cli("search", *extra[:1], "--study", tmp_path / "s", *args, *extra[1:])
        assert res.returncode == 2, res.stderr
        assert cause in res.stderr and "Traceback" not in res.stderr, res.stderr
        assert len(res.stderr.strip().splitlines()) == 1
        assert "s3cret" not in res.stderr
        if storage and "s3cret" in storage:
            assert "hannah:***@127.0.0.1:1/db" in res.stderr


SPACES_KWS = f"{ROOT}/nas/kws_tcresnet.py:kws_tcresnet"


def test_a_plain_postgresql_url_gets_the_installed_driver():
    from hannah_hw.nas.search.storage import masked, normalise

    assert normalise("postgresql://u@h/d") == "postgresql+psycopg2://u@h/d"
    assert normalise("postgresql+psycopg2://u:p@h:5/d") == "postgresql+psycopg2://u:p@h:5/d"
    assert masked("postgresql://u:p%40w@h/d") == "postgresql://u:***@h/d"
    assert masked("bad://u:pw@h:x:y/d") == "bad://u:***@h:x:y/d"  # unparsable: masked anyway


def test_the_flow_keeps_the_storage_password_out_of_its_record_and_keys(tmp_path, monkeypatch):
    from hannah_hw import flow as flow_mod
    from hannah_hw.flow_config import FlowConfigError, load_flow_config, stage_keys

    base = {"space": "nas/image_cnn.py:image_cnn", "data": {"dataset": "digits"},
            "search": {"storage": "postgresql://hannah:s3cret@db.example/study"}}
    cfg_path = tmp_path / "flow.yaml"
    cfg_path.write_text(json.dumps(base))
    cfg = load_flow_config(cfg_path)
    other = json.loads(json.dumps(cfg))
    other["search"]["storage"] = "postgresql://hannah:changed@db.example/study"
    assert stage_keys(cfg) == stage_keys(other)  # a new password is not a new search
    other["search"]["storage"] = "postgresql://hannah@db.example/another"
    assert stage_keys(cfg)["search"] != stage_keys(other)["search"]
    seen = []
    monkeypatch.setattr(flow_mod, "RUNNERS", {"search": lambda c, r, log: seen.append(
        c["search"]["storage"]) or {"ok": 1}})
    flow_mod.run_flow(cfg, tmp_path / "run", log=lambda m: None)
    assert seen == ["postgresql://hannah:s3cret@db.example/study"]  # the stage gets it
    record = (tmp_path / "run" / "flow.json").read_text()
    assert "s3cret" not in record and "hannah:***@db.example/study" in record
    cfg_path.write_text(json.dumps({**base, "search": {"storage": "garbage"}}))
    with pytest.raises(FlowConfigError, match="search.storage: storage 'garbage' is not a"):
        load_flow_config(cfg_path)


def _lock_waiters(lock) -> int:
    """Processes blocked on an flock of ``lock`` (the "->" lines of /proc/locks)."""
    ino = f":{os.stat(lock).st_ino} "
    return sum(1 for ln in open("/proc/locks") if "->" in ln and ino in ln)


@pytest.mark.skipif(not os.path.exists("/proc/locks"), reason="needs Linux's /proc/locks")
def test_processes_starting_one_new_sqlite_study_at_once_take_turns(tmp_path):
    """Creating the schema and the study is check-then-create: without the lock two processes
    starting together crashed (a duplicate alembic_version row, "table already exists").
    Both are held at the lock, released together, and both succeed on one study."""
    import fcntl

    study = tmp_path / "study"
    study.mkdir()
    lock = study / "study.db.lock"
    cmd = [sys.executable, "-m", "hannah_hw.cli", "search", SPACES_KWS, "--study", str(study),
           "--strategy", "random", "--budget", "12"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with open(lock, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        procs = [subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
        try:
            deadline = time.time() + 120
            while _lock_waiters(lock) < 2:
                assert all(p.poll() is None for p in procs), "a process did not wait"
                assert time.time() < deadline, "the processes never reached the lock"
                time.sleep(0.05)
            assert not (study / "study.db").exists()  # nothing created before the lock
        except BaseException:
            for p in procs:
                p.kill()
            raise
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err[-2000:]
    done = complete(trials(study))
    assert len(done) == 12 and len({t.user_attrs["key"] for t in done}) == 12
