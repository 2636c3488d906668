"""The FPGA command: ``bitstream`` (a generated accelerator, or the SoC with its firmware,
built for a board with the open tools)."""

from __future__ import annotations

from pathlib import Path

import click

from hannah_hw.accel.config import ConfigError
from hannah_hw.cli_common import user_errors
from hannah_hw.fpga.boards import BOARDS


@click.command()
@click.argument("hwdir", type=click.Path())
@click.option("--board", "board_name", required=True, type=click.Choice(sorted(BOARDS)))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="DIR: the bitstream, report.json and the build's files.")
@click.option("--top", type=click.Choice(["accel", "soc"]), default="accel", show_default=True,
              help="accel: the accelerator behind a UART-to-Wishbone bridge; soc: the core "
                   "+ accelerator with the firmware in RAM (needs --fwdir).")
@click.option("--fwdir", type=click.Path(file_okay=False), default=None,
              help="FWDIR from 'hannah-hw firmware' (for --top soc).")
@user_errors
def bitstream(hwdir, board_name, out_dir, top, fwdir):
    """Build an FPGA bitstream of a generated accelerator (HWDIR) for a board."""
    from hannah_hw.fpga.build import build_bitstream  # amaranth: only this command needs it

    if fwdir and top != "soc":  # else it would be ignored without a word
        raise ConfigError("--fwdir goes with --top soc (the accelerator alone runs no firmware)")
    rep = build_bitstream(Path(hwdir), board_name, Path(out_dir), top,
                          Path(fwdir) if fwdir else None,
                          lambda s: click.echo(f"bitstream: {s}", err=True))
    r = rep["resources"]
    parts = ", ".join(f"{k.upper()} {v['used']:,}/{v['available']:,}" for k, v in r.items())
    if "lc" in rep["placed"]:  # iCE40: what fills the device is the logic cells
        parts += f", logic cells {rep['placed']['lc']:,}/{r['lut']['available']:,}"
    click.echo(f"wrote {rep['bitstream']}: {parts}; fmax {rep['fmax_mhz']:.1f} MHz (target "
               f"{rep['target_mhz']:g} MHz{'' if rep['timing_met'] else ', NOT MET'}); "
               f"built in {rep['build_seconds']:.0f} s")
    if "schedule_note" in rep:
        click.echo(f"note: {rep['schedule_note']}", err=True)
    if "program" in rep:
        click.echo(f"the firmware boots from flash: {rep['program']} (in {out_dir})")
