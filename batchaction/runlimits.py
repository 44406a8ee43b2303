"""What bounds one run in time: the TODO lock's wait (``lock-timeout``), the run's deadline
(``run-deadline``), and who hears of the first interrupt and of the scheduler's end.

A GitHub-hosted job is stopped after 6 hours, and a cancelled one gets SIGINT, SIGTERM 7.5 s
later and SIGKILL 2.5 s after that (GitHub's documentation of job cancellation). So under
GitHub Actions (``GITHUB_ACTIONS=true``) a run stops starting tasks after 5 h 30 m by default,
and the action's grace period is 5 s, which ends before SIGKILL comes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from batchaction.lockwait import LockBudget
from batchaction.planner import Plan
from batchaction.settings import Settings
from batchaction.taskrun import RunOptions, TaskRun

ACTIONS_DEADLINE = "330m"  # 5 h 30 m
ACTIONS_GRACE = "5s"
DEADLINE_REASON = "run deadline reached"


def environment_defaults(env: Mapping[str, str], *, action: bool) -> dict[str, str]:
    """Defaults that depend on where the run is (kebab-case keys for ``settings.resolve``):
    under GitHub Actions a ``run-deadline`` of 330m (5 h 30 m), and the action's ``grace`` 5s."""
    if env.get("GITHUB_ACTIONS", "").strip().lower() != "true":
        return {}
    defaults = {"run-deadline": ACTIONS_DEADLINE}
    if action:
        defaults["grace"] = ACTIONS_GRACE
    return defaults


# on_interrupt(signum, summary): the first interrupt, with a summary of the run as it stands
# (running tasks shown cancelled, as they will end). Called in the scheduler's thread: it must
# hand the work to another thread and return.
InterruptHook = Callable[[int, dict[str, Any]], None]


@dataclass
class RunLimits:
    """One run's time limits. ``deadline`` is a ``time.monotonic()`` value (None: none),
    ``deadline_s`` the setting it came from (seconds after the run started). ``on_stop`` is
    called when the scheduler has stopped, before the worktrees are closed."""

    lock: LockBudget
    deadline: float | None = None
    deadline_s: float | None = None
    on_interrupt: InterruptHook | None = None
    on_stop: Callable[[], None] | None = None

    @classmethod
    def from_settings(
        cls, settings: Settings, announce: Callable[[str], None] | None = None
    ) -> RunLimits:
        """Limits from ``lock-timeout`` and ``run-deadline``, the deadline counted from now."""
        deadline = settings.run_deadline
        return cls(
            lock=LockBudget(settings.lock_timeout, announce),
            deadline=time.monotonic() + deadline if deadline is not None else None,
            deadline_s=deadline,
        )

    def stopped(self) -> None:
        if self.on_stop is not None:
            self.on_stop()

    def deadline_summary(self, reached: bool, not_started: list[int]) -> dict[str, Any] | None:
        """The JSON summary's ``deadline`` object, or None when the run had no deadline."""
        if self.deadline_s is None:
            return None
        return {"seconds": self.deadline_s, "reached": reached, "not_started": not_started}


def snapshot(
    plan: Plan,
    runs: Mapping[int, TaskRun],
    options: RunOptions,
    *,
    started: tuple[float, str],
    why: str,
    signum: int | None,
) -> dict[str, Any]:
    """The JSON summary of a run as it stands, for publishing before the grace period is
    waited out: tasks still running are shown as they will end, cancelled (``why``).
    ``started`` is (``time.monotonic()``, ISO 8601 UTC) of the run's start."""
    from batchaction.summary import build_summary  # noqa: PLC0415

    copies = {n: dataclasses.replace(r, blocked_by=list(r.blocked_by)) for n, r in runs.items()}
    for run in copies.values():
        if run.outcome == "pending":
            run.outcome, run.reason = "cancelled", f"{why} (stopping in its grace period)"
    return build_summary(
        plan=plan,
        runs=copies,
        todo=str(options.todo_path),
        strategy=options.strategy,
        max_parallel=options.max_parallel,
        started=started[1],
        finished=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        duration_s=time.monotonic() - started[0],
        log_dir=str(options.log_dir),
        interrupted_by=signal.Signals(signum).name if signum else None,
    )
