"""The TODO file's lock with one announced, bounded wait per run (``lock-timeout``).

Every write of the TODO file takes an exclusive ``flock`` on ``<TODO>.lock`` (SPEC 6). When
another process holds it, the run says so (the lock's path, and the holder's pid as
``/proc/locks`` shows it, else as the lock file records it) and waits, out of one budget shared
by every write of the run and every thread. Once the budget is spent, later writes try the lock
once and never wait again: the caller keeps or reports what it could not write.

While batchaction holds the lock, the lock file holds its pid (``<pid>\\n``), so that a process
that finds it locked can name the holder even where ``/proc/locks`` cannot be read.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from filelock import FileLock

NOTE_EVERY = 10.0  # seconds between "still waiting" lines
QUIET = 1.0  # a hold shorter than this (another thread of the run, a quick script) is not news
DEFAULT_TIMEOUT = 60.0


class LockUnavailableError(TimeoutError):
    """The lock could not be had within what was left of the budget (an ``OSError``)."""


def _record_pid(fd: int) -> None:
    """``on_acquired`` for filelock: the lock file now says who holds it."""
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)


def holder_of(lock_file: Path) -> str:
    """Who holds the flock on ``lock_file``: ``pid 123 (python3)``, ``this run``, or
    ``another process`` when neither ``/proc/locks`` nor the file's content names one.

    ``/proc/locks`` lines read ``N: FLOCK ADVISORY WRITE <pid> <maj>:<min>:<inode> 0 EOF``
    (proc(5)); waiters' lines carry ``->`` and are skipped. The pid a lock file records is
    used only when that process exists (the file keeps the last holder's pid after release).
    """
    try:
        inode = lock_file.stat().st_ino
    except OSError:
        return "another process"
    pids: list[int] = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/locks").read_text(encoding="ascii", errors="replace").splitlines():
            words = line.split()
            if "->" in words or len(words) < 6 or words[1] != "FLOCK":
                continue
            if words[5].rsplit(":", 1)[-1] == str(inode) and words[4].isdigit():
                pids.append(int(words[4]))
    if not pids:
        with contextlib.suppress(OSError, ValueError, IndexError):  # an empty lock file too
            recorded = int(lock_file.read_text(encoding="ascii", errors="replace").split()[0])
            if Path(f"/proc/{recorded}").exists():
                pids.append(recorded)
    if not pids:
        return "another process"
    pid = pids[0]
    if pid == os.getpid():
        return "this run (another of its writes)"
    name = ""
    with contextlib.suppress(OSError):
        name = Path(f"/proc/{pid}/comm").read_text(encoding="utf-8", errors="replace").strip()
    return f"pid {pid}" + (f" ({name[:40]})" if name else "")


class LockBudget:
    """How long a run may wait for the TODO lock, in all (seconds), and how long it did.

    Thread-safe. Waits of several threads at once draw on the budget once (wall-clock time
    during which anyone waited). ``announce`` receives one line per event (the start of a wait,
    every ``NOTE_EVERY`` seconds of it, giving up).
    """

    def __init__(self, seconds: float, announce: Callable[[str], None] | None = None) -> None:
        self.seconds = seconds
        self.announce = announce or _to_stderr
        self.gave_up = False
        self.holder: str | None = None  # as named when the run last found the lock held
        self.path: str | None = None
        self._mu = threading.Lock()
        self._left = seconds
        self._waited = 0.0
        self._waiters = 0
        self._since = 0.0

    @property
    def waited(self) -> float:
        """Seconds spent waiting so far (a wait going on counts up to now)."""
        with self._mu:
            ongoing = time.monotonic() - self._since if self._waiters else 0.0
            return self._waited + ongoing

    def _deadline(self) -> float:
        with self._mu:
            return (self._since if self._waiters else time.monotonic()) + self._left

    @contextlib.contextmanager
    def hold(self, lock_file: Path) -> Iterator[None]:
        """Hold the flock on ``lock_file`` for the ``with`` body.

        Raises LockUnavailableError (a TimeoutError) when the budget ran out first, at once when it
        was spent by an earlier wait; OSError when the lock file cannot be opened.
        """
        from filelock import FileLock, Timeout  # noqa: PLC0415 - off the start-up path

        lock = FileLock(
            lock_file,
            thread_local=False,
            preserve_lock_file=True,
            fallback_to_soft=False,
            on_acquired=_record_pid,
        )
        try:
            lock.acquire(timeout=0)
        except Timeout:
            self._wait(lock, lock_file)
        try:
            yield
        finally:
            lock.release()

    def _wait(self, lock: FileLock, lock_file: Path) -> None:
        from filelock import Timeout  # noqa: PLC0415

        if not self.gave_up:
            try:  # brief holds are waited out quietly, outside the budget
                lock.acquire(timeout=QUIET)
                return
            except Timeout:
                pass
        holder = self.holder = holder_of(lock_file)
        self.path = str(lock_file)
        if self.gave_up or self._deadline() <= time.monotonic():
            raise LockUnavailableError(
                f"{lock_file} is held by {holder}; the lock-timeout ({self.seconds:g}s) was "
                "spent waiting for it earlier in this run, so this write does not wait"
            )
        with self._mu:
            if not self._waiters:
                self._since = time.monotonic()
            self._waiters += 1
        acquired = False
        try:
            left = self._deadline() - time.monotonic()
            self.announce(
                f"{lock_file} is held by {holder}: waiting up to {left:.0f}s for it "
                f"(lock-timeout {self.seconds:g}s for the whole run)"
            )
            while not acquired:
                left = self._deadline() - time.monotonic()
                if left <= 0:
                    break
                try:
                    lock.acquire(timeout=min(left, NOTE_EVERY))
                    acquired = True
                except Timeout:
                    left = self._deadline() - time.monotonic()
                    if left > 0:
                        now = holder_of(lock_file)
                        self.announce(f"still waiting for {lock_file} ({now}); {left:.0f}s left")
        finally:
            with self._mu:
                self._waiters -= 1
                if not self._waiters:
                    spent = time.monotonic() - self._since
                    self._waited += spent
                    self._left -= spent
        if acquired:
            return
        first = not self.gave_up
        self.gave_up = True
        if first:
            self.announce(
                f"gave up waiting for {lock_file} after {self.waited:.0f}s ({holder} holds it): "
                "TODO.md writes no longer wait; what cannot be written is reported"
            )
        raise LockUnavailableError(
            f"{lock_file} stayed locked by {holder} for the whole lock-timeout ({self.seconds:g}s)"
        )

    def as_summary(self) -> dict[str, object]:
        """The JSON summary's ``todo_lock`` object: seconds waited, the budget, whether the
        run gave up, and the lock and holder last found (None when never blocked)."""
        return {
            "waited_s": round(self.waited, 3),
            "timeout_s": self.seconds,
            "gave_up": self.gave_up,
            "path": self.path,
            "holder": self.holder,
        }


def _to_stderr(message: str) -> None:
    print(f"batchaction: {message}", file=sys.stderr, flush=True)


_ACTIVE: list[LockBudget] = []  # the run's budget, while one is active


@contextlib.contextmanager
def active(budget: LockBudget) -> Iterator[LockBudget]:
    """Make ``budget`` the one every TODO lock of this process draws on, for the ``with``
    body (the run); an enclosing active budget stays in charge (the action's, around a run)."""
    if _ACTIVE:
        yield _ACTIVE[0]
        return
    _ACTIVE.append(budget)
    try:
        yield budget
    finally:
        _ACTIVE.clear()


def install(budget: LockBudget) -> None:
    """Make ``budget`` this process's for good (the action: one run, then its commit, whose
    replays write TODO.md too, all on one budget)."""
    _ACTIVE[:] = [budget]


def current() -> LockBudget | None:
    return _ACTIVE[0] if _ACTIVE else None


def todo_lock(
    lock_file: Path, timeout: float = DEFAULT_TIMEOUT
) -> contextlib.AbstractContextManager[None]:
    """The lock on ``lock_file`` (``<TODO>.lock``): under the run's budget when one is active,
    else with a budget of its own of ``timeout`` seconds (``status set``). Raises as
    ``LockBudget.hold``."""
    budget = current() or LockBudget(timeout)
    return budget.hold(lock_file)


@contextlib.contextmanager
def lock_or_go_on(lock_file: Path) -> Iterator[bool]:
    """The lock as ``todo_lock`` takes it, for work that must not be lost to a held lock (a
    worktree's copy of the TODO file, a task's own edits, the branch brought to the tip):
    when the run's wait is spent, the body runs without the lock (yields False) and says so."""
    budget = current() or LockBudget(DEFAULT_TIMEOUT)
    try:
        held = budget.hold(lock_file)
        held.__enter__()
    except LockUnavailableError as exc:
        budget.announce(f"going on without the lock: {exc}")
        yield False
        return
    try:
        yield True
    finally:
        held.__exit__(None, None, None)
