"""The ``hannah-hw`` command line. Every user error ends in one line naming it, exit code 2."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import click


def _user_errors():
    from hannah_hw.nas.archspec import SpaceError
    from hannah_hw.nas.functional_operators.op import GraphError
    from hannah_hw.nas.parameters.parameters import InvalidValueError
    from hannah_hw.nas.search.objectives import SearchConfigError
    from hannah_hw.nas.space import SamplingError
    from hannah_hw.qat.datasets import DatasetError

    return (SpaceError, GraphError, InvalidValueError, SearchConfigError, SamplingError,
            DatasetError)


def user_errors(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except _user_errors() as e:
            click.echo(f"hannah-hw: error: {e}", err=True)
            sys.exit(2)

    return wrapper


def _space_args(pairs: tuple[str, ...]) -> dict:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--space-arg")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


space_arg_option = click.option(
    "--space-arg", "space_args", multiple=True, metavar="KEY=VALUE",
    help="Keyword argument for the space function (VALUE as JSON, else a string).")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hannah-hw")
def main():
    """hannah-hw: co-design a small neural network and the accelerator that runs it."""


@main.group()
def space():
    """Inspect search spaces written in the DSL (SPACE is FILE.py:FUNCTION)."""


@space.command("show")
@click.argument("space_ref", metavar="SPACE")
@click.option("--seed", default=0, show_default=True, help="Seed for the sampled architecture.")
@click.option("--save", type=click.Path(dir_okay=False), help="Write the sample's ArchSpec here.")
@space_arg_option
@user_errors
def space_show(space_ref, seed, save, space_args):
    """Parameters, their ranges, the size of the space, and one sampled architecture."""
    from hannah_hw.nas.archspec import ArchSpec, build_space
    from hannah_hw.nas.cost import cost_metrics
    from hannah_hw.nas.functional_operators.op import Tensor
    from hannah_hw.nas.space import active_nodes, space_size

    kwargs = _space_args(space_args)
    graph = build_space(space_ref, kwargs)
    params = graph.parametrization(flatten=True)
    click.echo(f"space {space_ref}: {len(params)} parameters, "
               f"{space_size(graph):.3g} points before constraints")
    width = max((len(k) for k in params), default=0)
    for key, p in params.items():
        click.echo(f"  {key.ljust(width)}  {p.domain()}")
    values = graph.sample(seed)
    click.echo(f"sample (seed {seed}):")
    for n in active_nodes(graph):
        if isinstance(n, Tensor) and n.owner is not None:
            continue
        click.echo(f"  {n!r:60s} {tuple(int(s) if s is not None else None for s in _shape(n))}")
    cost = cost_metrics(graph)
    click.echo("cost: " + ", ".join(f"{k} {v:,}" for k, v in cost.items()))
    if save:
        ArchSpec.from_graph(space_ref, graph, kwargs).save(save)
        click.echo(f"wrote {save}")
    return values


def _shape(node):
    from hannah_hw.nas.functional_operators.lazy import lazy

    return lazy(node.shape())


@main.command()
@click.argument("space_ref", metavar="SPACE", required=False)
@click.option("--study", "study_dir", required=True, type=click.Path(file_okay=False),
              help="Study directory (holds study.db and the candidates' ArchSpecs).")
@click.option("--show", is_flag=True, help="Print the results table and Pareto front, then exit.")
@click.option("--json", "as_json", is_flag=True, help="With --show: print JSON.")
@click.option("--strategy", type=click.Choice(["random", "aging", "nsga2"]), default="nsga2",
              show_default=True)
@click.option("--budget", type=int, default=20, show_default=True,
              help="Candidates to evaluate in total (a resumed study continues to this).")
@click.option("--objective", "objectives", multiple=True, metavar="NAME:min|max",
              help="Objective (repeatable). Default: error:min and macs:min with --dataset, "
                   "else macs:min and peak_memory:min.")
@click.option("--constraint", "constraints", multiple=True, metavar="NAME<=VALUE",
              help="Constraint on a metric (repeatable); also <, >=, >.")
@click.option("--workers", type=int, default=1, show_default=True,
              help="Worker processes sharing the study.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--dataset", type=click.Choice(["digits"]), default=None,
              help="Train each candidate on this data set (accuracy becomes a metric).")
@click.option("--epochs", type=int, default=2, show_default=True)
@click.option("--population", type=int, default=20, show_default=True,
              help="Population size of aging evolution and NSGA-II.")
@click.option("--storage", default=None, metavar="URL",
              help="Database URL (e.g. postgresql://...); default: sqlite in the study dir.")
@space_arg_option
@user_errors
def search(space_ref, study_dir, show, as_json, strategy, budget, objectives, constraints,
           workers, seed, dataset, epochs, population, storage, space_args):
    """Search SPACE; killed and started again with the same arguments, it resumes."""
    from hannah_hw.nas.search.objectives import SearchConfigError
    from hannah_hw.nas.search.runner import format_summary, run_search, summary
    from hannah_hw.nas.search.study import SearchConfig, storage_url

    study_path = Path(study_dir)
    url = storage_url(study_path, storage)
    if not show:
        if not space_ref:
            raise SearchConfigError("SPACE is required unless --show is given")
        from hannah_hw.nas.archspec import canonical_ref

        kwargs = _space_args(space_args)
        if dataset:
            from hannah_hw.qat.datasets import load_dataset

            kwargs = {**load_dataset(dataset).space_kwargs(), **kwargs}
        objectives = objectives or (("error:min", "macs:min") if dataset
                                    else ("macs:min", "peak_memory:min"))
        config = SearchConfig(canonical_ref(space_ref), strategy, budget, tuple(objectives),
                              tuple(constraints), seed, kwargs, dataset,
                              epochs if dataset else 0, population)
        run_search(config, study_path, url, workers=workers)
    elif storage is None and not (study_path / "study.db").is_file():
        raise SearchConfigError(f"no study in {study_dir} (no study.db)")
    s = summary(url)
    click.echo(json.dumps(s, indent=2, default=str) if as_json else format_summary(s))


if __name__ == "__main__":
    main()
