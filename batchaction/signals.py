"""Interrupts outside the scheduler: remember them, finish the step, then exit 128+N."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

INTERRUPTS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def recorded_signals() -> Iterator[list[int]]:
    """Record SIGINT/SIGTERM/SIGHUP instead of dying, so a commit or push is never cut."""
    received: list[int] = []

    def handler(signum: int, _frame: object) -> None:
        received.append(signum)

    previous: dict[signal.Signals, signal._HANDLER] = {}
    for sig in INTERRUPTS:
        with contextlib.suppress(ValueError):  # not the main thread: nothing to install
            previous[sig] = signal.signal(sig, handler)
    try:
        yield received
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
