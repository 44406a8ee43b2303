"""One writer thread for TODO.md: bursts of status changes coalesce into one locked write.

The scheduler never waits on the disk: it queues a change and goes on. A write that keeps
failing (read-only file, full disk) is retried with backoff, then given up as a warning; the
changes that did not land are listed in the summary.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import NamedTuple

import tenacity

from batchaction.errors import BatchError
from batchaction.status import DEFAULT_TABLE, StatusTable
from batchaction.writeback import PatchResult, StatusChange, write_changes


class FailedUpdate(NamedTuple):
    change: StatusChange
    error: str


class StatusWriter:
    """Queue status changes; a background thread writes them, coalescing bursts."""

    def __init__(
        self,
        todo: Path,
        table: StatusTable = DEFAULT_TABLE,
        markers: Mapping[str, str] | None = None,
        *,
        attempts: int = 5,
        backoff: float = 0.05,
        on_write: Callable[[PatchResult], None] | None = None,
    ) -> None:
        self.todo = todo
        self.table = table
        self.markers = markers
        self.on_write = on_write
        self.failed: list[FailedUpdate] = []
        self.missing: list[StatusChange] = []
        self.writes = 0
        self._pending: list[StatusChange] = []
        self._cond = threading.Condition()
        self._busy = False
        self._closed = False
        self._retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(OSError),
            stop=tenacity.stop_after_attempt(attempts),
            wait=tenacity.wait_exponential(multiplier=backoff, max=2.0),
            reraise=True,
        )
        self._thread = threading.Thread(target=self._run, name="todo-writer", daemon=True)
        self._thread.start()

    def submit(self, change: StatusChange) -> None:
        with self._cond:
            self._pending.append(change)
            self._cond.notify_all()

    def flush(self) -> None:
        """Wait until every change submitted so far has been written (or given up)."""
        with self._cond:
            self._cond.wait_for(lambda: not self._pending and not self._busy)

    def close(self) -> None:
        self.flush()
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending or self._closed)
                if not self._pending and self._closed:
                    return
                batch, self._pending = self._pending, []
                self._busy = True
            try:
                self._write(batch)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _write(self, batch: list[StatusChange]) -> None:
        try:
            result = self._retrying(write_changes, self.todo, batch, self.table, self.markers)
        except (OSError, BatchError) as exc:
            message = str(exc) if isinstance(exc, BatchError) else f"{exc.strerror or exc}"
            self.failed.extend(FailedUpdate(change, message) for change in batch)
            return
        self.writes += 1
        self.missing.extend(result.missing)
        if self.on_write is not None:
            self.on_write(result)
