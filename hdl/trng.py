"""TRNG: random bits from the stochastic switching delay of memristive devices.

Sebastian et al., "Memory devices and applications for in-memory computing" (2020),
Fig. 7a: a device in a voltage divider gets a write pulse of fixed length, switches
after a stochastic delay and its comparator goes high; a counter measures (pulse length -
delay) in clock periods; the bit is whether that count is odd; the device is reset and the
cycle repeats. Here ``sources`` devices (``hdl/analog.py`` EntropySignature) are pulsed
together each round (``imcgen.core.timing.trng_round_cycles``):

    IDLE   wait for ``enable``, no alarm and room for a round's bits
    PULSE  ``pulse_cycles`` cycles; each source's counter counts the cycles its comparator is
           high
    RESET  ``reset_cycles`` cycles of reset pulse
    EVAL   per source: the raw sample is the count's parity (0 when the device did not switch:
           a retry, no bit); SP 800-90B health tests (repetition count, adaptive proportion)
           on the raw samples; optional von Neumann debiasing; the bits go into the output
           buffer in source order, least significant bit first
    ALARM  a health test failed: that round's bits are dropped and no round runs until the
           host clears the alarm (``ctl.clear``), which restarts the tests and the debiaser

Bytes leave on ``o`` (valid/ready); a round starts only when the buffer can take all its bits,
so backpressure loses and repeats no bit. The golden model is ``golden/trng.py``; cutoffs and
the delay distribution come from the configuration's ``[trng]`` table.
"""

from amaranth import Module, Signal
from amaranth.hdl import Cat, Mux
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from imcgen.core import timing
from imcgen.hdl.analog import EntropySignature
from imcgen.hdl.common import Block, record_fsm

__all__ = ["Trng", "control_layout", "status_layout"]


def control_layout(config):
    return data.StructLayout({"enable": 1, "clear": 1})


def status_layout(config):
    return data.StructLayout({
        "rct_alarm": 1,       # a repetition count test failed (sticky until clear)
        "apt_alarm": 1,       # an adaptive proportion test failed (sticky until clear)
        "pulses": 32,         # device pulses (rounds x sources)
        "retries": 32,        # pulses without a switch (no bit)
        "bits": 32,           # bits that left on the byte stream
        "alarms": 16,         # alarm events
    })


