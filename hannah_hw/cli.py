"""The ``hannah-hw`` command line. Every user error ends in one line naming it, exit code 2."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from hannah_hw import cli_common as cc
from hannah_hw.accel.config import ConfigError, derive_config
from hannah_hw.accel.cost import predict_cost
from hannah_hw.accel.energy import per_mac_text
from hannah_hw.cli_common import (
    _load_arch,
    _load_batch,
    _space_args,
    batch_io,
    check_output,
    user_errors,
    write_file,
)
from hannah_hw.fpga.boards import BOARDS, board
from hannah_hw.fpga.resources import fit_config
from hannah_hw.hw.hwdir import load_hwdir
from hannah_hw.ir.interpreter import dequantize_output, run
from hannah_hw.ir.qgraph import QGraph, QGraphError
from hannah_hw.nas.archspec import ArchSpec, build_space, canonical_ref
from hannah_hw.nas.functional_operators.lazy import lazy
from hannah_hw.nas.functional_operators.op import Tensor
from hannah_hw.nas.search.interrupt import exit_on_signal
from hannah_hw.nas.search.objectives import SearchConfigError
from hannah_hw.nas.space import active_nodes, space_size
from hannah_hw.qat.settings import TrainSettings
from hannah_hw.simulate.verilator import SimulatorError
from hannah_hw.stages.generate import generate as gen
from hannah_hw.stages.simulate import min_cycles
from hannah_hw.stages.simulate import simulate as sim
from hannah_hw.util.names import printable

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
@click.option("--seed", type=cc.SEED, default=0, show_default=True,
              help="Seed for the sampled architecture.")
@click.option("--save", type=click.Path(dir_okay=False), help="Write the sample's ArchSpec here.")
@space_arg_option
@user_errors
def space_show(space_ref, seed, save, space_args):
    """Parameters, their ranges, the size of the space, and one sampled architecture."""
    from hannah_hw.nas.cost import cost_metrics  # torch: the sampled network is built

    kwargs = _space_args(space_args)
    graph = build_space(space_ref, kwargs)
    params = graph.parametrization(flatten=True)
    click.echo(f"space {space_ref}: {len(params)} parameters, "
               f"{space_size(graph):.3g} points before constraints")
    width = max((len(k) for k in params), default=0)
    for key, p in params.items():
        click.echo(f"  {key.ljust(width)}  {p.domain()}")
    graph.sample(seed)
    click.echo(f"sample (seed {seed}):")
    for n in active_nodes(graph):
        if isinstance(n, Tensor) and n.owner is not None:
            continue
        click.echo(f"  {n!r:60s} {tuple(int(s) if s is not None else None for s in _shape(n))}")
    cost = cost_metrics(graph)
    click.echo("cost: " + ", ".join(f"{k} {v:,}" for k, v in cost.items()))
    if save:
        write_file(save, ArchSpec.from_graph(space_ref, graph, kwargs).to_json() + "\n", "--save")
        click.echo(f"wrote {save}")


def _shape(node):

    return lazy(node.shape())


@main.command()
@click.argument("space_ref", metavar="SPACE", required=False)
@click.option("--study", "study_dir", required=True, type=click.Path(file_okay=False),
              help="Study directory (holds study.db and the candidates' ArchSpecs).")
@click.option("--show", is_flag=True, help="Print the results table and Pareto front, then exit.")
@click.option("--json", "as_json", is_flag=True, help="With --show: print JSON.")
@click.option("--plot", type=click.Path(dir_okay=False), default=None,
              help="Also draw the objectives and the Pareto front to this PNG.")
@click.option("--strategy", type=click.Choice(["random", "aging", "nsga2"]), default="nsga2",
              show_default=True)
@click.option("--budget", type=cc.COUNT, default=20, show_default=True,
              help="Candidates to evaluate in total (a resumed study continues to this).")
@click.option("--objective", "objectives", multiple=True, metavar="NAME:min|max",
              help="Objective (repeatable). Default: error:min and macs:min with --dataset, "
                   "else macs:min and peak_memory:min.")
@click.option("--constraint", "constraints", multiple=True, metavar="NAME<=VALUE",
              help="Constraint on a metric (repeatable); also <, >=, >.")
@click.option("--workers", type=cc.COUNT, default=1, show_default=True,
              help="Worker processes sharing the study.")
@click.option("--seed", type=cc.SEED, default=0, show_default=True)
@click.option("--dataset", type=click.Choice(["digits", "fashion", "kws"]), default=None,
              help="Train each candidate (float, then QAT) on this data set; its quantised "
                   "accuracy becomes a metric.")
@click.option("--epochs", type=cc.EPOCHS, default=2, show_default=True, help="Float epochs.")
@click.option("--qat-epochs", type=cc.EPOCHS, default=1, show_default=True)
@click.option("--wbits", type=cc.NBITS, default=8, show_default=True)
@click.option("--abits", type=cc.NBITS, default=8, show_default=True)
@click.option("--limit", type=cc.COUNT, default=None, help="Train on at most this many samples.")
@click.option("--population", type=click.IntRange(min=2), default=20, show_default=True,
              help="Population size of aging evolution and NSGA-II.")
@click.option("--kws-clips", type=cc.KWS_CLIPS, default=20000, show_default=True,
              help="Synthesised clips of the kws data set.")
@click.option("--pe-cols", type=cc.COUNT, default=None,
              help="MAC lanes of the accelerator that prices candidates (default: derived).")
@click.option("--board", type=click.Choice(sorted(BOARDS)), default="icebreaker",
              show_default=True, help="FPGA for the resource metrics (luts, dsps, brams, fits).")
@click.option("--storage", default=None, metavar="URL",
              help="Database URL (e.g. postgresql://...); default: sqlite in the study dir.")
@space_arg_option
@exit_on_signal
@user_errors
def search(space_ref, study_dir, show, as_json, plot, strategy, budget, objectives, constraints,
           workers, seed, dataset, epochs, qat_epochs, wbits, abits, limit, population, kws_clips,
           pe_cols, board, storage, space_args):
    """Search SPACE; killed and started again with the same arguments, it resumes."""
    from hannah_hw.nas.search.storage import storage_url

    check_output(plot, "--plot")
    study_path = Path(study_dir)
    url = storage_url(study_path, storage)  # a malformed URL fails before the heavy imports
    from hannah_hw.nas.search.runner import format_summary, plot_summary, run_search, summary
    from hannah_hw.nas.search.study import SearchConfig
    from hannah_hw.stages.price import HardwareSettings, evaluation_settings, search_evaluator
    if not show:
        if not space_ref:
            raise SearchConfigError("SPACE is required unless --show is given")

        kwargs = _space_args(space_args)
        if dataset:
            from hannah_hw.qat.datasets import space_kwargs_for

            kwargs = {**space_kwargs_for(dataset), **kwargs}
        objectives = objectives or (("error:min", "macs:min") if dataset
                                    else ("macs:min", "peak_memory:min"))
        settings = {}
        if dataset is not None:

            settings = evaluation_settings(
                TrainSettings(dataset=dataset, epochs=epochs, qat_epochs=qat_epochs, wbits=wbits,
                              abits=abits, limit=limit, kws_clips=kws_clips),
                HardwareSettings(pe_cols=pe_cols, board=board))
        config = SearchConfig(space=canonical_ref(space_ref), space_kwargs=kwargs,
                              strategy=strategy, budget=budget, population=population,
                              objectives=tuple(objectives), constraints=tuple(constraints),
                              seed=seed, evaluation=settings)
        run_search(config, study_path, url, workers=workers, evaluators=search_evaluator)
    elif storage is None and not (study_path / "study.db").is_file():
        raise SearchConfigError(f"no study in {study_dir} (no study.db)")
    s = summary(url)
    click.echo(json.dumps(s, indent=2, default=str) if as_json else format_summary(s))
    if plot:
        click.echo(f"wrote {plot_summary(s, Path(plot))}")


@main.command()
@click.argument("arch", metavar="ARCH.json|SPACE")
@click.option("--params", type=click.Path(dir_okay=False), help="Parameter values for SPACE.")
@click.option("--dataset", type=click.Choice(["kws", "fashion", "digits"]), required=True)
@click.option("--epochs", type=cc.EPOCHS, default=10, show_default=True, help="Float epochs.")
@click.option("--qat-epochs", type=cc.EPOCHS, default=3, show_default=True)
@click.option("--wbits", type=cc.NBITS, default=8, show_default=True, help="Weight bits (2-8).")
@click.option("--abits", type=cc.NBITS, default=8, show_default=True, help="Activation bits (2-8).")
@click.option("--scales", type=click.Choice(["pow2", "fixed"]), default="pow2", show_default=True,
              help="Power-of-two scales, or per-channel float scales with fixed-point "
                   "multipliers.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False))
@click.option("--seed", type=cc.SEED, default=0, show_default=True)
@click.option("--lr", type=cc.Positive(), default=3e-3, show_default=True)
@click.option("--batch-size", type=cc.COUNT, default=128, show_default=True)
@click.option("--patience", type=cc.COUNT, default=None, help="Early stopping patience (epochs).")
@click.option("--data-dir", type=click.Path(), default=None,
              help="Real data (Speech Commands layout for kws; IDX files for fashion).")
@click.option("--kws-clips", type=cc.KWS_CLIPS, default=20000, show_default=True,
              help="Synthesised keyword clips (generated once, cached).")
@click.option("--limit", type=cc.COUNT, default=None, help="At most this many training samples.")
@space_arg_option
@user_errors
def train(arch, params, dataset, epochs, qat_epochs, wbits, abits, scales, out_dir, seed, lr,
          batch_size, patience, data_dir, kws_clips, limit, space_args):
    """Train with quantisation in the loop; writes checkpoints, the QGraph and metrics."""
    from hannah_hw.qat.pipeline import TrainConfig, train_qat

    spec = _load_arch(arch, params, space_args)
    cfg = TrainConfig(dataset, epochs, qat_epochs, wbits, abits, scales, seed, lr, batch_size,
                      patience, data_dir, kws_clips, limit)
    m = train_qat(spec, cfg, Path(out_dir))
    e = m["bit_exact"]
    click.echo(f"float accuracy {m['float_accuracy']:.4f}, quantised (w{wbits}a{abits}) "
               f"{m['quant_accuracy']:.4f}; QAT model = QGraph on {e['identical']}/{e['outputs']} "
               f"outputs of {e['samples']} test samples; wrote {out_dir}/qgraph.json")
    if e["identical"] != e["outputs"]:
        click.echo("hannah-hw: error: the QAT model and the QGraph disagree (a bug; please "
                   "report it with the run directory)", err=True)
        sys.exit(1)


@main.command()
@click.argument("qgraph", type=click.Path())
@click.option("--input", "input_path", required=True, type=click.Path(),
              help="X.npy: float32 (quantised by the graph) or integers (taken as is).")
@click.option("--output", "output_path", required=True, type=click.Path(dir_okay=False))
@click.option("--dequantize", is_flag=True, help="Write float outputs instead of integers.")
@user_errors
def infer(qgraph, input_path, output_path, dequantize):
    """Run the integer reference interpreter on a batch."""

    g = QGraph.load(qgraph)
    y = run(g, _load_batch(g, input_path))
    write_file(output_path, dequantize_output(g, y) if dequantize else y)
    click.echo(f"wrote {output_path}: {y.shape[0]} samples, outputs {tuple(y.shape[1:])}")


@main.command("export-onnx")
@click.argument("qgraph", type=click.Path())
@click.option("-o", "--output", "output_path", required=True, type=click.Path(dir_okay=False))
@user_errors
def export_onnx_cmd(qgraph, output_path):
    """Write a QDQ ONNX model equal to `hannah-hw infer --dequantize` (exact under
    onnxruntime with graph optimisations off; see the README for the default level)."""
    from hannah_hw.ir.onnx_export import export_onnx

    model = export_onnx(QGraph.load(qgraph), output_path)
    click.echo(f"wrote {output_path}: {len(model.graph.node)} ONNX nodes (opset "
               f"{model.opset_import[0].version})")


@main.command("import-onnx")
@click.argument("model", type=click.Path())
@click.option("-o", "--output", "output_path", required=True, type=click.Path(dir_okay=False))
@click.option("--input-shape", default=None, metavar="C,H,W",
              help="Per-sample input shape (C,L or C,H,W; no batch axis) for models whose "
                   "input axes are dynamic (named). A dynamic batch axis needs none.")
@user_errors
def import_onnx_cmd(model, output_path, input_shape):
    """Read a quantised ONNX model (QDQ or QOperator) into a QGraph."""
    from hannah_hw.ir.onnx_import import import_onnx

    shape = None
    if input_shape is not None:
        try:
            shape = tuple(int(s) for s in input_shape.split(","))
        except ValueError:
            shape = ()
        if not shape or min(shape) < 1:
            raise QGraphError(f"--input-shape {input_shape!r}: must be positive integers "
                              "separated by commas, e.g. 3,32,32 (no batch axis)")
    g = import_onnx(model, shape)
    try:
        g.save(output_path)
    except OSError as e:
        raise QGraphError(f"-o {output_path}: cannot be written ({e.strerror or e})") from None
    click.echo(f"wrote {output_path}: {len(g.nodes)} nodes ({', '.join(n.op for n in g.nodes)}),"
               f" {g.macs():,} MACs per sample")


@main.command()
@click.argument("qgraph", type=click.Path())
@click.option("--pe-cols", type=cc.COUNT, default=None, help="MAC lanes (default: derived).")
@click.option("--clock-mhz", type=cc.Positive(10_000), default=None,
              help="[default: the board's clock, else 50]")
@click.option("--board", "board_name", type=click.Choice(sorted(BOARDS)), default=None,
              help="As generate --fit BOARD builds it: lanes that fit, the board's schedule.")
@click.option("--json", "as_json", is_flag=True)
@user_errors
def cost(qgraph, pe_cols, clock_mhz, board_name, as_json):
    """Predicted cycles, utilisation and energy of QGRAPH on the derived accelerator: the
    closed-form schedule of the RTL, checked against its counters by the tests."""

    g = QGraph.load(qgraph)
    if board_name:

        b = board(board_name)
        cfg = fit_config(g, board_name, pe_cols=pe_cols)
        default_mhz = b.target_hz / 1e6
    else:
        cfg, default_mhz = derive_config(g, pe_cols=pe_cols), 50.0
    clock_mhz = default_mhz if clock_mhz is None else clock_mhz
    c = predict_cost(g, cfg, clock_hz=clock_mhz * 1e6)
    if as_json:
        click.echo(json.dumps({"config": json.loads(cfg.to_json()), **c}, indent=2))
        return
    per_mac = per_mac_text(c["pj_per_mac"])
    click.echo(f"{cfg.mac_units} MAC units; {c['macs']:,} MACs in {c['cycles']:,} cycles "
               f"(U = {c['utilization']:.3f}), {c['latency_s'] * 1e3:.3f} ms at {clock_mhz:g} "
               f"MHz, {c['energy_pj'] / 1e6:.3f} uJ ({per_mac})")
    _layer_table(c["layers"])


def _layer_table(layers: list[dict]) -> None:
    for ly in layers:
        click.echo(f"  {ly['op']:15s} {ly['cycles']:>10,} cycles  U {ly['utilization']:.3f}  "
                   f"{printable(ly['name'])}")


@main.command()
@click.argument("qgraph", type=click.Path())
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="HWDIR to write.")
@click.option("--pe-rows", type=cc.COUNT, default=None, help="Output positions in parallel (1).")
@click.option("--pe-cols", type=cc.COUNT, default=None,
              help="MAC lanes, output channels in parallel (default: derived from the graph).")
@click.option("--fit", "fit_board", type=click.Choice(sorted(BOARDS)), default=None,
              help="Pick a configuration that fits this board (resource model), or fail.")
@user_errors
def generate(qgraph, out_dir, pe_rows, pe_cols, fit_board):
    """Generate the accelerator for QGRAPH: AccelConfig, Verilog, Program and summary."""

    s = gen(QGraph.load(qgraph), Path(out_dir), pe_rows, pe_cols, fit_board)
    c = s["config"]
    kbit = sum(s["memory_bits"].values()) / 1024
    click.echo(f"wrote {out_dir}: {s['mac_units']} MAC lanes, {c['weight_bits']}-bit weights, "
               f"{c['acc_bits']}-bit accumulators, {kbit:,.1f} kbit of memories, units "
               f"{', '.join(c['units'])}; {s['layers']} layers, predicted {s['predicted_cycles']:,}"
               f" cycles per inference (U = {s['predicted_utilization']:.3f})")


@main.command()
@click.argument("hwdir", type=click.Path())
@batch_io
@click.option("--report", "report_path", type=click.Path(dir_okay=False), default=None,
              help="REPORT.json: measured and predicted cycles, utilisation, energy per layer.")
@click.option("--clock-mhz", type=cc.Positive(10_000), default=50.0, show_default=True)
@click.option("--rate-hz", type=cc.Positive(), default=1.0, show_default=True,
              help="Inferences per second, for the average power.")
@click.option("--energy-table", type=click.Path(dir_okay=False), default=None,
              help="JSON of per-event energies (default: the cited 45 nm table).")
@click.option("--max-cycles", type=cc.SIM_CYCLES, default=1 << 30, show_default=True,
              help="Per inference; a run that takes longer ends with an error.")
@user_errors
def simulate(hwdir, input_path, output_path, report_path, clock_mhz, rate_hz, energy_table,
             max_cycles):
    """Run inputs through the generated RTL (Verilator): outputs and measured counters."""

    # every input checked before any progress: what fails after it is the run's own result
    g, cfg, prog = load_hwdir(Path(hwdir))
    x = _load_batch(g, input_path)
    table = cc.energy_table(energy_table)
    check_output(output_path)
    check_output(report_path, "--report")
    least = min_cycles(prog, cfg)
    if max_cycles < least:
        raise ConfigError(f"--max-cycles {max_cycles}: an inference of {hwdir} takes at least "
                          f"{least:,} cycles; the watchdog would stop each")
    click.echo("building the simulator (Verilator; reused when the design is unchanged)",
               err=True)
    try:
        with click.progressbar(length=len(x), label="inferences", file=sys.stderr) as bar:
            y, rep = sim(Path(hwdir), x, lambda: bar.update(1), clock_mhz * 1e6, rate_hz, table,
                         max_cycles)
    except SimulatorError as e:
        raise SimulatorError(f"simulation of {hwdir}: {e}") from None
    write_file(output_path, y)
    if report_path:
        write_file(report_path, json.dumps(rep.to_dict(), indent=2) + "\n", "--report")
    click.echo(f"wrote {output_path}: {len(x)} samples; {rep.cycles:,} cycles per inference "
               f"(predicted {rep.predicted_cycles:,}), U = {rep.utilization:.3f}, "
               f"{rep.energy_uj:.3f} uJ ({per_mac_text(rep.pj_per_mac)}, "
               f"{rep.ratio_to_floor:.2f}x the floor); outputs "
               f"{'equal' if rep.reference_match else 'DIFFER FROM'} the reference "
               f"interpreter; {rep.sim_cycles_per_s / 1e6:.2f} M simulated cycles/s")
    _layer_table(rep.to_dict()["layers"])
    if not rep.reference_match:
        sys.exit(1)


from hannah_hw.cli_fpga import bitstream  # noqa: E402
from hannah_hw.cli_fw import firmware, soc_sim  # noqa: E402

main.add_command(firmware)
main.add_command(soc_sim)
main.add_command(bitstream)

from hannah_hw.cli_flow import flow, report  # noqa: E402

main.add_command(flow)
main.add_command(report)

if __name__ == "__main__":
    main()
