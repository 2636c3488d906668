"""Does a design fit a board? The block-RAM count of the accelerator's memories (known
before any tool runs), the cell counts of yosys (before place and route), and nextpnr's
own complaint, each turned into one line naming the resource and the overflow."""

from __future__ import annotations

import functools
import math
import re

from hannah_hw.accel.config import AccelConfig, ConfigError
from hannah_hw.accel.hwdesc import HW_COUNTERS, NF, HwLayout

from .boards import Board

NAMES = {"lut": "LUTs", "ff": "flip-flops", "dsp": "DSPs", "bram": "block RAMs",
         "spram": "SPRAMs"}
# (depth, width) aspect ratios of one block RAM
EBR_MODES = {"ice40": ((256, 16), (512, 8), (1024, 4), (2048, 2)),
             "ecp5": ((512, 36), (1024, 18), (2048, 9), (4096, 4), (8192, 2), (16384, 1))}


class FitError(ConfigError):
    """A design that needs more of a resource than the board has."""


def fit_message(b: Board, res: str, need: int, unit: str | None = None) -> str:
    have = b.resources[res]
    over = f" (+{100 * (need - have) / have:.0f} %)" if have else ""
    return (f"does not fit {b.device} ({b.name}): {need:,} {unit or NAMES[res]} needed, "
            f"{have:,} available{over}")


def blocks(family: str, width: int, depth: int) -> int:
    """Block RAMs yosys takes for one width x depth memory: slices of the width, each in
    its best aspect ratio (9 x 4848 on iCE40: 4 + 4 + 1 bits, 13 blocks; measured 12). On
    the ECP5 yosys puts small memories in LUTs, so this runs high there."""
    @functools.cache
    def cost(w: int) -> int:
        return 0 if w <= 0 else min(math.ceil(depth / d) + cost(w - dw)
                                    for d, dw in EBR_MODES[family])
    return cost(width)


def memories(cfg: AccelConfig, family: str) -> dict[str, tuple[int, int]]:
    """(width, depth) of each memory as the accelerator builds it for a family."""
    lay = HwLayout(cfg)
    mems = {"desc": (32, cfg.desc_depth * NF), "act": (lay.act_w, cfg.act_depth),
            "weight": (32 * lay.weight_words, cfg.weight_depth)}
    if family == "ice40":  # wide rows split into bus words (see hw/accel.py)
        mems.update(stats=(32, cfg.desc_depth * lay.stats_stride),
                    param=(32, cfg.param_depth * lay.param_stride))
    else:
        mems.update(stats=(32 * len(HW_COUNTERS), cfg.desc_depth),
                    param=(32 * lay.param_words, cfg.param_depth))
    return mems


def memory_blocks(cfg: AccelConfig, b: Board) -> dict[str, int]:
    """Block RAMs and SPRAMs of the accelerator on a board."""
    from hannah_hw.hw.memory import spram_blocks  # amaranth: an optional dependency

    mems = memories(cfg, b.family)
    spram = 0
    if b.family == "ice40":
        spram = spram_blocks(*mems.pop("weight"))
    return {"bram": sum(blocks(b.family, w, d) for w, d in mems.values()), "spram": spram}


def precheck(cfg: AccelConfig, b: Board, extra: dict[str, int] | None = None
             ) -> dict[str, int]:
    """Memory blocks of the accelerator (+ ``extra`` ones, e.g. the SoC's RAM); raises
    FitError before any tool runs if they cannot fit."""
    need = memory_blocks(cfg, b)
    for res, n in (extra or {}).items():
        need[res] += n
    for res in ("spram", "bram"):
        if need[res] > b.resources[res]:
            raise FitError(fit_message(b, res, need[res]))
    return need


def check_cells(used: dict[str, int], b: Board) -> None:
    """After synthesis: yosys maps every wide enough multiplier onto a DSP whether or not
    the device has that many, so DSPs are checked as well as LUTs and memories. On an
    iCE40 the limit is logic cells (LUT4 + FF pairs), which only nextpnr's packer counts,
    so every check is left to its utilisation table (``pnr_failure``): one line then names
    the cells beside any DSP or memory overflow."""
    if b.family == "ice40":
        return
    over = [fit_message(b, res, used[res]) for res in ("lut", "ff", "dsp", "bram", "spram")
            if used.get(res, 0) > b.resources[res]]
    if over:
        raise FitError(_join(over))


def _join(messages: list[str]) -> str:
    """One line for several overflowed resources of one device."""
    head = messages[0].split(": ", 1)[0]
    return head + ": " + "; ".join(m.split(": ", 1)[1] for m in messages)


PNR_NAMES = {"ICESTORM_LC": "logic cells (LUT4 + FF)", "ICESTORM_RAM": "block RAMs",
             "ICESTORM_DSP": "DSPs", "ICESTORM_SPRAM": "SPRAMs"}


def pnr_failure(log: str, b: Board) -> str:
    """The one line for a nextpnr that failed: every over-used resource of its utilisation
    table, or its first error."""
    table = re.findall(r"(ICESTORM_\w+|TRELLIS_\w+|DP16KD|MULT18X18D): +(\d+)/ *(\d+)", log)
    over = {c: (int(u), int(h)) for c, u, h in table if int(u) > int(h)}
    if over:
        return f"does not fit {b.device} ({b.name}): " + "; ".join(
            f"{u:,} {PNR_NAMES.get(c, c)} needed, {h:,} available (+{100 * (u - h) / h:.0f} %)"
            for c, (u, h) in over.items())
    for ln in log.splitlines():
        if re.search(r"Unable to place cell|Design uses|[Nn]ot enough|exceed", ln):
            return f"does not fit {b.device} ({b.name}): nextpnr: {ln.strip()}"
    errs = [ln.strip() for ln in log.splitlines() if "ERROR" in ln]
    return f"nextpnr failed on {b.name}: {errs[0] if errs else 'no error line in its log'}"
