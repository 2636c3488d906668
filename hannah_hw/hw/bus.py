"""The accelerator's bus interfaces as wiring signatures, each from the initiator's side:
the host's classic Wishbone (32-bit words, one transaction at a time, no byte selects),
the input DMA's read port into the host's memory, and the per-region port through which
the bus slave (hw/regs.py) reaches a memory."""

from __future__ import annotations

from amaranth.lib.wiring import In, Out, Signature


def wishbone(addr_width: int) -> Signature:
    """Classic Wishbone as the host drives it (``ack`` a cycle after the request)."""
    return Signature({"adr": Out(addr_width), "dat_w": Out(32), "dat_r": In(32),
                      "we": Out(1), "cyc": Out(1), "stb": Out(1), "ack": In(1)})


# a read port of the host's memory: word address, data one cycle later; ``busy`` while the
# transfer owns the port (a host with one memory port holds its own accesses back)
DMA_PORT = Signature({"adr": Out(30), "dat": In(32), "busy": Out(1)})


def region_port(addr_width: int) -> Signature:
    """One memory region as the bus slave reaches it: the word ``addr`` in the region,
    ``sub`` the word-in-row index registered with a read (``rdata`` answers a cycle
    later, in the acknowledge cycle), ``we`` a write of ``wdata`` this cycle."""
    return Signature({"addr": Out(addr_width), "sub": Out(4), "wdata": Out(32), "we": Out(1),
                      "rdata": In(32)})