class Trng(Block):
    """The TRNG block.

    Parameters
    ----------
    config : MacroConfig
        The ``[trng]`` table (``enabled``).

    Attributes
    ----------
    entropy : Out(EntropySignature)
        The entropy devices (in the crossbar stub, or a model outside).
    o : Out(stream.Signature(8))
        Random bytes.
    ctl : In(control_layout)
        ``enable`` runs rounds; ``clear`` clears an alarm (and restarts the health tests).
    status : Out(status_layout)
    """

    def __init__(self, *, config):
        if not config.trng.enabled:
            raise ValueError("Trng needs trng.enabled = true")
        super().__init__(config, {
            "entropy": Out(EntropySignature(config)),
            "o": Out(stream.Signature(8)),
            "ctl": In(control_layout(config)),
            "status": Out(status_layout(config)),
        })

    def elaborate(self, platform):
        cfg, trng = self.config, self.config.trng
        m = Module()
        n = trng.sources
        capacity = 8 + n  # a round starts only when the buffer has room for n more bits

        count = [Signal(range(trng.pulse_cycles + 1), name=f"count{s}") for s in range(n)]
        timer = Signal(range(max(trng.pulse_cycles, trng.reset_cycles,
                                 timing.trng_warmup(cfg)) + 1))
        buffer = Signal(capacity)
        fill = Signal(range(capacity + 1))
        # Health tests (per source; the APT window position is shared: every source samples
        # every round) and the debiaser's pending bit per source.
        rct_last = Signal(n)
        rct_run = [Signal(range(trng.rct_cutoff + 1), name=f"rct_run{s}") for s in range(n)]
        started = Signal()  # the tests have seen a sample since reset or clear
        apt_pos = Signal(range(trng.apt_window))
        apt_first = Signal(n)
        apt_count = [Signal(range(trng.apt_window + 1), name=f"apt_count{s}") for s in range(n)]
        pending = Signal(n)
        pending_bit = Signal(n)
        alarm = Signal()
        m.d.comb += alarm.eq(self.status.rct_alarm | self.status.apt_alarm)

        # Output bytes: the first eight bits of the buffer.
        take = self.o.valid & self.o.ready
        m.d.comb += [self.o.valid.eq(fill >= 8), self.o.payload.eq(buffer[:8]),
                     self.entropy.voltage.eq(trng.voltage)]
        kept = Signal(capacity)
        kept_fill = Signal(range(capacity + 1))
        m.d.comb += [kept.eq(Mux(take, buffer >> 8, buffer)), kept_fill.eq(fill - Mux(take, 8, 0))]
        m.d.sync += [buffer.eq(kept), fill.eq(kept_fill)]
        with m.If(take):
            m.d.sync += self.status.bits.eq(self.status.bits + 8)

        # EVAL, combinationally: raw samples, health tests, debiasing, the bits to append.
        raw = Signal(n)
        valid = Signal(n)
        emit = Signal(n)
        bit = Signal(n)
        new_run = [Signal.like(rct_run[s], name=f"new_run{s}") for s in range(n)]
        new_apt = [Signal.like(apt_count[s], name=f"new_apt{s}") for s in range(n)]
        rct_fail, apt_fail = Signal(), Signal()
        window_start = apt_pos == 0
        for s in range(n):
            m.d.comb += [raw[s].eq(count[s][0]), valid[s].eq(count[s] != 0)]
            m.d.comb += new_run[s].eq(Mux(started & (raw[s] == rct_last[s]), rct_run[s] + 1, 1))
            m.d.comb += new_apt[s].eq(Mux(window_start, 1, Mux(raw[s] == apt_first[s],
                                                              apt_count[s] + 1, apt_count[s])))
            if trng.debias:  # von Neumann: of each pair of valid samples, the first if they differ
                m.d.comb += [emit[s].eq(valid[s] & pending[s] & (pending_bit[s] != raw[s])),
                             bit[s].eq(pending_bit[s])]
            else:
                m.d.comb += [emit[s].eq(valid[s]), bit[s].eq(raw[s])]
        m.d.comb += [
            rct_fail.eq(Cat(new_run[s] >= trng.rct_cutoff for s in range(n)).any()),
            apt_fail.eq(Cat(new_apt[s] >= trng.apt_cutoff for s in range(n)).any()),
        ]
        appended = Signal(capacity)
        added = Signal(range(n + 1))
        position, bits_in = kept_fill, 0
        for s in range(n):  # each emitted bit lands after those of the sources before it
            bits_in = bits_in | (Mux(emit[s] & bit[s], 1, 0) << position)
            position = position + emit[s]
        m.d.comb += [appended.eq(bits_in), added.eq(sum(emit[s] for s in range(n)))]

        def restart_tests():
            m.d.sync += [started.eq(0), apt_pos.eq(0), pending.eq(0)]

        with m.FSM(init="WARMUP", name="trng") as fsm:
            with m.State("WARMUP"):  # the stub draws the first round's delays
                with m.If(timer == timing.trng_warmup(cfg) - 1):
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += timer.eq(timer + 1)
            with m.State("IDLE"):
                with m.If(alarm):
                    m.next = "ALARM"
                with m.Elif(self.ctl.enable & (kept_fill <= 8)):
                    m.d.sync += [self.entropy.pulse.eq(1), timer.eq(trng.pulse_cycles - 1)]
                    m.d.sync += [count[s].eq(0) for s in range(n)]
                    m.next = "PULSE"
            with m.State("PULSE"):
                for s in range(n):
                    m.d.sync += count[s].eq(count[s] + self.entropy.switched[s])
                with m.If(timer == 0):
                    m.d.sync += [self.entropy.pulse.eq(0), self.entropy.reset.eq(1),
                                 timer.eq(trng.reset_cycles - 1)]
                    m.next = "RESET"
                with m.Else():
                    m.d.sync += timer.eq(timer - 1)
            with m.State("RESET"):
                with m.If(timer == 0):
                    m.d.sync += self.entropy.reset.eq(0)
                    m.next = "EVAL"
                with m.Else():
                    m.d.sync += timer.eq(timer - 1)
            with m.State("EVAL"):
                m.d.sync += [
                    self.status.pulses.eq(self.status.pulses + n),
                    self.status.retries.eq(self.status.retries +
                                           sum(~valid[s] for s in range(n))),
                    started.eq(1), rct_last.eq(raw),
                    apt_pos.eq(Mux(apt_pos == trng.apt_window - 1, 0, apt_pos + 1)),
                ]
                for s in range(n):
                    m.d.sync += [rct_run[s].eq(new_run[s]), apt_count[s].eq(new_apt[s])]
                with m.If(window_start):
                    m.d.sync += apt_first.eq(raw)
                with m.If(rct_fail | apt_fail):  # this round's bits are dropped
                    m.d.sync += [self.status.rct_alarm.eq(self.status.rct_alarm | rct_fail),
                                 self.status.apt_alarm.eq(self.status.apt_alarm | apt_fail),
                                 self.status.alarms.eq(self.status.alarms + 1)]
                    m.next = "ALARM"
                with m.Else():
                    m.d.sync += [buffer.eq(kept | appended), fill.eq(kept_fill + added)]
                    if trng.debias:
                        for s in range(n):
                            with m.If(valid[s]):
                                m.d.sync += [pending[s].eq(~pending[s]),
                                             pending_bit[s].eq(raw[s])]
                    m.next = "IDLE"
            with m.State("ALARM"):
                with m.If(self.ctl.clear):
                    m.d.sync += [self.status.rct_alarm.eq(0), self.status.apt_alarm.eq(0)]
                    restart_tests()
                    m.next = "IDLE"
        record_fsm("trng", fsm)
        return m
