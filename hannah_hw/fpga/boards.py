"""The boards a bitstream can be built for: the amaranth-boards platform, the device's
resources (what the fit check and the resource model compare against) and the clocks."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from hannah_hw.accel.config import FAMILIES, ConfigError


@dataclasses.dataclass(frozen=True)
class Board:
    name: str
    device: str
    family: str  # one of accel.config.FAMILIES: what the accelerator is elaborated as
    resources: dict[str, int]  # available: lut, ff, dsp, bram, spram
    bram_bits: int  # usable bits of one block RAM at 32 bits wide (ECP5: 512 x 32)
    osc_hz: float
    target_hz: float  # the sync clock the design is built for
    platform: Callable[[], object]

    def __post_init__(self):
        assert self.family in FAMILIES, f"{self.family}: add it to accel.config.FAMILIES"


def _icebreaker():
    from amaranth_boards.icebreaker import ICEBreakerPlatform

    return ICEBreakerPlatform()


def _ulx3s():
    from amaranth_boards.ulx3s import ULX3S_85F_Platform

    return ULX3S_85F_Platform()


BOARDS = {
    # iCE40UP5K-SG48: EBR 4 Kbit (256 x 16 at most 16 bits wide), SPRAM 16K x 16
    "icebreaker": Board("icebreaker", "iCE40UP5K", "ice40",
                        {"lut": 5280, "ff": 5280, "dsp": 8, "bram": 30, "spram": 4},
                        4096, 12e6, 24e6, _icebreaker),
    # LFE5U-85F: DP16KD 18 Kbit (512 x 36), MULT18X18D
    "ulx3s": Board("ulx3s", "LFE5U-85F", "ecp5",
                   {"lut": 83640, "ff": 83640, "dsp": 156, "bram": 208, "spram": 0},
                   16384, 25e6, 25e6, _ulx3s),
}


def board(name: str) -> Board:
    try:
        return BOARDS[name]
    except KeyError:
        raise ConfigError(f"unknown board {name!r}: one of {', '.join(BOARDS)}") from None
