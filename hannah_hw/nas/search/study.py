"""The study store: Optuna's SQLAlchemy storage (see :mod:`.storage`). Every finished candidate
is committed as it finishes. A candidate is created already owned by its worker, so it is
never without one; a candidate whose worker died or gave up is failed, uncounted, and queued
again with the same architecture."""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
from optuna.trial import TrialState

from .objectives import Constraint, Objective, SearchConfigError, total_violation
from .storage import (
    is_sqlite,
    masked,
    open_storage,
    opening_errors,
    opening_lock,
    storage_url,
)
from .strategies import Candidate

__all__ = ["SearchConfig", "open_study", "storage_url"]

STUDY_NAME = "hannah-hw"
HEARTBEAT_S = 10.0
STALE_S = 60.0  # a heartbeat this old: the worker on another host is gone
LOCAL_STALE_S = 300.0  # this old with the worker's pid alive: a reused pid or a hung worker
# reasons a trial does not count against the budget: its worker died ("stale") or was
# stopped ("interrupted") and its architecture was queued again, or it came too late
UNCOUNTED = ("stale", "interrupted", "over_budget")

optuna.logging.set_verbosity(optuna.logging.WARNING)


# a study stored before the evaluator's settings were split off held them among the search's,
# in one flat dict: the group each key belongs to now (unused, and dropped, without a data set)
_FLAT_GROUPS = {"training": ("dataset", "epochs", "qat_epochs", "wbits", "abits", "limit",
                             "kws_clips"),
                "hardware": ("pe_cols", "board")}


