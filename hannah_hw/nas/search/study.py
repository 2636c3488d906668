"""The study store: Optuna's SQLAlchemy storage (SQLite in the study directory by default, or
any database URL). Every finished candidate is committed as it finishes; a candidate whose
worker died is failed and queued again with the same architecture."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import socket
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
from optuna.trial import TrialState

from .objectives import Constraint, Objective, SearchConfigError, total_violation
from .strategies import Candidate

STUDY_NAME = "hannah-hw"
HEARTBEAT_S = 10.0
STALE_S = 60.0
# reasons a trial does not count against the budget
UNCOUNTED = ("stale", "over_budget")

optuna.logging.set_verbosity(optuna.logging.WARNING)


@dataclasses.dataclass(frozen=True)
class SearchConfig:
    space: str
    strategy: str
    budget: int
    objectives: tuple[str, ...]
    constraints: tuple[str, ...] = ()
    seed: int = 0
    space_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    dataset: str | None = None
    epochs: int = 0
    population: int = 20
    qat_epochs: int = 0
    wbits: int = 8
    abits: int = 8
    limit: int | None = None
    kws_clips: int = 20000  # synthesised clips of the kws data set
    pe_cols: int | None = None  # MAC lanes of the priced accelerator (None: derived)
    board: str | None = None  # FPGA whose resources are estimated (None: no estimate)

    def parsed(self) -> tuple[list[Objective], list[Constraint]]:
        return ([Objective.parse(o) for o in self.objectives],
                [Constraint.parse(c) for c in self.constraints])

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["objectives"], d["constraints"] = list(self.objectives), list(self.constraints)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> SearchConfig:
        d = dict(d)
        d["objectives"], d["constraints"] = tuple(d["objectives"]), tuple(d["constraints"])
        return cls(**d)


def storage_url(study_dir: Path, storage: str | None) -> str:
    return storage or f"sqlite:///{(study_dir / 'study.db').resolve()}"


def open_storage(url: str) -> optuna.storages.RDBStorage:
    kwargs = {"connect_args": {"timeout": 120}} if url.startswith("sqlite") else {}
    return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)


def _shown(url: str) -> str:
    """The URL for messages, without its password."""
    return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)


def _fresh_study_hint(url: str) -> str:
    """The study lives in the database: with --storage a new --study directory still reaches
    the same study, so only another database starts afresh."""
    if url.startswith("sqlite"):
        return "use a new --study directory"
    return "use another database for --storage (one database holds one study)"


@contextlib.contextmanager
def _opening_lock(url: str) -> Iterator[None]:
    """Serialise opening the study between workers on a database server. Creating Optuna's
    schema, its version rows and the study with its config are each check-then-create: two
    workers starting at once on an empty PostgreSQL database collide (a duplicate key in
    pg_type) or one loads the study before its config is stored. SQLite needs no lock here:
    its ``--workers`` open the study in one process first."""
    if not url.startswith("postgresql"):
        yield
        return
    key = zlib.crc32(STUDY_NAME.encode())
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as con:  # a session-level lock; closing the connection frees it
            con.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": key})
            try:
                yield
            finally:
                con.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
    finally:
        engine.dispose()


def open_study(url: str, config: SearchConfig | None = None) -> tuple[optuna.Study, SearchConfig]:
    """Open (or with ``config``, create) the study; a resumed study must match its config,
    except for the budget, which may grow."""
    with _opening_lock(url):
        return _open_study(url, config)


def _open_study(url: str, config: SearchConfig | None) -> tuple[optuna.Study, SearchConfig]:
    storage = open_storage(url)
    exists = STUDY_NAME in {s.study_name for s in optuna.get_all_study_summaries(storage)}
    if not exists:
        if config is None:
            raise SearchConfigError(f"no study at {_shown(url)}")
        objectives, _ = config.parsed()
        study = optuna.create_study(
            storage=storage, study_name=STUDY_NAME,
            directions=["minimize" if o.direction == "min" else "maximize" for o in objectives])
        study.set_user_attr("config", config.to_dict())
        return study, config
    study = optuna.load_study(study_name=STUDY_NAME, storage=storage)
    stored = SearchConfig.from_dict(study.user_attrs["config"])
    if config is not None:
        diff = [f.name for f in dataclasses.fields(SearchConfig)
                if f.name != "budget" and getattr(stored, f.name) != getattr(config, f.name)]
        if diff:
            raise SearchConfigError(
                f"the study at {_shown(url)} was started with other settings ({', '.join(diff)}: "
                + "; ".join(f"{getattr(stored, d)!r} there vs {getattr(config, d)!r} now"
                            for d in diff) + "); " + _fresh_study_hint(url))
        if config.budget != stored.budget:
            study.set_user_attr("config", config.to_dict())
        stored = config
    return study, stored


def counts(t: optuna.trial.FrozenTrial) -> bool:
    """Does this trial use up budget? Finished work and work in flight do."""
    return t.user_attrs.get("reason") not in UNCOUNTED


def history(study: optuna.Study) -> list[Candidate]:
    """Finished, successful candidates in completion order."""
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    done.sort(key=lambda t: (t.datetime_complete, t.number))
    return [Candidate(t.number, json.loads(t.user_attrs["arch"])["params"],
                      t.user_attrs["metrics"]) for t in done]


def worker_tag() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _alive(tag: str) -> bool | None:
    """True/False for a worker on this host; None when it runs elsewhere."""
    host, _, pid = tag.rpartition(":")
    if host != socket.gethostname():
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return True


def reap_stale(study: optuna.Study) -> int:
    """Fail candidates whose worker died and queue their architecture again."""
    storage = study._storage
    now = time.time()
    reaped = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        tag = t.user_attrs.get("worker")
        beat = t.user_attrs.get("heartbeat", t.datetime_start.timestamp())
        alive = _alive(tag) if tag else None
        if alive is True or (alive is None and now - beat < STALE_S):
            continue
        try:
            storage.set_trial_user_attr(t._trial_id, "reason", "stale")
            storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another worker finished or reaped it first
        if "arch" in t.user_attrs:
            attrs = {k: t.user_attrs[k] for k in ("arch", "key") if k in t.user_attrs}
            study.enqueue_trial({}, user_attrs={**attrs, "retry_of": t.number})
        reaped += 1
    return reaped


class Heartbeat:
    """Marks a running candidate as alive, for workers on other machines to see."""

    def __init__(self, study: optuna.Study, trial: optuna.Trial):
        self._stop = threading.Event()
        storage, tid = study._storage, trial._trial_id

        def beat():
            while not self._stop.wait(HEARTBEAT_S):
                try:
                    storage.set_trial_user_attr(tid, "heartbeat", time.time())
                except optuna.exceptions.UpdateFinishedTrialError:
                    return

        self._thread = threading.Thread(target=beat, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def rows(study: optuna.Study, config: SearchConfig) -> list[dict]:
    """Every finished candidate with its metrics and feasibility, for tables and reports."""
    _, constraints = config.parsed()
    out = []
    for t in study.get_trials(deepcopy=False):
        if t.state == TrialState.COMPLETE:
            m = t.user_attrs["metrics"]
            out.append({"number": t.number, "state": "done", "metrics": m,
                        "feasible": total_violation(constraints, m) == 0,
                        "arch": json.loads(t.user_attrs["arch"])})
        elif t.state == TrialState.FAIL and counts(t):
            out.append({"number": t.number, "state": "failed",
                        "error": t.user_attrs.get("error", ""), "metrics": {}, "feasible": False})
    return out
