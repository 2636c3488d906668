"""The experiment file of ``hannah-hw flow``: YAML sections with defaults, checked key by key
so a typo or a wrong type is one error naming the key, before any work starts."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

from hannah_hw.nas.search.objectives import SearchConfigError

BOARDS = ("icebreaker", "ulx3s")
TOPS = ("accel", "soc")
# every key a flow file may hold, with its default; None marks "optional, no default"
DEFAULTS: dict[str, Any] = {
    "name": "flow",
    "space": None,  # FILE.py:FUNCTION (relative to the flow file, else to the working dir)
    "space_args": {},
    "data": {"dataset": None, "kws_clips": 20000, "limit": None, "data_dir": None},
    "search": {"strategy": "nsga2", "budget": 12, "population": 6, "epochs": 3,
               "qat_epochs": 1, "wbits": 8, "abits": 8, "seed": 0, "workers": 1,
               "objectives": ["error:min", "cycles:min"], "constraints": [], "storage": None},
    "hardware": {"board": "icebreaker", "pe_cols": None},  # clock: the board's
    "confirm": {"front": 3, "samples": 8},
    "train": {"choose": "error", "epochs": 10, "qat_epochs": 3, "patience": None},
    # the SoC's core, and whether its firmware carries the reference kernels (about twice
    # the RAM); the iCEBreaker's SoC fits with SERV and without them
    "deploy": {"simulate_samples": 64, "soc_samples": 4, "bitstream": ["accel"],
               "cpu": "picorv32", "reference": True},
}
REQUIRED = (("space",), ("data", "dataset"))
# the config sections each stage depends on; a stage reruns when they (or an earlier
# stage's) change
STAGES = {"search": ("space", "space_args", "data", "search", "hardware"),
          "confirm": ("confirm",), "train": ("train",), "generate": (),
          "simulate": ("deploy",), "firmware": (), "soc": (), "bitstream": (), "report": ()}
# the keys that may be empty, with the type of their value when given
NULLABLE = {("space",): str, ("data", "dataset"): str, ("data", "limit"): int,
            ("data", "data_dir"): str, ("search", "storage"): str, ("hardware", "pe_cols"): int,
            ("train", "patience"): int}


class FlowConfigError(SearchConfigError):
    """A flow file that cannot be run: the message names the file and the key."""


def _merge(defaults: dict, given: dict, where: str, path: tuple = ()) -> dict:
    out = copy.deepcopy(defaults)
    for key, value in given.items():
        here = (*path, key)
        name = ".".join(map(str, here))
        if key not in defaults:
            raise FlowConfigError(f"{where}: unknown key {name!r} (known here: "
                                  f"{', '.join(defaults)})")
        d = defaults[key]
        if isinstance(d, dict) and here != ("space_args",):
            if not isinstance(value, dict):
                raise FlowConfigError(f"{where}: {name} must be a mapping, got {value!r}")
            out[key] = _merge(d, value, where, here)
        elif value is None:
            if here not in NULLABLE:
                raise FlowConfigError(f"{where}: {name} must not be empty")
            out[key] = None
        else:
            out[key] = _check_type(value, d, here, name, where)
    return out


def _check_type(value, default, here, name, where):
    if isinstance(default, bool) or isinstance(value, bool):
        ok = isinstance(value, type(default))
    elif isinstance(default, float):
        ok = isinstance(value, (int, float))
        value = float(value) if ok else value
    elif default is None:  # nullable numbers and strings
        ok = isinstance(value, NULLABLE[here])
    else:
        ok = isinstance(value, type(default))
    if not ok:
        kind = type(default).__name__ if default is not None else "a value"
        raise FlowConfigError(f"{where}: {name} must be {kind}, got {value!r}")
    return value


def load_flow_config(path: Path) -> dict:
    """The merged, checked flow configuration of ``path``."""
    path = Path(path)
    try:
        given = yaml.safe_load(path.read_text())
    except OSError as e:
        raise FlowConfigError(f"{path}: cannot be read ({e.strerror})") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise FlowConfigError(f"{path}: not valid YAML{at}") from None
    if not isinstance(given, dict):
        raise FlowConfigError(f"{path}: expected a mapping of sections, got {type(given).__name__}")
    cfg = _merge(DEFAULTS, given, str(path))
    for keys in REQUIRED:
        v = cfg
        for k in keys:
            v = v[k]
        if v is None:
            raise FlowConfigError(f"{path}: {'.'.join(keys)} is required")
    check_flow_config(cfg, str(path))
    cfg["space"] = _resolve_space(cfg["space"], path.parent)
    return cfg


def check_flow_config(cfg: dict, where: str) -> None:
    """Values the types do not catch."""
    from hannah_hw.nas.search.objectives import Constraint, Objective

    if cfg["data"]["dataset"] not in ("kws", "fashion", "digits"):
        raise FlowConfigError(f"{where}: data.dataset must be kws, fashion or digits, got "
                              f"{cfg['data']['dataset']!r}")
    hw = cfg["hardware"]
    if hw["board"] not in BOARDS:
        raise FlowConfigError(f"{where}: hardware.board must be one of {', '.join(BOARDS)}, got "
                              f"{hw['board']!r}")
    bad = [t for t in cfg["deploy"]["bitstream"] if t not in TOPS]
    if bad:
        raise FlowConfigError(f"{where}: deploy.bitstream: unknown top(s) {bad}; choose from "
                              f"{', '.join(TOPS)}")
    from hannah_hw.fw.build import CPU_ISAS

    if cfg["deploy"]["cpu"] not in CPU_ISAS:
        raise FlowConfigError(f"{where}: deploy.cpu must be one of {', '.join(CPU_ISAS)}, got "
                              f"{cfg['deploy']['cpu']!r}")
    for section, key in (("search", "budget"), ("confirm", "front"), ("confirm", "samples"),
                         ("deploy", "simulate_samples"), ("deploy", "soc_samples"),
                         ("search", "workers")):
        if cfg[section][key] < 1:
            raise FlowConfigError(f"{where}: {section}.{key} must be at least 1")
    try:
        objectives = [Objective.parse(o) for o in cfg["search"]["objectives"]]
        for c in cfg["search"]["constraints"]:
            Constraint.parse(c)
    except SearchConfigError as e:
        raise FlowConfigError(f"{where}: search: {e}") from None
    if not objectives:
        raise FlowConfigError(f"{where}: search.objectives must name at least one objective")


def _resolve_space(ref: str, base: Path) -> str:
    file, sep, fn = ref.rpartition(":")
    if sep and file.endswith(".py") and not Path(file).is_absolute():
        for root in (base, Path.cwd()):
            if (root / file).is_file():
                return f"{(root / file).resolve()}:{fn}"
    return ref


def stage_keys(cfg: dict) -> dict[str, str]:
    """A key per stage: the hash of its config sections chained with the previous stage's."""
    keys, prev = {}, ""
    for stage, sections in STAGES.items():
        blob = json.dumps([prev, [cfg[s] for s in sections]], sort_keys=True, default=str)
        keys[stage] = prev = hashlib.sha256(blob.encode()).hexdigest()[:16]
    return keys
