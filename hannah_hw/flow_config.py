"""The experiment file of ``hannah-hw flow``: YAML sections with defaults, checked key by key
so a typo or a wrong type is one error naming the key, before any work starts; the bounds
the CLI's options share with it; and RUNDIR/flow.json, the record of finished stages, read
here so that the flow (which writes it) and the report (which reads it) share one reader."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

from hannah_hw.fpga.boards import BOARDS
from hannah_hw.nas.archspec import SpaceError, build_space, canonical_ref
from hannah_hw.nas.functional_operators.op import GraphError
from hannah_hw.nas.search.objectives import (
    Constraint,
    Objective,
    SearchConfigError,
    check_names,
)
from hannah_hw.nas.search.strategies import STRATEGIES
from hannah_hw.soc.cores import CPU_ISAS

# bounds shared by the CLI options and the flow file's keys
SEED_MAX = 2**32 - 1  # numpy's legacy seeding and the data sets' caches take 32 bits
BITS = (2, 8)  # weight and activation widths the quantiser and the datapath support
KWS_CLIPS_MIN = 12  # one clip per kws class at least
SIM_MAX_CYCLES = 2**32 - 1001  # the accelerator's 32-bit watchdog; the harness adds 1000
SOC_MAX_CYCLES = 2**64 - 1  # the SoC harness counts in 64 bits
PE_COLS_MAX = 64  # AccelConfig.validate's limit (the CLI leaves the message to it)

RECORD = "flow.json"  # in RUNDIR: every finished stage with its key, time and result
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


# the numeric keys' ranges (inclusive; None: unbounded), as the CLI's options have them
RANGES: dict[tuple[str, str], tuple[int, int | None]] = {
    ("data", "kws_clips"): (KWS_CLIPS_MIN, None), ("data", "limit"): (1, None),
    ("search", "budget"): (1, None), ("search", "population"): (2, None),
    ("search", "epochs"): (0, None), ("search", "qat_epochs"): (0, None),
    ("search", "wbits"): BITS, ("search", "abits"): BITS, ("search", "seed"): (0, SEED_MAX),
    ("search", "workers"): (1, None), ("hardware", "pe_cols"): (1, PE_COLS_MAX),
    ("confirm", "front"): (1, None), ("confirm", "samples"): (1, None),
    ("train", "epochs"): (0, None), ("train", "qat_epochs"): (0, None),
    ("train", "patience"): (1, None), ("deploy", "simulate_samples"): (1, None),
    ("deploy", "soc_samples"): (1, None)}


class FlowConfigError(SearchConfigError):
    """A flow file that cannot be run: the message names the file and the key."""


class FlowError(RuntimeError):
    """A stage whose result breaks the flow's promises (e.g. outputs not bit-exact), or a
    RUNDIR whose records are corrupt."""


def read_record(rundir: Path) -> dict:
    """RUNDIR's record of finished stages (none when it has no flow.json yet)."""
    try:
        rec = json.loads((Path(rundir) / RECORD).read_text())
    except FileNotFoundError:
        return {"stages": {}}
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise FlowError(f"{rundir}/{RECORD} is corrupt ({e}); remove it to start again") from None
    stages = rec.get("stages") if isinstance(rec, dict) else None
    if not isinstance(stages, dict) or not all(
            isinstance(v, dict) and {"key", "seconds", "finished", "result"} <= v.keys()
            for v in stages.values()):
        raise FlowError(f"{rundir}/{RECORD} is corrupt (not a record of flow stages); remove "
                        "it to start again")
    return rec


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
                raise FlowConfigError(f"{where}: {name} must be a mapping, got {_short(value)}")
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
        raise FlowConfigError(f"{where}: {name} must be {kind}, got {_short(value)}")
    return value


MAX_BYTES = 1 << 20  # a flow file is a few dozen lines
MAX_VALUES = 100_000  # values after expanding YAML aliases ("billion laughs" stop here)
MAX_INT_BITS = 256  # hex/binary ints escape Python's digit limit; no setting needs more


