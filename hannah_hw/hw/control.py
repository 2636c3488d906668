"""The controller: runs a Program layer by layer. A start command (after the input DMA,
if asked for) reads each layer's descriptor word by word, starts the sequencer, waits for
the sequencer and the drain to finish, and stores the layer's counters (the ``SNAP``
state; a row stored over several cycles holds it). A watchdog stops a Program that runs
longer than ``timeout`` cycles (0: none) with the error status."""

from __future__ import annotations

from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hannah_hw.accel.config import AccelConfig
from hannah_hw.accel.hwdesc import NF


class Controller(wiring.Component):
    def __init__(self, cfg: AccelConfig):
        self.cfg = cfg
        layers = range(cfg.desc_depth + 1)
        super().__init__({
            "start": In(1), "dma": In(1), "n_layers": In(layers), "timeout": In(32),
            "clear_done": In(1), "cycles": In(32),
            "running": Out(1), "done": Out(1), "error": Out(1),
            "abort": Out(1),  # registered: the sequencer's reset
            # the descriptor memory (data a cycle after the address) and the descriptor
            "desc_addr": Out(range(cfg.desc_depth * NF + NF + 1)), "desc_data": In(32),
            "desc": Out(32 * NF),
            "launch": Out(1), "dma_run": Out(1), "dma_done": In(1),  # the input DMA
            "seq_start": Out(1), "seq_busy": In(1), "quiet": In(1),  # quiet: drain empty
            # the counters: cleared for a DMA, restarted for the first layer, counting
            "clear": Out(1), "restart": Out(1), "count": Out(1), "desc_read": Out(1),
            "snap": Out(1), "stats_row": Out(layers), "storing": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        running, done, error = self.running, self.done, self.error
        layer_left = Signal(range(cfg.desc_depth + 1))
        desc_ptr = Signal(range(cfg.desc_depth * NF + 1))
        fidx = Signal(range(NF + 1))
        m.d.comb += [self.desc_addr.eq(desc_ptr + fidx),
                     self.count.eq(running & ~self.dma_run)]
        # registered: the 32-bit compare stays off the path into the state machines (the
        # watchdog stops a run one cycle after its limit)
        m.d.sync += self.abort.eq(running & (self.timeout != 0) & (self.cycles >= self.timeout))

        def watchdog():
            with m.If(self.abort):
                m.d.sync += [running.eq(0), done.eq(1), error.eq(1)]
                m.next = "IDLE"

        def begin():
            m.d.sync += [running.eq(1), done.eq(0), error.eq(0), desc_ptr.eq(0),
                         self.stats_row.eq(0), fidx.eq(0), layer_left.eq(self.n_layers)]
            # the cycle of the start command counts, so every layer's count includes
            # exactly one cycle outside its own states
            m.d.comb += self.restart.eq(1)
            m.next = "DESC"
            with m.If(self.n_layers == 0):
                m.d.sync += [running.eq(0), done.eq(1)]
                m.next = "IDLE"

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.launch.eq(self.start)
                with m.If(self.start & self.dma):
                    m.d.sync += [running.eq(1), done.eq(0), error.eq(0)]
                    m.d.comb += self.clear.eq(1)
                    m.next = "DMA"
                with m.Elif(self.start):
                    begin()
            with m.State("DMA"):
                m.d.comb += self.dma_run.eq(1)
                with m.If(self.dma_done):
                    begin()
            with m.State("DESC"):
                with m.If(fidx != 0):
                    m.d.sync += self.desc.word_select((fidx - 1)[:len(fidx)], 32).eq(
                        self.desc_data)
                with m.If(fidx == NF):
                    m.d.sync += [fidx.eq(0), desc_ptr.eq(desc_ptr + NF)]
                    m.next = "START"
                with m.Else():
                    m.d.sync += fidx.eq(fidx + 1)
                    m.d.comb += self.desc_read.eq(1)
                watchdog()
            with m.State("START"):
                m.d.comb += self.seq_start.eq(1)
                m.next = "RUN"
                watchdog()
            with m.State("RUN"):
                with m.If(~self.seq_busy & self.quiet):
                    m.next = "SNAP"
                watchdog()
            with m.State("SNAP"):  # all counters of the layer in one row of the stats memory
                m.d.comb += self.snap.eq(1)
                with m.If(~self.storing):
                    m.d.sync += [self.stats_row.eq(self.stats_row + 1),
                                 layer_left.eq(layer_left - 1)]
                    m.next = "DESC"
                    with m.If(layer_left == 1):
                        m.d.sync += [running.eq(0), done.eq(1)]
                        m.next = "IDLE"
                    watchdog()
        with m.If(self.clear_done):
            m.d.sync += done.eq(0)
        return m


def control_model(runs: list[int], hold: int, dma: int | None = None) -> dict[str, list[int]]:
    """Golden model: the cycles (from the start command's, 0) at which each layer's
    descriptor word ``k`` is addressed and the sequencer is started, and when ``done``
    rises, for a sequencer busy ``runs[k]`` cycles after each start, a stats store that
    holds ``hold`` cycles and, with ``dma``, a transfer done after ``dma`` cycles."""
    t = 1 + (dma + 1 if dma is not None else 0)  # the first DESC cycle (or done)
    desc, starts = [], []
    for r in runs:
        desc.append(t)  # desc_addr = k * NF + (t' - t) for t' in t..t + NF
        t += NF + 1
        starts.append(t)
        t += 1 + r + 1 + hold + 1
    return {"desc": desc, "starts": starts, "done": [t]}
