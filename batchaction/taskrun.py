"""What one run is asked to do (``RunOptions``), what became of each task (``TaskRun``), and
who hears about it (``Reporter``): the shapes the scheduler, the summary and the progress
output share."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from batchaction.workspaces import Workspaces

TaskOutcome = Literal[
    "pending", "completed", "in-progress", "failed", "timed-out", "blocked", "skipped", "cancelled"
]
FINISHED = frozenset({"completed", "in-progress", "failed", "timed-out", "blocked", "cancelled"})


@dataclass
class TaskRun:
    """What happened to one task; the summary is made of these. Durations in seconds."""

    number: int
    title: str
    wave: int
    outcome: TaskOutcome = "pending"
    exit_code: int | None = None
    started_at: str | None = None
    duration_s: float | None = None
    attempts: int = 0
    blocked_by: list[int] = field(default_factory=list)
    reason: str | None = None
    log_path: str | None = None
    log_tail: list[str] = field(default_factory=list)
    previous_status: str = ""
    branch: str | None = None  # where work that was not integrated is kept (worktree isolation)
    commits: int = 0  # commits integrated (worktree isolation)
    strays: list[dict[str, Any]] = field(default_factory=list)  # {"pid", "command"}: killed


@dataclass(frozen=True)
class RunOptions:
    """How to run: times in seconds; ``verify`` a command that must pass for a task's work
    to count (``verify_on``: ``integrated`` or ``task``); ``stall_timeout`` the longest
    silence a task may keep."""

    executor: str
    cwd: Path
    todo_path: Path
    log_dir: Path
    work_dir: Path  # task files and result files
    max_parallel: int = 5
    timeout: float = 3600.0
    grace: float = 10.0
    retries: int = 0
    retry_backoff: float = 1.0
    strategy: Literal["eager", "waves"] = "eager"
    fail_fast: bool = False
    stream: bool = False
    secrets: tuple[str, ...] = ()
    expose_token: bool = False
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    workspaces: Workspaces | None = None  # worktree isolation, else every task runs in cwd
    token: str = ""  # prefix of BATCH_RUN_TOKEN (default: made by the scheduler)
    stall_timeout: float | None = None
    verify: str | None = None
    verify_on: Literal["integrated", "task"] = "integrated"


class Reporter:
    """Receives state changes; the default does nothing."""

    def task_started(self, run: TaskRun, running: Sequence[int]) -> None: ...
    def task_finished(self, run: TaskRun, running: Sequence[int]) -> None: ...
    def task_retry(self, run: TaskRun, delay: float) -> None: ...
    def output(self, number: int, line: str) -> None: ...
    def interrupted(self, signum: int) -> None: ...
    def notice(self, message: str) -> None: ...


def duration_text(value: float) -> str:
    """``90`` -> ``90s``, ``600`` -> ``10m``, ``7200`` -> ``2h``: as a user would write it."""
    if value >= 3600 and value % 3600 == 0:
        return f"{value / 3600:g}h"
    if value >= 60 and value % 60 == 0:
        return f"{value / 60:g}m"
    return f"{value:g}s"