@dataclasses.dataclass(frozen=True, kw_only=True)
class SearchConfig:
    """What the search decides by. ``evaluation`` holds the settings of the evaluator handed
    in (by group, as plain JSON data, e.g. training and hardware): the search stores them with
    the study and holds a resumed run to them, but never reads them."""

    space: str
    space_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    strategy: str
    budget: int
    population: int = 20
    objectives: tuple[str, ...]
    constraints: tuple[str, ...] = ()
    seed: int = 0
    evaluation: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)

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
        if "evaluation" not in d:  # stored flat, before the split
            groups = {g: {k: d.pop(k) for k in keys if k in d} for g, keys in _FLAT_GROUPS.items()}
            d["evaluation"] = groups if groups["training"].get("dataset") is not None else {}
        d["objectives"], d["constraints"] = tuple(d["objectives"]), tuple(d["constraints"])
        return cls(**d)

    def settings(self) -> dict[str, Any]:
        """Every setting by name (the evaluator's as group.name), to say which ones a resumed
        run changed."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
             if f.name != "evaluation"}
        for group, values in self.evaluation.items():
            d.update({f"{group}.{k}": v for k, v in values.items()})
        return d


def _fresh_study_hint(url: str) -> str:
    """The study lives in the database: with --storage a new --study directory still reaches
    the same study, so only another database starts afresh."""
    if is_sqlite(url):
        return "use a new --study directory"
    return "use another database for --storage (one database holds one study)"


def open_study(url: str, config: SearchConfig | None = None) -> tuple[optuna.Study, SearchConfig]:
    """Open (or with ``config``, create) the study; a resumed study must match its config,
    except for the budget, which may grow."""
    with opening_lock(url), opening_errors(url):
        return _open_study(url, config)


def _open_study(url: str, config: SearchConfig | None) -> tuple[optuna.Study, SearchConfig]:
    storage = open_storage(url)
    exists = STUDY_NAME in {s.study_name for s in optuna.get_all_study_summaries(storage)}
    study = optuna.load_study(study_name=STUDY_NAME, storage=storage) if exists else None
    # a study without its config was cut off right after its creation: it has no trials yet
    if study is None or "config" not in study.user_attrs:
        if config is None:
            raise SearchConfigError(f"no study at {masked(url)}")
        if study is None:
            objectives, _ = config.parsed()
            study = optuna.create_study(
                storage=storage, study_name=STUDY_NAME,
                directions=["minimize" if o.direction == "min" else "maximize"
                            for o in objectives])
        study.set_user_attr("config", config.to_dict())
        return study, config
    stored = SearchConfig.from_dict(study.user_attrs["config"])
    if config is not None:
        there, now = stored.settings(), config.settings()
        diff = [k for k in {**there, **now} if k != "budget"
                and (k not in there or k not in now or there[k] != now[k])]
        if diff:
            raise SearchConfigError(
                f"the study at {masked(url)} was started with other settings ({', '.join(diff)}: "
                + "; ".join(f"{there.get(d)!r} there vs {now.get(d)!r} now" for d in diff)
                + "); " + _fresh_study_hint(url))
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


def _alive(tag: str, since: float) -> bool | None:
    """True/False for a worker on this host; None when it runs elsewhere. A zombie is dead,
    and so is a pid whose process started after ``since`` (the candidate's start): reused."""
    host, _, pid = tag.rpartition(":")
    if host != socket.gethostname():
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    try:  # Linux: state and start time (clock ticks after boot) from /proc
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        with open("/proc/stat") as f:
            boot = next(int(ln.split()[1]) for ln in f if ln.startswith("btime"))
    except (OSError, ValueError, IndexError, StopIteration):
        return True
    started = boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    return fields[0] != "Z" and started < since + 2.0  # btime is in whole seconds


def _rdb(study: optuna.Study) -> optuna.storages.RDBStorage:
    storage = study._storage
    return getattr(storage, "_backend", storage)


def claim(study: optuna.Study, tag: str) -> optuna.Trial:
    """The next candidate, owned by worker ``tag`` from the moment it exists: a queued one
    (an architecture given back) first, else a new one. Owner and state are written in one
    transaction each, so a worker killed at any instant leaves no candidate without an owner
    (which only the 60 s heartbeat timeout could recover)."""
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    rdb = _rdb(study)
    for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        with _create_scoped_session(rdb.scoped_session) as session:
            # a conditional update: exactly one worker takes it, on SQLite as on PostgreSQL
            took = session.execute(
                sqlalchemy.update(models.TrialModel)
                .where(models.TrialModel.trial_id == t._trial_id,
                       models.TrialModel.state == TrialState.WAITING)
                .values(state=TrialState.RUNNING, datetime_start=datetime.datetime.now())
                .execution_options(synchronize_session=False)
            ).rowcount
            if took == 1:
                session.add(models.TrialUserAttributeModel(
                    trial_id=t._trial_id, key="worker", value_json=json.dumps(tag)))
        if took == 1:
            return optuna.Trial(study, t._trial_id)
    template = optuna.trial.create_trial(state=TrialState.RUNNING, user_attrs={"worker": tag})
    return optuna.Trial(study, study._storage.create_new_trial(study._study_id, template))


def _give_back(study: optuna.Study, t: optuna.trial.FrozenTrial, reason: str) -> bool:
    """Fail a running candidate as uncounted and queue its architecture again (if it had one
    yet). False when it had finished or been given back meanwhile."""
    storage = study._storage
    try:
        storage.set_trial_user_attr(t._trial_id, "reason", reason)
        storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
    except optuna.exceptions.UpdateFinishedTrialError:
        return False
    if "arch" in t.user_attrs:
        attrs = {k: t.user_attrs[k] for k in ("arch", "key") if k in t.user_attrs}
        study.enqueue_trial({}, user_attrs={**attrs, "retry_of": t.number})
    return True


def reap_stale(study: optuna.Study) -> int:
    """Give back candidates whose worker died: at once when it ran on this host (its process
    is gone), else when its heartbeat is older than STALE_S (LOCAL_STALE_S for a live pid on
    this host: reused, or a hung worker)."""
    now = time.time()
    reaped = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        tag = t.user_attrs.get("worker")
        beat = t.user_attrs.get("heartbeat", t.datetime_start.timestamp())
        alive = _alive(tag, t.datetime_start.timestamp()) if tag else None
        if alive is not False and now - beat < (LOCAL_STALE_S if alive else STALE_S):
            continue
        reaped += _give_back(study, t, "stale")
    return reaped


def give_back_mine(study: optuna.Study, tag: str, reason: str = "interrupted") -> int:
    """On the way out of an interrupted worker: its running candidates are given back now,
    so a resumed search neither counts them nor waits for them. (At a worker's start: those
    of a dead process that had the same pid.)"""
    mine = [t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            if t.user_attrs.get("worker") == tag]
    return sum(_give_back(study, t, reason) for t in mine)


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
                except Exception:  # a database hiccup: the next beat tries again
                    continue

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
