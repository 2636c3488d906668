"""The SoC's RISC-V cores: the ISAs each runs, how PicoRV32 is configured per ISA, and
their Verilog. Free of amaranth, so the firmware build (fw/build.py) and the flow
configuration check an ISA or a core without elaborating anything."""

from __future__ import annotations

from pathlib import Path

ISAS = ("rv32im", "rv32i")  # the SoC's core is configured to match (ISA_PARAMS)
# the SoC's cores and the ISAs each runs. SERV: bit-serial RV32I without CSRs (no traps),
# its registers in one block RAM; in the demo's iCE40 SoC 1,154 logic cells fewer than the
# RV32I PicoRV32, at ~35 cycles per instruction
CPU_ISAS = {"picorv32": ISAS, "serv": ("rv32i",)}
CPU_PARAMS = {"ENABLE_MUL": 0, "ENABLE_FAST_MUL": 1, "ENABLE_DIV": 1, "BARREL_SHIFTER": 1,
              "COMPRESSED_ISA": 0, "ENABLE_COUNTERS": 1, "ENABLE_IRQ": 0, "CATCH_MISALIGN": 1,
              "CATCH_ILLINSN": 1}
# the core per ISA the firmware is built for: RV32I leaves out the multiplier (DSPs), the
# divider, the barrel shifter and the counters, ~1,400 instead of ~2,700 iCE40 LUTs
ISA_PARAMS = {"rv32im": CPU_PARAMS,
              "rv32i": {**CPU_PARAMS, "ENABLE_FAST_MUL": 0, "ENABLE_DIV": 0,
                        "BARREL_SHIFTER": 0, "ENABLE_COUNTERS": 0, "ENABLE_COUNTERS64": 0}}


def cpu_sources(cpu: str) -> list[Path]:
    """The core's Verilog files."""
    pkg = f"pythondata_cpu_{cpu}"
    try:
        p = __import__(pkg)
    except ImportError:
        raise RuntimeError(f"{pkg.replace('_', '-')} is missing: run 'make setup' (installs "
                           "hannah-hw[hw])") from None
    if cpu == "picorv32":
        return [Path(p.data_location) / "picorv32.v"]
    return sorted(f for f in (Path(p.data_location) / "rtl").glob("serv_*.v")
                  if f.name != "serv_synth_wrapper.v")
