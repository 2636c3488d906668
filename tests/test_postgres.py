"""Several machines on one search: two ``hannah-hw search`` workers share a study in a real
PostgreSQL server (a throw-away cluster on loopback, with password authentication), as
``--storage postgresql://USER@HOST/DB`` does with the password in PGPASSWORD."""

from __future__ import annotations

import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest

from conftest import ROOT, SPACES, run_cli
from hannah_hw.nas.search.storage import normalise
from hannah_hw.nas.search.study import STUDY_NAME

psycopg2 = pytest.importorskip("psycopg2")

PG_USER = "hannah"
PG_DB = "hannah_study"
PG_PASSWORD = "pg-s3cret"


def _pg_bindir() -> Path | None:
    """The server binaries: Debian keeps them off PATH, under /usr/lib/postgresql/N/bin."""
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                  key=lambda d: int(Path(d).parent.name) if Path(d).parent.name.isdigit() else 0)
    candidates = [Path(d) for d in reversed(dirs)]
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        if out.returncode == 0:
            candidates.append(Path(out.stdout.strip()))
    return next((d for d in candidates if (d / "initdb").is_file() and (d / "pg_ctl").is_file()),
                None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_server_user(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root; as root, run it as Debian's ``postgres`` user."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _run(cmd: list[str], cwd: Path) -> None:
    proc = subprocess.run(_as_server_user(cmd), cwd=cwd, capture_output=True, text=True,
                          timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n"
                           f"{proc.stdout}\n{proc.stderr}")


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL cluster on 127.0.0.1 and a free port, with one empty database and a
    password for TCP connections, given in PGPASSWORD; the plain URL (no driver, no password)
    is yielded, and the server is stopped and its directory removed afterwards."""
    bindir = _pg_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found; install the Debian "
                    "package 'postgresql' (make setup does)")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("running as root needs runuser to start PostgreSQL as the postgres user")
    # not under pytest's tmp_path: its parents are private to the current user
    base = Path(tempfile.mkdtemp(prefix="hhw-pg-"))
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
        shutil.chown(sock, "postgres", "postgres")
    port = _free_port()
    started = False
    (base / "pw").write_text(PG_PASSWORD + "\n")
    if os.geteuid() == 0:
        shutil.chown(base / "pw", "postgres", "postgres")
    old_password = os.environ.get("PGPASSWORD")
    os.environ["PGPASSWORD"] = PG_PASSWORD  # libpq's, read by every worker
    try:
        _run([str(bindir / "initdb"), "-D", str(data), "--auth-local=trust",
              "--auth-host=scram-sha-256", f"--pwfile={base / 'pw'}", f"--username={PG_USER}",
              "--no-locale", "--encoding=UTF8", "--no-sync"], cwd=base)
        # durability is pointless for a throw-away cluster; speed is not
        opts = (f"-c listen_addresses=127.0.0.1 -p {port} -k {sock} -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off")
        _run([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(base / "server.log"), "-o", opts,
              "-w", "-t", "60", "start"], cwd=base)
        started = True
        con = psycopg2.connect(host="127.0.0.1", port=port, user=PG_USER, dbname="postgres")
        con.autocommit = True
        with con.cursor() as cur:
            cur.execute(f"CREATE DATABASE {PG_DB}")
        con.close()
        yield f"postgresql://{PG_USER}@127.0.0.1:{port}/{PG_DB}"
    finally:
        if old_password is None:
            os.environ.pop("PGPASSWORD", None)
        else:
            os.environ["PGPASSWORD"] = old_password
        if started:
            _run([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"], cwd=base)
        shutil.rmtree(base, ignore_errors=True)


def _search_args(study: Path, url: str, budget: int) -> list[str]:
    return ["search", SPACES["kws"], "--study", str(study), "--storage", url,
            "--strategy", "random", "--budget", str(budget), "--seed", "7",
            "--objective", "macs:min", "--objective", "peak_memory:min"]


def _start_workers(study: Path, url: str, budget: int, logs: Path, n: int = 2
                   ) -> list[tuple[subprocess.Popen, Path]]:
    """``n`` independent CLI processes, as ``n`` machines would start them."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    logs.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        log = logs / f"worker{i}.log"
        with open(log, "w") as f:
            out.append((subprocess.Popen(
                [sys.executable, "-m", "hannah_hw.cli", *_search_args(study, url, budget)],
                cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT), log))
    return out


def _wait(workers: list[tuple[subprocess.Popen, Path]], timeout: float = 240) -> None:
    for proc, log in workers:
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            rc = "timeout"
        assert rc == 0, f"worker {proc.pid} ended with {rc}:\n{log.read_text()[-3000:]}"


def _trials(url: str) -> list[optuna.trial.FrozenTrial]:
    storage = optuna.storages.RDBStorage(normalise(url))
    try:
        return optuna.load_study(study_name=STUDY_NAME, storage=storage).get_trials()
    finally:
        storage.engine.dispose()


def _complete(ts: list[optuna.trial.FrozenTrial]) -> list[optuna.trial.FrozenTrial]:
    return [t for t in ts if t.state == optuna.trial.TrialState.COMPLETE]


def _check_study(url: str, study: Path, budget: int) -> list[optuna.trial.FrozenTrial]:
    """The budget exactly, no architecture twice, every ArchSpec archived, --show agrees."""
    ts = _trials(url)
    done = _complete(ts)
    assert len(done) == budget
    assert not [t for t in ts if t.state == optuna.trial.TrialState.RUNNING]
    assert len({t.user_attrs["key"] for t in done}) == budget
    archived = {p.name: json.loads(p.read_text()) for p in (study / "archs").glob("*.json")}
    assert set(archived) == {f"trial_{t.number:05d}.json" for t in done}
    for t in done:
        assert archived[f"trial_{t.number:05d}.json"] == json.loads(t.user_attrs["arch"])
    assert not (study / "study.db").exists()  # with --storage, nothing goes to SQLite
    shown = json.loads(run_cli("search", "--study", study, "--storage", url, "--show", "--json",
                               check=True).stdout)
    assert shown["budget"] == budget and shown["budget_used"] == budget
    assert sorted(r["number"] for r in shown["rows"]) == sorted(t.number for t in done)
    assert all(r["state"] == "done" for r in shown["rows"]) and shown["pareto"]
    return done


def _blocked_sessions(con: psycopg2.extensions.connection) -> int:
    """Sessions of the workers waiting for a lock (at most one per single-threaded worker)."""
    with con.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                    "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()", (PG_DB,))
        return cur.fetchone()[0]


def test_two_workers_share_one_postgresql_study(pg_url, tmp_path):
    study = tmp_path / "study"
    # 1. two workers start at once on an empty database: both create the schema and the study
    _wait(_start_workers(study, pg_url, 12, tmp_path / "logs1"))
    first = _check_study(pg_url, study, 12)

    # 2. resume with a larger budget; the two workers are held at a lock on the trials table
    # until both wait there, so both certainly take part however unevenly they start up
    con, watch = psycopg2.connect(pg_url), psycopg2.connect(pg_url)
    watch.autocommit = True  # pg_stat_activity is frozen within one transaction
    workers: list[tuple[subprocess.Popen, Path]] = []
    try:
        with con.cursor() as cur:
            cur.execute("LOCK TABLE trials IN ACCESS EXCLUSIVE MODE")
        workers = _start_workers(study, pg_url, 30, tmp_path / "logs2")
        deadline = time.time() + 120
        while _blocked_sessions(watch) < 2:
            exited = [(p, log) for p, log in workers if p.poll() is not None]
            assert not exited, f"a worker ended early:\n{exited[0][1].read_text()[-3000:]}"
            assert time.time() < deadline, "the workers never reached the study"
            time.sleep(0.1)
        con.rollback()  # releases the lock: both go
    except BaseException:
        for proc, _ in workers:  # leave no worker behind on a stopped server
            proc.kill()
            proc.wait()
        raise
    finally:
        con.close()
        watch.close()
    _wait(workers)
    done = _check_study(pg_url, study, 30)
    old = {t.number: (t.user_attrs["key"], t.user_attrs["metrics"]) for t in first}
    now = {t.number: (t.user_attrs["key"], t.user_attrs["metrics"]) for t in done}
    assert {n: now.get(n) for n in old} == old  # the first 12 are kept as they were
    new = [t for t in done if t.number not in old]
    assert len(new) == 18
    by_pid = {int(t.user_attrs["worker"].rpartition(":")[2]) for t in new}
    pids = {proc.pid for proc, _ in workers}
    assert by_pid == pids, f"workers {pids}, trials done by {by_pid}"

    # 3. the study is in the database, not in --study: another directory reaches it too, and
    # other settings are refused with advice that fits --storage
    args = _search_args(tmp_path / "elsewhere", pg_url, 30)
    res = run_cli(*[("aging" if a == "random" else a) for a in args])
    assert res.returncode == 2, res.stderr
    assert "strategy" in res.stderr and "another database for --storage" in res.stderr


def test_passwords_stay_out_of_messages_and_a_bad_one_is_one_line(pg_url, tmp_path):
    con = psycopg2.connect(pg_url)
    con.autocommit = True
    with con.cursor() as cur:
        cur.execute("CREATE DATABASE hannah_empty")
    con.close()
    env = {k: v for k, v in os.environ.items() if k != "PGPASSWORD"}
    empty = pg_url.rsplit("/", 1)[0] + "/hannah_empty"
    in_url = empty.replace(f"{PG_USER}@", f"{PG_USER}:{PG_PASSWORD}@")
    res = run_cli("search", "--study", tmp_path, "--storage", in_url, "--show", env=env)
    assert res.returncode == 2 and "no study at" in res.stderr, res.stderr  # it got in
    assert PG_PASSWORD not in res.stderr and f"{PG_USER}:***@" in res.stderr
    for url in (empty, empty.replace(f"{PG_USER}@", f"{PG_USER}:wrong-{PG_PASSWORD}@")):
        res = run_cli("search", "--study", tmp_path, "--storage", url, "--show", env=env)
        assert res.returncode == 2 and "cannot be opened" in res.stderr, res.stderr
        assert len(res.stderr.strip().splitlines()) == 1 and PG_PASSWORD not in res.stderr
        assert "password" in res.stderr  # libpq's cause: none supplied, or it failed