class _Loader(yaml.SafeLoader):
    """safe_load that refuses a key given twice in one mapping (YAML takes the last one
    silently) and turns a scalar that cannot be converted (an integer of more than 4300
    digits, a date like 2024-13-45) into a YAML error at its line."""

    def construct_object(self, node, deep=False):
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError) as e:
            what = str(e).split(";")[0]
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read this {node.tag.rsplit(':', 1)[-1]}: {what}",
                node.start_mark) from None

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # "<<: *base" then overriding a key of base is fine
                key = self.construct_object(key_node, deep=True)
                try:
                    dup = key in seen
                except TypeError:
                    continue  # unhashable: the constructor refuses it below
                if dup:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key {_short(key)} given twice", key_node.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep)


def _short(v, n: int = 80) -> str:
    r = repr(v)
    return r if len(r) <= n else r[:n - 3] + "..."


def _read_yaml(path: Path):
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_BYTES + 1)
        if len(data) > MAX_BYTES:
            raise FlowConfigError(f"{path}: larger than {MAX_BYTES >> 20} MiB; not a flow file")
        return yaml.load(data.decode("utf-8"), Loader=_Loader)  # noqa: S506 - a SafeLoader
    except OSError as e:
        raise FlowConfigError(f"{path}: cannot be read ({e.strerror or e})") from None
    except UnicodeDecodeError:
        raise FlowConfigError(f"{path}: not a text file (not UTF-8)") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(e, "problem", None)
        raise FlowConfigError(f"{path}: not valid YAML{at}"
                              + (f" ({problem})" if problem else "")) from None
    except RecursionError:
        raise FlowConfigError(f"{path}: nested too deeply to be a flow file") from None


def _check_plain(given, where: str) -> None:
    """Plain data only, and bounded: at most MAX_VALUES values with aliases expanded, no
    alias to itself, no YAML-only types (dates, sets, binary), text without NUL or lone
    surrogates, integers of sane size; the error names the key."""
    sizes: dict[int, int] = {}
    open_: set[int] = set()

    def walk(v, key: str) -> int:
        if isinstance(v, (dict, list)):
            if id(v) in sizes:
                return sizes[id(v)]
            if id(v) in open_:
                raise FlowConfigError(f"{where}: {key} contains itself (a recursive YAML alias)")
            open_.add(id(v))
            n = 1
            for k, x in (v.items() if isinstance(v, dict) else enumerate(v)):
                n += walk(x, f"{key}.{k}" if isinstance(v, dict) else f"{key}[{k}]")
                if n > MAX_VALUES:
                    raise FlowConfigError(f"{where}: {key} expands to more than {MAX_VALUES:,} "
                                          "values (YAML aliases); not a flow file")
            open_.discard(id(v))
            sizes[id(v)] = n
            return n
        if isinstance(v, str):
            if "\0" in v or any("\ud800" <= c <= "\udfff" for c in v):
                raise FlowConfigError(f"{where}: {key}: text with a NUL or a lone surrogate "
                                      f"({_short(v)})")
        elif isinstance(v, int) and not isinstance(v, bool):
            if v.bit_length() > MAX_INT_BITS:
                raise FlowConfigError(f"{where}: {key}: integer too large "
                                      f"({v.bit_length()} bits)")
        elif v is not None and not isinstance(v, (bool, float)):
            raise FlowConfigError(f"{where}: {key}: a YAML {type(v).__name__} value; only "
                                  "text, numbers, booleans, lists and mappings are allowed")
        return 1

    if isinstance(given, dict):
        for k, v in given.items():
            walk(v, str(k))


