"""QGraph: the integer-only network every stage after training reads.

JSON (structure, bit widths, scales as integer mantissa/exponent pairs) beside an ``.npz``
(integer weights, biases, multipliers, shifts). After lowering there are no floats: the
scales only say how to quantise inputs and dequantise outputs.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .records import Node, TensorInfo
from .schema import OPS, QGraphError, check_document, check_graph, infer_shape

__all__ = ["OPS", "QGraph", "QGraphError", "check", "from_dict", "infer_shape"]
FORMAT = "hannah-hw-qgraph"
FORMAT_VERSION = 1


@dataclasses.dataclass(frozen=True)
class QGraph:
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    tensors: dict[str, TensorInfo]
    nodes: tuple[Node, ...]
    arrays: dict[str, np.ndarray]
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)

    def param(self, node: Node, role: str) -> np.ndarray:
        return self.arrays[node.params[role]]

    def macs(self) -> int:
        """Multiply-accumulates per sample."""
        total = 0
        for n in self.nodes:
            if n.op == "conv":
                w = self.param(n, "weight")
                total += math.prod(self.tensors[n.output].shape[1:]) * w.size
            elif n.op == "linear":
                total += self.param(n, "weight").size
        return total

    # serialisation
    def to_dict(self) -> dict:
        return {
            "format": FORMAT, "format_version": FORMAT_VERSION, "name": self.name,
            "inputs": list(self.inputs), "outputs": list(self.outputs),
            "tensors": {k: {**dataclasses.asdict(t), "shape": list(t.shape)}
                        for k, t in self.tensors.items()},
            "nodes": [{**dataclasses.asdict(n), "inputs": list(n.inputs)} for n in self.nodes],
            "arrays": {k: {"dtype": str(a.dtype), "shape": list(a.shape)}
                       for k, a in self.arrays.items()},
            "meta": self.meta,
        }

    def save(self, path: str | Path) -> Path:
        """Write the JSON and its .npz, each through a temporary file, so that a failure
        leaves no half-written graph behind."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        npz = path.with_suffix(".npz")
        tmp_json, tmp_npz = path.with_name(path.name + ".tmp"), npz.with_name(npz.name + ".tmp")
        try:
            tmp_json.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
            _write_npz(tmp_npz, self.arrays)
            os.replace(tmp_npz, npz)
            os.replace(tmp_json, path)
        finally:
            tmp_json.unlink(missing_ok=True)
            tmp_npz.unlink(missing_ok=True)
        return path

    @classmethod
    def load(cls, path: str | Path) -> QGraph:
        path = Path(path)
        if not path.is_file():
            raise QGraphError(f"{path}: no such QGraph file")
        try:
            d = json.loads(path.read_text())
        except (OSError, ValueError, RecursionError) as e:  # ValueError: JSON, UTF-8, digits
            raise QGraphError(f"{path}: not JSON ({e})") from None
        npz = path.with_suffix(".npz")
        if not npz.is_file():
            raise QGraphError(f"{path}: its weights file {npz.name} is missing")
        try:
            z = np.load(npz, allow_pickle=False)
            if not isinstance(z, np.lib.npyio.NpzFile):
                raise ValueError("a single .npy array, not an .npz archive")
            with z:
                arrays = {k: z[k] for k in z.files}
        except Exception as e:  # zipfile, zlib and numpy raise many types on corrupt archives
            raise QGraphError(f"{npz}: cannot be read ({type(e).__name__}: {e})") from None
        g = from_dict(d, arrays, str(path))
        check(g, str(path))
        return g


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """``np.savez_compressed`` with any key: its ``**kwargs`` refuse a key named ``file`` and
    zip member names cut at NUL, so keys are checked here and written member by member."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for key, a in arrays.items():
            if not key or "\0" in key or any("\ud800" <= c <= "\udfff" for c in key):
                raise QGraphError(f"array name {key!r} cannot be stored in an .npz: it is "
                                  f"empty or holds NUL or a lone surrogate")
            with z.open(key + ".npy", "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asanyarray(a), allow_pickle=False)


def from_dict(d: dict, arrays: dict[str, np.ndarray], where: str = "QGraph") -> QGraph:
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise QGraphError(f"{where}: not a hannah-hw QGraph (format is not {FORMAT!r})")
    if d.get("format_version") != FORMAT_VERSION:
        raise QGraphError(f"{where}: unsupported format_version {d.get('format_version')!r}")
    check_document(d, where)
    try:
        tensors = {k: TensorInfo(**{**t, "shape": tuple(t["shape"])})
                   for k, t in d["tensors"].items()}
        nodes = tuple(Node(**{**n, "inputs": tuple(n["inputs"])}) for n in d["nodes"])
        for k, spec in d["arrays"].items():
            if k not in arrays:
                raise QGraphError(f"{where}: array {k!r} missing from the .npz")
            if list(arrays[k].shape) != spec["shape"] or str(arrays[k].dtype) != spec["dtype"]:
                raise QGraphError(f"{where}: array {k!r} is {arrays[k].dtype}{arrays[k].shape}, "
                                  f"the graph says {spec['dtype']}{tuple(spec['shape'])}")
        return QGraph(d["name"], tuple(d["inputs"]), tuple(d["outputs"]), tensors, nodes,
                      arrays, d.get("meta", {}))
    except (KeyError, TypeError) as e:
        raise QGraphError(f"{where}: malformed ({type(e).__name__}: {e})") from None


def check(g: QGraph, where: str = "QGraph") -> None:
    """Validate the graph against its schema (schema.py): types, ranges, shapes and the
    numerics' limits; raise QGraphError naming the first problem and where it is."""
    check_graph(g, where)
