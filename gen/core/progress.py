"""Progress of long runs, on any terminal or log.

On a terminal the line rewrites itself; elsewhere (a CI log, a pipe, a file) a plain line is
written at most every ``interval`` seconds and once at the end, so logs show progress without
filling up.
"""

import sys
import time

__all__ = ["Progress"]


class Progress:
    """Reports ``done`` out of ``total`` items for ``label``; call it as ``progress(done, total)``.

    Parameters
    ----------
    label : str
        What is counted ("vectors", "cells"...), after a verb: ``"simulating: {done}/{total}"``.
    stream : file, optional
        Default ``sys.stderr``.
    interval : float
        Seconds between plain lines when the stream is not a terminal.
    """

    def __init__(self, label, stream=None, interval=5.0):
        self.label = label
        self.stream = stream or sys.stderr
        self.interval = interval
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = None  # the first call starts the clock (the work may begin after a build)
        self.last = None  # when the last plain line went out
        self.shown = None

    def __call__(self, done, total):
        now = time.perf_counter()
        if self.start is None:
            self.start = now
        elapsed = now - self.start
        rate = done / elapsed if elapsed > 0 else 0.0
        speed = f"{rate:.0f}/s" if rate >= 1 or not done else f"{elapsed / done:.1f} s each"
        left = f", about {(total - done) / rate:.0f} s left" if rate and done < total else ""
        text = f"{self.label}: {done}/{total} ({speed}, {elapsed:.0f} s{left})"
        if self.tty:
            self.stream.write(f"\r{text}   ")
            self.stream.flush()
        elif (done, total) != self.shown and (
                self.last is None or now - self.last >= self.interval or done >= total):
            self.stream.write(text + "\n")
            self.stream.flush()
            self.last = now
        self.shown = (done, total)

    def close(self):
        """End the rewriting line on a terminal."""
        if self.tty and self.shown is not None:
            self.stream.write("\n")
            self.stream.flush()
