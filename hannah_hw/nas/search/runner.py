"""Running a search: the worker loop (one process), several workers on one study, and the
results table with its Pareto front."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np
import optuna
from optuna.trial import TrialState

from hannah_hw.nas.archspec import ArchSpec, build_space
from hannah_hw.nas.cost import cost_metrics
from hannah_hw.nas.space import set_params
from hannah_hw.util.proc import die_with_parent

from .evaluators import EvaluatorChoice, cost_only
from .interrupt import Interrupted, Interrupts, handle_signals
from .objectives import SearchConfigError, check_names, finite, total_violation
from .pareto import pareto_front
from .strategies import STRATEGIES, Strategy, arch_key
from .study import (
    Heartbeat,
    SearchConfig,
    claim,
    counts,
    give_back_mine,
    history,
    open_study,
    reap_stale,
    rows,
    worker_tag,
)

MAX_PROPOSALS = 200
POLL_S = 0.5  # waiting for other workers' candidates, or for the workers
STOP_S = 30.0  # for workers to give their candidates back before they are killed


class SearchIncomplete(SearchConfigError):
    """Every worker ended before the budget was reached."""


def make_strategy(config: SearchConfig) -> Strategy:
    if config.strategy not in STRATEGIES:
        raise SearchConfigError(f"unknown strategy {config.strategy!r}; choose one of "
                                f"{', '.join(STRATEGIES)}")
    objectives, constraints = config.parsed()
    cls = STRATEGIES[config.strategy]
    if cls.name == "random":
        return cls(objectives, constraints)
    return cls(objectives, constraints, population=config.population)


def validate(config: SearchConfig, evaluators: EvaluatorChoice = cost_only):
    """Everything that can be checked before any work: space, strategy, metric names and the
    settings of ``evaluators(config)``, the evaluator class."""
    if config.budget < 1:
        raise SearchConfigError(f"budget must be at least 1, got {config.budget}")
    graph = build_space(config.space, config.space_kwargs)
    strategy = make_strategy(config)
    evaluator_cls = evaluators(config)
    check_names(strategy.objectives, strategy.constraints, evaluator_cls.metric_names)
    if not strategy.objectives:
        raise SearchConfigError("at least one objective is needed")
    evaluator_cls.check(config)
    return graph, strategy


def _propose(config, strategy, graph, hist, taken, slot):
    """A new valid architecture meeting the constraints on cost metrics known before training."""
    rng = np.random.default_rng([config.seed, slot])
    cheap = [c for c in strategy.constraints if c.name in ("macs", "weights", "peak_memory")]
    for _ in range(MAX_PROPOSALS):
        params = strategy.propose(graph, hist, rng)
        set_params(graph, params)
        if arch_key(graph) in taken:
            continue
        if cheap and total_violation(cheap, cost_metrics(graph)) > 0:
            continue
        return params
    raise SearchConfigError(f"no new architecture meets the constraints after {MAX_PROPOSALS} "
                            "proposals; loosen them or enlarge the space")


def run_worker(url: str, study_dir: Path, on_done: Callable[[], None] | None = None,
               evaluators: EvaluatorChoice = cost_only) -> int:
    """Evaluate candidates with ``evaluators(config)`` until the study holds ``budget``
    finished ones (waiting for other workers' candidates in flight: they may yet be given
    back). Returns how many this worker did. On SIGINT/SIGTERM it gives its running candidate
    back and raises Interrupted."""
    with handle_signals() as interrupts:
        study, config = open_study(url)
        tag = worker_tag()
        try:
            return _work(study, config, study_dir, tag, interrupts, on_done, evaluators)
        except BaseException:
            with interrupts.deferred(), contextlib.suppress(Exception):
                give_back_mine(study, tag)
            raise


def _work(study, config, study_dir, tag, interrupts, on_done, evaluators) -> int:
    graph, strategy = validate(config, evaluators)
    evaluator = evaluators(config).from_config(config)
    archive = study_dir / "archs"
    archive.mkdir(parents=True, exist_ok=True)
    give_back_mine(study, tag, "stale")  # a dead process's, whose pid this one got
    done = 0
    while True:
        reap_stale(study)
        trials = study.get_trials(deepcopy=False)
        waiting = any(t.state == TrialState.WAITING for t in trials)
        if not waiting and sum(counts(t) for t in trials) >= config.budget:
            if _progress(trials) >= config.budget:
                return done
            time.sleep(POLL_S)  # others' candidates in flight
            continue
        trial = claim(study, tag)
        try:
            with Heartbeat(study, trial):
                if not _evaluate(study, config, trial, graph, strategy, evaluator, study_dir,
                                 interrupts):
                    continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # given back meanwhile (its heartbeat looked dead): another takes it
        done += 1
        if on_done:
            on_done()


def _evaluate(study, config, trial, graph, strategy, evaluator, study_dir, interrupts) -> bool:
    """Propose (or take the queued architecture), evaluate and commit one candidate. False
    when it came too late for the budget or was given back while it ran."""
    if "arch" in trial.user_attrs:  # queued again after its worker died or stopped
        spec = ArchSpec.from_json(trial.user_attrs["arch"])
        set_params(graph, spec.params)
    else:
        trials = study.get_trials(deepcopy=False)
        slot = sum(counts(t) for t in trials if t.number < trial.number)
        if slot >= config.budget:
            trial.set_user_attr("reason", "over_budget")
            study.tell(trial, state=TrialState.FAIL)
            return False
        taken = {t.user_attrs["key"] for t in trials if "key" in t.user_attrs and counts(t)}
        _propose(config, strategy, graph, history(study), taken, slot)
        spec = ArchSpec.from_graph(config.space, graph, config.space_kwargs)
        trial.set_user_attr("arch", spec.to_json())
    trial.set_user_attr("key", arch_key(graph))
    try:
        metrics = evaluator(spec, graph)
        values = [metrics[o.name] for o in strategy.objectives]
        if not finite(values):
            raise ValueError(f"objective values are not finite: {values}")
    except Exception as e:  # a failed candidate is a result too; record why
        with interrupts.deferred():
            trial.set_user_attr("reason", "error")
            trial.set_user_attr("error", f"{type(e).__name__}: {e}")
            trial.set_user_attr("traceback", traceback.format_exc()[-4000:])
            study.tell(trial, state=TrialState.FAIL)
        return True
    stem = f"trial_{trial.number:05d}"
    # committed with its files in one piece: a signal waits, a SIGKILL leaves the files of a
    # candidate that is then given back (sync_archive tidies them)
    with interrupts.deferred():
        if hasattr(evaluator, "save_artefacts"):
            evaluator.save_artefacts(study_dir, stem)
        spec.save(study_dir / "archs" / f"{stem}.json")
        try:
            trial.set_user_attr("metrics", metrics)
            study.tell(trial, values)
        except optuna.exceptions.UpdateFinishedTrialError:  # given back meanwhile
            (study_dir / "archs" / f"{stem}.json").unlink(missing_ok=True)
            return False
    return True


def _worker_main(url: str, study_dir: str, parent: int, evaluators: EvaluatorChoice) -> None:
    """A ``--workers`` process: it stops (giving its candidate back) when its parent dies."""
    die_with_parent(signal.SIGTERM, parent)
    try:
        run_worker(url, Path(study_dir), evaluators=evaluators)
    except Interrupted as e:
        sys.exit(e.exit_code)


def _progress(trials) -> int:
    finished = (TrialState.COMPLETE, TrialState.FAIL)
    return sum(1 for t in trials if t.state in finished and counts(t))


def progress(study: optuna.Study) -> int:
    """Finished candidates that count against the budget."""
    return _progress(study.get_trials(deepcopy=False))


def sync_archive(study: optuna.Study, study_dir: Path) -> None:
    """archs/ holds exactly the finished candidates' ArchSpecs: a worker killed between its
    files and its commit leaves a file of a candidate that was given back, and on a shared
    database the other hosts' candidates are written here too."""
    archive = study_dir / "archs"
    archive.mkdir(parents=True, exist_ok=True)
    trials = study.get_trials(deepcopy=False)
    done = {f"trial_{t.number:05d}.json": t for t in trials if t.state == TrialState.COMPLETE}
    failed = {f"trial_{t.number:05d}.json" for t in trials if t.state == TrialState.FAIL}
    for p in archive.glob("trial_*.json"):
        if p.name in failed:
            p.unlink(missing_ok=True)
    for name, t in done.items():
        if not (archive / name).is_file():
            ArchSpec.from_json(t.user_attrs["arch"]).save(archive / name)


