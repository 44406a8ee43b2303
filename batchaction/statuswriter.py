"""One writer thread for TODO.md: bursts of status changes coalesce into one locked write.

The scheduler never waits on the disk: it queues a change and goes on. A write that keeps
failing (read-only file, full disk) is retried with backoff, then given up as a warning; the
changes that did not land are listed in the summary. A write that finds the lock held past the
run's ``lock-timeout`` (``lockwait.py``) keeps its changes, in order, for the next write; what
is still held when the writer closes is tried once more, then listed as not written.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import NamedTuple

from batchaction.errors import BatchError
from batchaction.lockwait import LockUnavailableError, current
from batchaction.status import DEFAULT_TABLE, StatusTable
from batchaction.textlines import decode_todo, regular_bytes
from batchaction.writeback import PatchResult, StatusChange, apply_changes, write_changes

# The outcomes a run leaves a task with, which an executor's stale rewrite can undo.
KEPT = ("completed", "failed", "blocked")


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
        min_interval: float = 0.05,
    ) -> None:
        self.todo = todo
        self.real = os.path.realpath(todo)  # a symlink a task puts in its place is refused
        self.table = table
        self.markers = markers
        self.on_write = on_write
        self.failed: list[FailedUpdate] = []
        self.missing: list[StatusChange] = []
        self.last: dict[int, StatusChange] = {}  # each task's last change written
        self.writes = 0
        self._pending: list[StatusChange] = []
        self._held: list[StatusChange] = []  # kept back by a held lock, oldest first
        self._cond = threading.Condition()
        self._busy = False
        self._closed = False
        self._flushing = False
        self._min_interval = min_interval
        self._interval = min_interval
        # The first write, too, waits out one interval: the tasks that start together are
        # recorded in one write, and the scheduler launches them without competing for the GIL.
        self._last_write = time.monotonic()
        self._attempts = attempts
        self._backoff = backoff
        self._thread = threading.Thread(target=self._run, name="todo-writer", daemon=True)
        self._thread.start()

    def submit(self, change: StatusChange) -> None:
        with self._cond:
            self._pending.append(change)
            self._cond.notify_all()

    def flush(self) -> None:
        """Wait until every change submitted so far has been written (or given up)."""
        with self._cond:
            self._flushing = True
            self._cond.notify_all()
            self._cond.wait_for(lambda: not self._pending and not self._busy)
            self._flushing = False

    def close(self) -> None:
        self.flush()
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join()
        if self._held:  # one last try; what still cannot be written is reported
            held, self._held = self._held, []
            try:
                self._landed(
                    write_changes(self.todo, held, self.table, self.markers, real=self.real)
                )
            except (OSError, BatchError) as exc:
                message = str(exc) if isinstance(exc, BatchError) else f"{exc.strerror or exc}"
                self.failed.extend(FailedUpdate(change, message) for change in held)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending or self._closed)
                if not self._pending and self._closed:
                    return
                # Let a burst gather: at most one write per min_interval, unless flushing.
                # This also keeps the writer from starving the scheduler's thread of the GIL.
                wait = self._last_write + self._interval - time.monotonic()
                if wait > 0 and not self._flushing:
                    self._cond.wait_for(lambda: self._flushing or self._closed, timeout=wait)
                batch, self._pending = self._pending, []
                self._busy = True
                self._last_write = time.monotonic()
            waited = _lock_waited()
            try:
                self._write(batch)
            except Exception as exc:
                # A bug here must not stop the writer (the run would wait for it forever):
                # the batch is reported as not written.
                self.failed.extend(
                    FailedUpdate(change, f"not written: {exc!r}") for change in batch
                )
            finally:
                # Busy at most about a fifth of the time, however large the file (time spent
                # waiting for the lock is not the file's size).
                spent = time.monotonic() - self._last_write - (_lock_waited() - waited)
                self._interval = max(self._min_interval, 4 * spent)
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _write(self, batch: list[StatusChange]) -> None:
        batch, self._held = self._held + batch, []
        try:
            try:
                result = write_changes(self.todo, batch, self.table, self.markers, real=self.real)
            except LockUnavailableError:
                self._held = batch  # the lock's wait is spent: kept for a later write
                return
            except OSError:
                if self._attempts <= 1:
                    raise
                result = self._retry(batch)
        except (OSError, BatchError) as exc:
            message = str(exc) if isinstance(exc, BatchError) else f"{exc.strerror or exc}"
            self.failed.extend(FailedUpdate(change, message) for change in batch)
            return
        self._landed(result)

    def _landed(self, result: PatchResult) -> None:
        self.writes += 1
        self.missing.extend(result.missing)
        for change in result.applied:
            self.last[change.number] = change
        if self.on_write is not None:
            self.on_write(result)

    def reassert(self) -> list[int]:
        """After ``close``: each task's last status, written again where the file no longer
        shows it (an executor rewrote the file without the lock, from an older copy). Returns
        those tasks' numbers; a file that cannot be read or written returns []."""
        final = [c for c in self.last.values() if c.outcome in KEPT]
        try:
            text = decode_todo(regular_bytes(self.todo), str(self.todo))
            if not final or apply_changes(text, final, self.table, self.markers).text == text:
                return []
            lost = [
                c for c in final
                if apply_changes(text, [c], self.table, self.markers).text != text
            ]  # fmt: skip
            write_changes(self.todo, lost, self.table, self.markers, real=self.real)
        except (OSError, BatchError):
            return []
        return sorted(c.number for c in lost)

    def _retry(self, batch: list[StatusChange]) -> PatchResult:
        """The attempts after a failed first one, with tenacity's exponential backoff.

        Imported here: a run whose writes all succeed never loads tenacity.
        """
        import tenacity  # noqa: PLC0415

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(OSError),
            stop=tenacity.stop_after_attempt(self._attempts - 1),
            wait=tenacity.wait_exponential(multiplier=self._backoff, max=2.0),
            reraise=True,
        )
        time.sleep(self._backoff)
        return retrying(write_changes, self.todo, batch, self.table, self.markers, real=self.real)


def _lock_waited() -> float:
    """Seconds the run has waited for the TODO lock so far (0 outside a run)."""
    budget = current()
    return budget.waited if budget is not None else 0.0
