"""Ctrl-C on a served demo stops the demo, not `make`.

The terminal sends Ctrl-C's SIGINT to its whole foreground process group: `make demo` and the
demo alike. GNU make answers it by killing itself with the signal, so the command ends in
failure however cleanly the demo stops. While the demo serves, it takes the terminal's
foreground for its own process group: Ctrl-C then reaches the demo alone, runserver stops with
status 0, and make, which only waited, finishes with it. The terminal is given back on the way
out. Only a demo a person watches does this (standard input and output both the terminal, and
the terminal's foreground its group): without one (tests, CI, a pipe, `make demo &`) nothing
changes.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress


@contextmanager
def ctrl_c_stops_only_this() -> Iterator[None]:
    try:
        fd = sys.stdin.fileno()
        terminal = os.isatty(fd) and os.isatty(sys.stdout.fileno())
        terminal = terminal and os.tcgetpgrp(fd) == os.getpgrp()
    except (OSError, ValueError):
        terminal = False
    if not terminal:
        yield
        return
    try:
        previous = os.tcgetpgrp(fd)
        os.setpgid(0, 0)  # a process group of its own (it leads it)
        # A background group that sets the foreground is stopped by SIGTTOU unless it ignores it.
        signal.signal(signal.SIGTTOU, signal.SIG_IGN)
        os.tcsetpgrp(fd, os.getpgrp())
    except OSError:  # no job control here (no controlling terminal, a session leader...)
        yield
        return
    try:
        yield
    finally:
        with suppress(OSError):  # the terminal is gone: nothing to give back
            os.tcsetpgrp(fd, previous)