def run_search(config: SearchConfig, study_dir: Path, url: str, workers: int = 1,
               show_progress: bool = True, evaluators: EvaluatorChoice = cost_only) -> None:
    """Create or resume the study and run ``workers`` processes on it until it holds
    ``budget`` finished candidates, evaluated by ``evaluators(config)`` (a module-level
    function: it is pickled into the worker processes; the study records nothing of it).
    SIGINT/SIGTERM: Interrupted, after every worker gave its candidate back, saying how many
    are done."""
    from tqdm import tqdm

    validate(config, evaluators)
    study_dir.mkdir(parents=True, exist_ok=True)
    study, config = open_study(url, config)
    bar = tqdm(total=config.budget, initial=min(progress(study), config.budget),
               desc="search", unit="cand", disable=not show_progress)

    def update():
        bar.n = min(progress(study), config.budget)
        bar.refresh()

    with handle_signals() as interrupts:  # after the first signal, further ones are ignored
        try:
            if workers <= 1:
                run_worker(url, study_dir, update, evaluators)
            else:
                _run_workers(url, study_dir, workers, update, interrupts, evaluators)
            update()
        except Interrupted as e:
            raise Interrupted(e.signum, f"interrupted ({signal.Signals(e.signum).name}): "
                              f"{progress(study)} of {config.budget} candidates done; run the "
                              "same command again to resume") from None
        finally:
            bar.close()
    if progress(study) < config.budget:  # every worker failed
        raise SearchIncomplete(f"the search workers stopped with {progress(study)} of "
                               f"{config.budget} candidates done; run again to resume")
    sync_archive(study, study_dir)


