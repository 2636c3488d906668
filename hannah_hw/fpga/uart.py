"""A UART-to-Wishbone bridge: how a PC reaches the accelerator on a board over the FTDI
serial port (load the Program, start inferences, read results), with no soft core.

Protocol (8N1, little-endian, word addresses of the accelerator's bus):

* write: ``'W'`` (0x57), address (4 bytes), data (4 bytes) -> reply ``'K'`` (0x4B) once
  the bus acknowledged;
* read: ``'R'`` (0x52), address (4 bytes) -> reply the data (4 bytes);
* any other command byte is ignored, so nine NUL bytes bring a host back in step.
"""

from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

CMD_WRITE, CMD_READ, REPLY_OK = 0x57, 0x52, 0x4B


class UartRx(wiring.Component):
    """8N1 receiver: ``valid`` pulses for one cycle with ``data``; ``divisor`` = clock/baud."""

    def __init__(self, divisor: int):
        assert divisor >= 4
        self.divisor = divisor
        super().__init__({"rx": In(1, init=1), "data": Out(8), "valid": Out(1)})

    def elaborate(self, platform):
        m = Module()
        d = self.divisor
        s1, s = Signal(init=1), Signal(init=1)
        m.d.sync += [s1.eq(self.rx), s.eq(s1)]
        timer, bit, shreg = Signal(range(2 * d)), Signal(range(9)), Signal(8)
        m.d.sync += self.valid.eq(0)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(~s):
                    m.d.sync += timer.eq(d // 2)
                    m.next = "START"
            with m.State("START"):
                m.d.sync += timer.eq(timer - 1)
                with m.If(timer == 0):
                    m.d.sync += [timer.eq(d - 1), bit.eq(0)]
                    m.next = "DATA"
                    with m.If(s):  # a glitch, not a start bit
                        m.next = "IDLE"
            with m.State("DATA"):
                m.d.sync += timer.eq(timer - 1)
                with m.If(timer == 0):
                    m.d.sync += [timer.eq(d - 1), shreg.eq(Cat(shreg[1:], s)), bit.eq(bit + 1)]
                    with m.If(bit == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                m.d.sync += timer.eq(timer - 1)
                with m.If(timer == 0):
                    with m.If(s):
                        m.d.sync += [self.data.eq(shreg), self.valid.eq(1)]
                    m.next = "IDLE"
        return m


class UartTx(wiring.Component):
    """8N1 transmitter: ``start`` with ``data`` while ``ready``."""

    def __init__(self, divisor: int):
        self.divisor = divisor
        super().__init__({"tx": Out(1, init=1), "data": In(8), "start": In(1),
                          "ready": Out(1)})

    def elaborate(self, platform):
        m = Module()
        timer, left, shreg = Signal(range(self.divisor)), Signal(range(11)), Signal(10, init=1)
        m.d.comb += [self.ready.eq(left == 0), self.tx.eq(shreg[0] | (left == 0))]
        with m.If(left == 0):
            with m.If(self.start):
                m.d.sync += [shreg.eq(Cat(0, self.data, 1)), left.eq(10),
                             timer.eq(self.divisor - 1)]
        with m.Else():
            m.d.sync += timer.eq(timer - 1)
            with m.If(timer == 0):
                m.d.sync += [shreg.eq(Cat(shreg[1:], 1)), left.eq(left - 1),
                             timer.eq(self.divisor - 1)]
        return m


class UartBridge(wiring.Component):
    """Wishbone (classic, one transfer at a time) master driven by the byte protocol."""

    def __init__(self, divisor: int, addr_width: int = 32):
        self.divisor, self.addr_width = divisor, addr_width
        super().__init__({
            "rx": In(1, init=1), "tx": Out(1),
            "wb_adr": Out(addr_width), "wb_dat_w": Out(32), "wb_dat_r": In(32),
            "wb_we": Out(1), "wb_cyc": Out(1), "wb_stb": Out(1), "wb_ack": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.rxu = rxu = UartRx(self.divisor)
        m.submodules.txu = txu = UartTx(self.divisor)
        m.d.comb += [rxu.rx.eq(self.rx), self.tx.eq(txu.tx)]
        addr, dat, reply = Signal(32), Signal(32), Signal(32)
        n, tn, we = Signal(range(9)), Signal(range(5)), Signal()
        m.d.comb += [self.wb_adr.eq(addr), self.wb_dat_w.eq(dat), self.wb_we.eq(we)]
        with m.FSM():
            with m.State("CMD"):
                with m.If(rxu.valid & ((rxu.data == CMD_WRITE) | (rxu.data == CMD_READ))):
                    m.d.sync += [we.eq(rxu.data == CMD_WRITE), n.eq(0)]
                    m.next = "ARGS"
            with m.State("ARGS"):  # address bytes, then data bytes for a write
                with m.If(rxu.valid):
                    m.d.sync += n.eq(n + 1)
                    with m.If(n < 4):
                        m.d.sync += addr.eq(Cat(addr[8:], rxu.data))
                    with m.Else():
                        m.d.sync += dat.eq(Cat(dat[8:], rxu.data))
                    with m.If(n == Mux(we, 7, 3)):
                        m.next = "BUS"
            with m.State("BUS"):  # once the previous reply is out, so it is not overwritten
                m.d.comb += [self.wb_cyc.eq(tn == 0), self.wb_stb.eq(tn == 0)]
                with m.If(self.wb_ack):
                    m.d.sync += [reply.eq(Mux(we, REPLY_OK, self.wb_dat_r)),
                                 tn.eq(Mux(we, 1, 4))]
                    m.next = "CMD"
        # the reply goes out while the next command is received: tn bytes, low byte first
        m.d.comb += [txu.data.eq(reply[:8]), txu.start.eq(txu.ready & (tn != 0))]
        with m.If(txu.ready & (tn != 0)):
            m.d.sync += [reply.eq(reply >> 8), tn.eq(tn - 1)]
        return m


def bridge_model(stream: bytes, mem: dict[int, int]) -> bytes:
    """The protocol's golden model over a word memory: the reply bytes for ``stream``."""
    out, i = bytearray(), 0
    while i < len(stream):
        c = stream[i]
        i += 1
        if c not in (CMD_WRITE, CMD_READ):
            continue
        need = 8 if c == CMD_WRITE else 4
        if i + need > len(stream):
            break
        addr = int.from_bytes(stream[i:i + 4], "little")
        if c == CMD_WRITE:
            mem[addr] = int.from_bytes(stream[i + 4:i + 8], "little")
            out.append(REPLY_OK)
        else:
            out += mem.get(addr, 0).to_bytes(4, "little")
        i += need
    return bytes(out)
