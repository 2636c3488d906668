"""SimReport: what one simulation of a HWDIR hands on (the simulate stage's boundary type):
measured counters and energy per inference, the cost model's prediction beside them, and
the outputs checked against the reference interpreter. ``to_dict`` is the JSON that
``simulate --report``, the flow and the benchmarks write, key for key."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class LayerReport:
    """One layer of the first inference: its counters (accel.hwdesc.COUNTERS, in that
    order), utilisation and energy, beside the cost model's prediction."""

    name: str
    op: str
    cycles: int
    busy: int
    stall: int
    macs: int
    act_reads: int
    act_writes: int
    weight_reads: int
    param_reads: int
    desc_reads: int
    mac_units: int
    utilization: float
    energy_pj: float
    predicted_cycles: int
    predicted_energy_pj: float

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class SimReport:
    """Per inference (measured on the first; ``cycles_min``/``max`` over the batch): cycles,
    MACs, energy (None per MAC or against the floor where a network has no MACs), the
    prediction and its relative errors; then the batch's check against the interpreter and
    the simulator's speed."""

    cycles: int
    macs: int
    mac_units: int
    utilization: float
    energy_pj: float
    energy_uj: float
    pj_per_mac: float | None
    average_power_uw: float
    ratio_to_floor: float | None
    latency_s: float
    predicted_cycles: int
    predicted_energy_pj: float
    cycle_error: float
    energy_error: float
    clock_hz: float
    rate_hz: float
    energy_table: str  # the energy table's source
    layers: tuple[LayerReport, ...]
    samples: int
    cycles_min: int
    cycles_max: int
    reference_match: bool
    mismatching_outputs: int
    sim_cycles: int
    sim_seconds: float
    sim_cycles_per_s: float

    def to_dict(self) -> dict:
        """The report as JSON data: the fields in order, the layers a list of objects."""
        return {**{f.name: getattr(self, f.name) for f in dataclasses.fields(self)},
                "layers": [ly.to_dict() for ly in self.layers]}
