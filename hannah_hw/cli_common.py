"""What every command shares: one-line errors for bad input (exit 2), the ranges of the numeric
options, reading ARCH/SPACE and X.npy, and writing outputs where the user named them."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import click
import numpy as np

from hannah_hw.accel.config import ConfigError
from hannah_hw.accel.energy import load_table
from hannah_hw.flow_config import (
    BITS,
    KWS_CLIPS_MIN,
    SEED_MAX,
    SIM_MAX_CYCLES,
    SOC_MAX_CYCLES,
    FlowError,
)
from hannah_hw.fw.build import FirmwareError
from hannah_hw.ir.interpreter import quantize_input
from hannah_hw.ir.qgraph import QGraphError
from hannah_hw.nas.archspec import ArchSpec, SpaceError, build_space
from hannah_hw.nas.functional_operators.op import GraphError
from hannah_hw.nas.parameters.parameters import InvalidValueError
from hannah_hw.nas.search.objectives import SearchConfigError
from hannah_hw.nas.space import SamplingError
from hannah_hw.qat.dataset import DatasetError
from hannah_hw.simulate.verilator import SimulatorError

# the errors that are the user's: each ends a command with one line and exit 2
USER_ERRORS = (SpaceError, GraphError, InvalidValueError, SearchConfigError, SamplingError,
               DatasetError, QGraphError, ConfigError, FirmwareError, SimulatorError, FlowError)


def user_errors(fn):
    """Known user errors, and files that cannot be read or written (an OSError that names its
    file), become one line and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except USER_ERRORS as e:
            _one_line(str(e))
        except OSError as e:
            if e.filename is None:
                raise
            _one_line(f"{e.filename}: {e.strerror or e}")

    return wrapper


def _one_line(message: str) -> None:
    """The error, on one line even when a message quotes text with line breaks; exit 2."""
    click.echo("hannah-hw: error: " + " ".join(message.splitlines()), err=True)
    sys.exit(2)


# the bounds are the flow file's too (flow_config holds them)
SEED = click.IntRange(0, SEED_MAX)
COUNT = click.IntRange(min=1)  # budgets, sample limits, workers, batch sizes, lanes
EPOCHS = click.IntRange(min=0)
NBITS = click.IntRange(*BITS)
KWS_CLIPS = click.IntRange(min=KWS_CLIPS_MIN)
SIM_CYCLES = click.IntRange(1, SIM_MAX_CYCLES)
SOC_CYCLES = click.IntRange(1, SOC_MAX_CYCLES)


class Positive(click.FloatRange):
    """A finite float above zero: FloatRange alone lets NaN through."""

    name = "positive number"

    def __init__(self, max: float | None = None) -> None:
        super().__init__(min=0, min_open=True, max=max)

    def convert(self, value, param, ctx):
        v = super().convert(value, param, ctx)
        if v != v or v in (float("inf"), float("-inf")):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return v


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


def _load_arch(arch: str, params: str | None, space_args: tuple[str, ...]):
    """ARCH.json, or SPACE with --params P.json (parameter values or an ArchSpec)."""
    if arch.endswith(".json") and ":" not in arch:
        if params:
            raise SpaceError("--params goes with a SPACE, not with an ARCH.json")
        return ArchSpec.load(arch)
    kwargs = _space_args(space_args)
    graph = build_space(arch, kwargs)
    if params:
        p = Path(params)
        if not p.is_file():
            raise SpaceError(f"--params file {params} does not exist")
        try:
            values = json.loads(p.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise SpaceError(f"--params {params}: not JSON ({e})") from None
        if not isinstance(values, dict):
            raise SpaceError(f"--params {params}: expected a JSON object of parameter values")
        graph.set_params(values.get("params", values))
    return ArchSpec.from_graph(arch, graph, kwargs)


def _load_batch(g, input_path: str):
    """X.npy as a batch of integer inputs of ``g``: floats are quantised, integers taken as
    they are, a single sample gets a batch axis. Anything else is refused here, before a
    simulator is built or an empty batch reaches code that cannot stack it."""
    where = f"--input {input_path}"
    try:
        x = np.load(input_path, allow_pickle=False)
    except Exception as e:  # noqa: BLE001 - a garbled header raises what its parser raises
        # (ValueError, SyntaxError, tokenize's TokenError, MemoryError for a huge shape, ...);
        # KeyboardInterrupt and SystemExit pass
        if isinstance(e, EOFError):
            why = "the file is empty"
        elif isinstance(e, (OSError, ValueError)):
            why = str(e)
        else:
            why = f"a corrupt header or data: {type(e).__name__}"
        raise QGraphError(f"{where}: cannot be read as .npy ({why})") from None
    if not isinstance(x, np.ndarray):
        raise QGraphError(f"{where}: holds several arrays (.npz); save one array with np.save")
    t = g.tensors[g.inputs[0]]
    if x.ndim == len(t.shape):
        x = x[None]
    if tuple(x.shape[1:]) != t.shape:
        raise QGraphError(f"{where}: shape {x.shape} does not fit the graph's input "
                          f"(N, {', '.join(map(str, t.shape))})")
    if len(x) == 0:
        raise QGraphError(f"{where}: has no samples (shape {x.shape})")
    if np.issubdtype(x.dtype, np.floating):
        if not np.isfinite(x).all():
            bad = int((~np.isfinite(x)).sum())
            raise QGraphError(f"{where}: {bad} value(s) are NaN or infinite; float inputs "
                              "must be finite")
        return quantize_input(g, x)
    if x.dtype == np.bool_ or not np.issubdtype(x.dtype, np.integer):
        raise QGraphError(f"{where}: dtype {x.dtype} is neither float nor integer")
    lo, hi = t.range
    if x.min() < lo or x.max() > hi:
        raise QGraphError(f"{where}: integer inputs outside the input's range [{lo}, {hi}]")
    return x.astype(np.int64)


def check_output(path: str | None, option: str = "--output") -> None:
    """Refuse an output under a file before a long run, not after it."""
    if path is None:
        return
    blocked = next((d for d in Path(path).parents if d.exists() and not d.is_dir()), None)
    if blocked is not None:
        raise ConfigError(f"{option} {path}: cannot be written ({blocked} is a file)")


def write_file(path: str, data, option: str = "--output") -> None:
    """Write an array (.npy, to exactly ``path``: np.save would add a suffix) or text,
    creating the missing folders of ``path``; a path that cannot be written is a user error."""
    check_output(path, option)
    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):
            p.write_text(data)
        else:
            with open(p, "wb") as f:
                np.save(f, data)
    except OSError as e:
        raise ConfigError(f"{option} {path}: cannot be written ({e.strerror or e})") from None


def energy_table(path: str | None) -> dict | None:
    """--energy-table read (and checked) before any work, as a one-line user error."""
    if path is None:
        return None
    try:
        return load_table(path)
    except ValueError as e:
        raise ConfigError(str(e)) from None  # names the table already


def batch_io(fn):
    """--input X.npy and --output Y.npy of the commands that run a batch."""
    fn = click.option("--output", "output_path", required=True,
                      type=click.Path(dir_okay=False),
                      help="Y.npy: integer outputs, as 'hannah-hw infer' writes them.")(fn)
    return click.option("--input", "input_path", required=True, type=click.Path(),
                        help="X.npy: float32 (quantised by the graph) or integers.")(fn)