def _run_workers(url: str, study_dir: Path, workers: int, update: Callable[[], None],
                 interrupts: Interrupts, evaluators: EvaluatorChoice) -> None:
    """``workers`` processes on the study; on a signal they are stopped and waited for."""
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_worker_main,
                         args=(url, str(study_dir), os.getpid(), evaluators))
             for _ in range(workers)]
    try:
        for p in procs:
            p.start()
        while any(p.is_alive() for p in procs):
            time.sleep(POLL_S)
            update()
    except BaseException:
        with interrupts.deferred():
            _stop(procs)
        raise


def _stop(procs) -> None:
    """SIGTERM (each worker gives its candidate back), then SIGKILL after STOP_S."""
    for p in procs:
        if p.is_alive():
            p.terminate()
    deadline = time.time() + STOP_S
    for p in procs:
        if p.pid is not None:
            p.join(max(0.0, deadline - time.time()))
            if p.is_alive():
                p.kill()
                p.join()


def summary(url: str) -> dict:
    """Results and Pareto front (feasible candidates only) as plain data."""
    study, config = open_study(url)
    objectives, _ = config.parsed()
    table = rows(study, config)
    done = [r for r in table if r["state"] == "done"]
    feasible = [r for r in done if r["feasible"]]
    F = np.array([[o.loss(r["metrics"]) for o in objectives] for r in feasible]).reshape(
        len(feasible), len(objectives))
    front = sorted(feasible[i]["number"] for i in pareto_front(F))
    return {"config": config.to_dict(), "rows": table, "pareto": front,
            "budget_used": sum(1 for r in table), "budget": config.budget}


def format_summary(s: dict) -> str:
    cfg = s["config"]
    names = [o.split(":")[0] for o in cfg["objectives"]]
    extra = [k for k in ("macs", "weights", "peak_memory", "accuracy") if k not in names]
    cols = ["#", *names, *extra, "ok", "front"]
    lines = [f"study: {cfg['strategy']} on {cfg['space']}  ({s['budget_used']}/{s['budget']} "
             f"candidates; objectives {', '.join(cfg['objectives'])}"
             + (f"; constraints {', '.join(cfg['constraints'])}" if cfg["constraints"] else "")
             + ")"]
    table = [cols]
    for r in s["rows"]:
        m = r["metrics"]
        if r["state"] == "failed":
            table.append([str(r["number"]), f"failed: {r['error'][:60]}"])
            continue
        table.append([str(r["number"]), *(_fmt(m.get(k)) for k in (*names, *extra)),
                      "yes" if r["feasible"] else "no", "*" if r["number"] in s["pareto"] else ""])
    widths = [max(len(row[i]) for row in table if i < len(row)) for i in range(len(cols))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in table]
    lines.append(f"Pareto front ({len(s['pareto'])}): candidates "
                 f"{', '.join(map(str, s['pareto'])) or 'none'}; architectures in archs/")
    return "\n".join(lines)


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and not v.is_integer():
        return f"{v:.4g}"
    return f"{int(v):,}" if isinstance(v, (int, float)) else str(v)


def plot_summary(s: dict, path: Path) -> Path:
    """Scatter of the first two objectives (or objective vs candidate number), front marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [o.split(":")[0] for o in s["config"]["objectives"]]
    done = [r for r in s["rows"] if r["state"] == "done"]
    xs_name, ys_name = (names[0], names[1]) if len(names) > 1 else ("candidate", names[0])

    def val(r, k):
        return r["number"] if k == "candidate" else r["metrics"][k]

    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=120)
    for feasible, style in ((True, dict(c="tab:blue", label="feasible")),
                            (False, dict(c="tab:gray", marker="x", label="infeasible"))):
        pts = [r for r in done if r["feasible"] == feasible]
        ax.scatter([val(r, xs_name) for r in pts], [val(r, ys_name) for r in pts], s=18,
                   alpha=0.7, **style)
    front = sorted((r for r in done if r["number"] in s["pareto"]),
                   key=lambda r: val(r, xs_name))
    ax.plot([val(r, xs_name) for r in front], [val(r, ys_name) for r in front], "o-",
            c="tab:red", label="Pareto front")
    ax.set_xlabel(xs_name)
    ax.set_ylabel(ys_name)
    over = f"; front over all {len(names)} objectives" if len(names) > 2 else ""
    ax.set_title(f"{s['config']['strategy']}: {len(done)} candidates{over}")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