def load_flow_config(path: Path) -> dict:
    """The merged, checked flow configuration of ``path``."""
    path = Path(path)
    given = _read_yaml(path)
    _check_plain(given, str(path))
    if given is None:
        raise FlowConfigError(f"{path}: the file is empty; it needs at least space and "
                              "data.dataset")
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
    if cfg["deploy"]["cpu"] not in CPU_ISAS:
        raise FlowConfigError(f"{where}: deploy.cpu must be one of {', '.join(CPU_ISAS)}, got "
                              f"{cfg['deploy']['cpu']!r}")
    for (section, key), (lo, hi) in RANGES.items():
        v = cfg[section][key]
        if v is not None and not (lo <= v and (hi is None or v <= hi)):
            raise FlowConfigError(f"{where}: {section}.{key} must be "
                                  + (f"at least {lo}" if hi is None else f"in {lo}..{hi}")
                                  + f", got {v}")
    _check_search(cfg, where)
    if cfg["search"]["storage"]:
        from hannah_hw.nas.search.storage import normalise

        try:
            normalise(cfg["search"]["storage"])
        except SearchConfigError as e:
            raise FlowConfigError(f"{where}: search.storage: {e}") from None


def _check_search(cfg: dict, where: str) -> None:
    """The search's strategy and metric names, as the search itself would check them."""
    from hannah_hw.stages.price import TrainEvaluator  # torch: only a flow's check needs it

    s = cfg["search"]
    if s["strategy"] not in STRATEGIES:
        raise FlowConfigError(f"{where}: search.strategy must be one of "
                              f"{', '.join(STRATEGIES)}, got {_short(s['strategy'])}")
    known = TrainEvaluator.metric_names  # a flow has a data set: it trains and prices
    for key, parse in (("objectives", Objective.parse), ("constraints", Constraint.parse)):
        try:
            check_names([parse(o) for o in s[key]], [], known)
        except SearchConfigError as e:
            raise FlowConfigError(f"{where}: search.{key}: {e}") from None
    if not s["objectives"]:
        raise FlowConfigError(f"{where}: search.objectives must name at least one objective")


def check_space(cfg: dict, where: str) -> None:
    """Import the space and build it once with the flow's arguments, as the search does first,
    so a bad reference or argument is an error before any stage runs."""
    from hannah_hw.qat.datasets import space_kwargs_for  # torch

    try:
        fn_ref = canonical_ref(cfg["space"])
    except (OSError, RuntimeError, ValueError) as e:  # e.g. ~nosuchuser/x.py, a NUL
        raise FlowConfigError(f"{where}: space {_short(cfg['space'])}: {e}") from None
    try:
        build_space(fn_ref, {**space_kwargs_for(cfg["data"]["dataset"]), **cfg["space_args"]})
    except (SpaceError, GraphError) as e:
        built = f"space {fn_ref!r} cannot be built" in str(e) or f"space {fn_ref!r} raised" \
            in str(e)
        key = "space_args: " if built and cfg["space_args"] else \
            "" if str(e).startswith("space") else "space: "  # SpaceError names the space
        raise FlowConfigError(f"{where}: {key}{e}") from None
    except (OSError, RuntimeError, ValueError) as e:
        why = e.strerror if isinstance(e, OSError) and e.strerror else e
        raise FlowConfigError(f"{where}: space {_short(cfg['space'])}: {why}") from None


def _resolve_space(ref: str, base: Path) -> str:
    file, sep, fn = ref.rpartition(":")
    if sep and file.endswith(".py") and not Path(file).is_absolute():
        for root in (base, Path.cwd()):
            try:
                if (root / file).is_file():
                    return f"{(root / file).resolve()}:{fn}"
            except (OSError, ValueError):  # a name too long: check_space says so
                continue
    return ref


def without_secrets(cfg: dict) -> dict:
    """The configuration as records and keys see it: the storage URL with its password masked
    (flow.json must not hold it, and a new password is not a new search)."""
    from hannah_hw.nas.search.storage import masked

    if not cfg["search"].get("storage"):
        return cfg
    out = copy.deepcopy(cfg)
    out["search"]["storage"] = masked(cfg["search"]["storage"])
    return out


def stage_keys(cfg: dict) -> dict[str, str]:
    """A key per stage: the hash of its config sections chained with the previous stage's."""
    cfg = without_secrets(cfg)
    keys, prev = {}, ""
    for stage, sections in STAGES.items():
        blob = json.dumps([prev, [cfg[s] for s in sections]], sort_keys=True, default=str)
        keys[stage] = prev = hashlib.sha256(blob.encode()).hexdigest()[:16]
    return keys
