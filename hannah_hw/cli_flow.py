"""The whole job: ``flow`` (search to bitstream, resumable) and ``report`` (HTML and
Markdown from a RUNDIR)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from hannah_hw.cli_common import user_errors
from hannah_hw.flow_config import load_flow_config
from hannah_hw.nas.search.interrupt import exit_on_signal
from hannah_hw.report import write_report


@click.command()
@click.argument("config_path", metavar="CONFIG.yaml", type=click.Path())
@click.option("--out", "rundir", required=True, type=click.Path(file_okay=False),
              help="RUNDIR: every stage's artefacts and flow.json, the record of what is done.")
@exit_on_signal
@user_errors
def flow(config_path, rundir):
    """Search, confirm the front in RTL simulation, then train, generate, simulate, emit
    firmware, run it on the SoC and build the bitstream of the chosen network; ends with
    the report. Run again, it skips what is done."""
    from hannah_hw.flow import run_flow  # torch: only the flow command needs it

    cfg = load_flow_config(Path(config_path))
    try:
        run_flow(cfg, Path(rundir), log=lambda msg: click.echo(msg, err=True),
                 where=config_path)
    except KeyboardInterrupt as e:  # SIGINT or SIGTERM: exit 130 or 143
        click.echo(f"interrupted: finished stages are kept in {rundir}/flow.json; run the same "
                   "command again to resume", err=True)
        sys.exit(getattr(e, "exit_code", 130))
    click.echo(f"flow done: {rundir}/report.html")


@click.command()
@click.argument("rundir", type=click.Path(file_okay=False))
@user_errors
def report(rundir):
    """Write RUNDIR/report.html (self-contained) and RUNDIR/report.md from a flow's files."""
    html, md = write_report(Path(rundir))
    click.echo(f"wrote {html} and {md}")
