"""Energy = Σ event count x energy per event + leakage x time. Event energies come from a
cited, user-overridable table (``energy_45nm.json``); the counts come from the accelerator's
performance counters (or, before simulation, from the behavioural model)."""

from __future__ import annotations

import math
from pathlib import Path

from hannah_hw.util.jsonfile import read_object

from .config import AccelConfig

DEFAULT_TABLE = Path(__file__).with_name("energy_45nm.json")


def load_table(path: str | Path | None = None) -> dict:
    """The energy table at ``path`` (default: the 45 nm table); a ValueError names the file
    and what is wrong (unreadable, not a JSON object, lacking an energy, an energy that is not
    a finite number >= 0), so a bad table fails before a simulation, not after it."""
    p = Path(path) if path else DEFAULT_TABLE
    table = read_object(p, ValueError, "an energy table").data
    missing = {"mult_8x8_pj", "add_32_pj", "sram_8kb_pj_per_bit"} - set(table)
    if missing:
        raise ValueError(f"energy table {p} lacks {', '.join(sorted(missing))}")
    bad = [k for k, v in table.items()
           if (k.endswith(("_pj", "_bit", "_exponent")) or k.startswith("leakage_")) and not (
               isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
               and v >= 0)]
    if bad:
        raise ValueError(f"energy table {p}: {', '.join(bad)} must be finite numbers >= 0")
    return table


def event_energies(cfg: AccelConfig, t: dict) -> dict[str, float]:
    """pJ per MAC and per access of each memory, scaled by width and memory size."""

    def sram(bits_per_word: int, words: int) -> float:
        kb = max(words * bits_per_word / 8192, 1e-3)
        return t["sram_8kb_pj_per_bit"] * bits_per_word * kb ** t.get("sram_size_exponent", 0.5)

    mac = t["mult_8x8_pj"] * cfg.weight_bits * cfg.act_bits / 64 + \
        t["add_32_pj"] * cfg.acc_bits / 32
    param_bits = cfg.acc_bits + cfg.mult_bits + cfg.shift_bits
    return {"mac": mac, "act_access": sram(cfg.act_bits, cfg.act_depth),
            "weight_read": sram(cfg.pe_cols * cfg.weight_bits, cfg.weight_depth),
            "param_read": sram(param_bits, cfg.param_depth)}


def leakage_uw(cfg: AccelConfig, t: dict) -> float:
    kbit = (cfg.act_depth * cfg.act_bits + cfg.weight_depth * cfg.pe_cols * cfg.weight_bits) \
        / 1024
    return t.get("leakage_uw_per_kbit_sram", 0.0) * kbit + \
        t.get("leakage_uw_per_mac_unit", 0.0) * cfg.mac_units


def energy_report(layers: list[dict], cfg: AccelConfig, clock_hz: float = 50e6,
                  rate_hz: float = 1.0, table: dict | None = None) -> dict:
    """Per inference: energy (µJ), pJ per MAC, average power at ``rate_hz`` inferences per
    second, and the ratio to the floor (MACs x E_MAC + compulsory accesses)."""
    t = table or load_table()
    e = event_energies(cfg, t)
    per_layer = []
    for ev in layers:
        dyn = ev["macs"] * e["mac"] + (ev["act_reads"] + ev["act_writes"]) * e["act_access"] + \
            ev["weight_reads"] * e["weight_read"] + ev["param_reads"] * e["param_read"]
        per_layer.append({"op": ev["op"], "dynamic_pj": dyn})
    cycles = sum(ev["cycles"] for ev in layers)
    seconds = cycles / clock_hz
    leak_pj = leakage_uw(cfg, t) * 1e-6 * seconds * 1e12
    dynamic = sum(p["dynamic_pj"] for p in per_layer)
    total = dynamic + leak_pj
    macs = sum(ev["macs"] for ev in layers)
    # the floor: every MAC once, every weight word, input and output activation moved once
    floor = macs * e["mac"] + _compulsory(layers, e)
    return {"energy_pj": total, "energy_uj": total * 1e-6, "dynamic_pj": dynamic,
            "leakage_pj": leak_pj, "pj_per_mac": total / macs if macs else None,
            "average_power_uw": total * 1e-12 * rate_hz * 1e6 + leakage_uw(cfg, t) * max(
                0.0, 1 - seconds * rate_hz),
            "floor_pj": floor, "ratio_to_floor": total / floor if floor else None,
            "event_energy_pj": e, "clock_hz": clock_hz, "rate_hz": rate_hz,
            "layers": per_layer, "source": t.get("source", "")}


def _compulsory(layers: list[dict], e: dict) -> float:
    """Each weight word read once, the input read once, the output written once."""
    if not layers:
        return 0.0
    weights = sum(ev["weight_words"] for ev in layers)
    return weights * e["weight_read"] + (layers[0]["inputs"] + layers[-1]["act_writes"]) * \
        e["act_access"]


def per_mac_text(pj_per_mac: float | None) -> str:
    """pJ/MAC for people; a network without MACs (pooling only) has none."""
    return "no MACs" if pj_per_mac is None else f"{pj_per_mac:.2f} pJ/MAC"
