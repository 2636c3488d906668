"""The firmware commands: ``firmware`` (emit and build C for the host or the RV32 SoC) and
``soc-sim`` (the firmware on the simulated SoC, with or without the accelerator)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import numpy as np

from hannah_hw.cli_common import (
    COUNT,
    SOC_CYCLES,
    _load_batch,
    batch_io,
    check_output,
    user_errors,
    write_file,
)
from hannah_hw.fpga.boards import BOARDS
from hannah_hw.fw.build import build_firmware, hwdir_of, soc_config, soc_image
from hannah_hw.hw.hwdir import load_hwdir
from hannah_hw.ir.interpreter import run
from hannah_hw.simulate.verilator import SimulatorError
from hannah_hw.stages.soc_sim import soc_simulate


@click.command()
@click.argument("hwdir", type=click.Path())
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="FWDIR: generated headers and model, the runtime, and the builds.")
@click.option("--target", "targets", multiple=True, type=click.Choice(["host", "rv32"]),
              default=("host", "rv32"), show_default=True,
              help="host: the host compiler (reference kernels); rv32: the SoC's core.")
@click.option("--cpu", type=click.Choice(["picorv32", "serv"]), default="picorv32",
              show_default=True,
              help="The SoC's core: PicoRV32, or SERV (bit-serial RV32I, about a sixth of "
                   "the logic at ~35 cycles per instruction: the iCEBreaker's SoC).")
@click.option("--isa", type=click.Choice(["rv32im", "rv32i"]), default=None,
              help="The rv32 build's ISA; PicoRV32 is configured to match (rv32i: no "
                   "multiplier, divider or barrel shifter). Default: rv32im on PicoRV32, "
                   "rv32i on SERV.")
@click.option("--no-reference", is_flag=True,
              help="The rv32 build for the accelerator only: no reference kernels and no "
                   "second copy of the model (about half the RAM).")
@user_errors
def firmware(hwdir, out_dir, targets, cpu, isa, no_reference):
    """Emit C99 firmware for a generated accelerator (HWDIR) and build it."""
    from hannah_hw.fw.emit import emit_firmware  # amaranth: only the firmware command needs it

    out = emit_firmware(Path(hwdir), Path(out_dir))
    for target in targets:
        rec = build_firmware(out, target, isa, not no_reference, cpu)
        if target == "host":
            click.echo(f"{out}/hh_host: the reference kernels on this machine "
                       f"(cppcheck {rec.get('cppcheck', 'not installed')})")
        else:
            sz = rec["size"]
            click.echo(f"{out}/hh_fw.elf: text {sz['text']:,} B, rodata {sz['rodata']:,} B "
                       f"(weights {sz['weight_bytes']:,} B), data {sz['data']:,} B, bss "
                       f"{sz['bss']:,} B; RAM {rec['ram_bytes'] // 1024} KiB ({rec['isa']} on "
                       f"{cpu})")


@click.command("soc-sim")
@click.argument("fwdir", type=click.Path())
@batch_io
@click.option("--report", "report_path", type=click.Path(dir_okay=False), default=None,
              help="REPORT.json: cycles end to end, in the accelerator and in the driver.")
@click.option("--no-accel", is_flag=True,
              help="Run the reference kernels on the soft core instead of the accelerator.")
@click.option("--limit", type=COUNT, default=None, help="Only the first N inputs.")
@click.option("--max-cycles", type=SOC_CYCLES, default=1 << 36, show_default=True,
              help="For the whole run; a firmware that takes longer ends with an error.")
@click.option("--board", "board_name", type=click.Choice(sorted(BOARDS)), default=None,
              help="The SoC as that board's bitstream builds it: the RAM as one read and one "
                   "write port (the input DMA takes it from the core), on the iCEBreaker in "
                   "SPRAM beside the accelerator's iCE40 memories.")
@user_errors
def soc_sim(fwdir, input_path, output_path, report_path, no_accel, limit, max_cycles,
            board_name):
    """Run the emitted firmware on the simulated SoC (its core + accelerator, Verilator)."""
    # every input checked before the first line of progress: the FWDIR's HWDIR, the inputs,
    # where the outputs go, the rv32 build's record and image
    g, _, _ = load_hwdir(hwdir_of(Path(fwdir)))
    x = _load_batch(g, input_path)[:limit]
    check_output(output_path)
    check_output(report_path, "--report")
    _, ram, _, _ = soc_config(Path(fwdir))
    soc_image(Path(fwdir), ram)
    shape = g.tensors[g.outputs[0]].shape
    click.echo("building the SoC simulator (Verilator; reused when the design is unchanged)",
               err=True)
    try:
        with click.progressbar(length=len(x), label="inferences", file=sys.stderr) as bar:
            y, rep = soc_simulate(Path(fwdir), x, shape, not no_accel, max_cycles,
                                  lambda: bar.update(1), board_name)
    except SimulatorError as e:
        raise SimulatorError(f"SoC simulation of {fwdir}: {e}") from None
    ref = run(g, x)
    rep.update(reference_match=bool(np.array_equal(y, ref)),
               mismatching_outputs=int((y != ref).sum()))
    write_file(output_path, y)
    if report_path:
        write_file(report_path, json.dumps(rep, indent=2) + "\n", "--report")
    where = (f"{rep['accel_cycles']:,} in the accelerator + {rep['dma_cycles']:,} input DMA + "
             f"{rep['driver_cycles']:,} in the driver ({100 * rep['driver_share']:.2f} %)"
             if not no_accel else "all on the soft core")
    click.echo(f"wrote {output_path}: {len(x)} samples on the {rep['backend']}; "
               f"{rep['cycles']:,} cycles per inference end to end ({where}); outputs "
               f"{'equal' if rep['reference_match'] else 'DIFFER FROM'} the reference "
               f"interpreter; {rep['sim_cycles_per_s'] / 1e6:.2f} M simulated cycles/s")
    if not rep["reference_match"]:
        sys.exit(1)
