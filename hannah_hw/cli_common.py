"""What every command shares: one-line errors for bad input (exit 2), and reading X.npy."""

from __future__ import annotations

import functools
import sys

import click


def _user_errors():
    from hannah_hw.accel.config import ConfigError
    from hannah_hw.fw.build import FirmwareError
    from hannah_hw.ir.qgraph import QGraphError
    from hannah_hw.nas.archspec import SpaceError
    from hannah_hw.nas.functional_operators.op import GraphError
    from hannah_hw.nas.parameters.parameters import InvalidValueError
    from hannah_hw.nas.search.objectives import SearchConfigError
    from hannah_hw.nas.space import SamplingError
    from hannah_hw.qat.datasets import DatasetError

    return (SpaceError, GraphError, InvalidValueError, SearchConfigError, SamplingError,
            DatasetError, QGraphError, ConfigError, FirmwareError)


def user_errors(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except _user_errors() as e:
            click.echo(f"hannah-hw: error: {e}", err=True)
            sys.exit(2)

    return wrapper



def _load_batch(g, input_path: str):
    """X.npy as a batch of integer inputs of ``g``: floats are quantised, integers taken as
    they are, a single sample gets a batch axis."""
    import numpy as np

    from hannah_hw.ir.interpreter import quantize_input
    from hannah_hw.ir.qgraph import QGraphError

    try:
        x = np.load(input_path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise QGraphError(f"--input {input_path}: cannot be read as .npy ({e})") from None
    t = g.tensors[g.inputs[0]]
    if x.ndim == len(t.shape):
        x = x[None]
    if tuple(x.shape[1:]) != t.shape:
        raise QGraphError(f"--input {input_path}: shape {x.shape} does not fit the graph's input "
                          f"(N, {', '.join(map(str, t.shape))})")
    if np.issubdtype(x.dtype, np.floating):
        return quantize_input(g, x)
    if not np.issubdtype(x.dtype, np.integer):
        raise QGraphError(f"--input {input_path}: dtype {x.dtype} is neither float nor integer")
    lo, hi = t.range
    if x.size and (x.min() < lo or x.max() > hi):
        raise QGraphError(f"--input {input_path}: integer inputs outside the input's range "
                          f"[{lo}, {hi}]")
    return x.astype(np.int64)


def batch_io(fn):
    """--input X.npy and --output Y.npy of the commands that run a batch."""
    fn = click.option("--output", "output_path", required=True,
                      type=click.Path(dir_okay=False),
                      help="Y.npy: integer outputs, as 'hannah-hw infer' writes them.")(fn)
    return click.option("--input", "input_path", required=True, type=click.Path(),
                        help="X.npy: float32 (quantised by the graph) or integers.")(fn)
