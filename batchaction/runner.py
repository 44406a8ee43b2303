"""``batchaction run``: plan -> scheduler -> status writer -> summaries, as one call."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from batchaction.errors import EXIT_OK, EXIT_TASKS_FAILED, BatchError
from batchaction.lockwait import active
from batchaction.planner import Plan
from batchaction.repo import exclude_lock_file, repository_root
from batchaction.runlimits import DEADLINE_REASON, RunLimits
from batchaction.scheduler import Scheduler
from batchaction.settings import Settings
from batchaction.signals import recorded_signals
from batchaction.status import StatusTable
from batchaction.statuswriter import StatusWriter
from batchaction.summary import build_summary, render_markdown
from batchaction.taskrun import Reporter, RunOptions
from batchaction.todo import TodoDocument
from batchaction.writeback import PatchResult

if TYPE_CHECKING:
    from batchaction.workspaces import Workspaces

_NOT_STARTED = ("skipped", DEADLINE_REASON)  # what the run deadline left out


@dataclass
class RunRequest:
    settings: Settings
    todo: Path
    doc: TodoDocument
    plan: Plan
    reporter: Reporter
    stream: bool = False
    log_dir: Path | None = None
    cwd: Path | None = None
    summary_json: Path | None = None
    summary_md: Path | None = None
    secrets: tuple[str, ...] = ()
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    on_write: Callable[[PatchResult], None] | None = None
    retry_backoff: float = 1.0
    # Worktree isolation: "auto" opens it as the settings say; the action opens its own.
    workspaces: Workspaces | Literal["auto"] | None = "auto"
    limits: RunLimits | None = None  # default: from the settings, the deadline counted from now


@dataclass
class RunResult:
    summary: dict[str, Any]
    markdown: str
    exit_code: int


def execute(request: RunRequest) -> RunResult:
    settings = request.settings
    if not settings.executor:
        raise BatchError("no executor: pass --executor 'CMD' (use {number} for the task number)")
    log_dir = request.log_dir or Path(tempfile.mkdtemp(prefix="batchaction-logs-"))
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BatchError(f"{log_dir}: cannot create the log directory: {exc.strerror}") from None
    work_dir = Path(tempfile.mkdtemp(prefix="batchaction-run-"))
    exclude_lock_file(request.todo)
    table = StatusTable.create(settings.done_markers, settings.closed_markers)
    writer = StatusWriter(
        request.todo, table, dict(settings.status_markers), on_write=request.on_write
    )
    cwd = request.cwd or repository_root(Path.cwd())
    started_in = request.cwd or Path.cwd()
    workspaces = request.workspaces
    if workspaces == "auto":
        workspaces = open_workspaces(
            settings, cwd, started_in, request.todo.resolve(), request.reporter,
            tasks=len(request.plan.run),
        )  # fmt: skip
    options = RunOptions(
        executor=settings.executor,
        cwd=cwd,
        todo_path=request.todo.resolve(),
        log_dir=log_dir.resolve(),
        work_dir=work_dir,
        max_parallel=settings.max_parallel,
        timeout=settings.timeout,
        grace=settings.grace,
        retries=settings.retries,
        retry_backoff=request.retry_backoff,
        strategy="waves" if settings.strategy == "waves" else "eager",
        fail_fast=settings.fail_fast,
        stream=request.stream,
        secrets=request.secrets,
        expose_token=settings.expose_token,
        environ=request.environ,
        workspaces=workspaces,
        token=workspaces.token if workspaces is not None else "",
        stall_timeout=settings.stall_timeout,
        verify=settings.verify,
        verify_on="task" if settings.verify_on == "task" else "integrated",
    )
    limits = request.limits or RunLimits.from_settings(settings, request.reporter.notice)
    scheduler = Scheduler(
        request.plan,
        options,
        submit=writer.submit,
        reporter=request.reporter,
        lines=request.doc.lines,
        limits=limits,
    )
    started_wall = dt.datetime.now(dt.UTC)
    started = time.monotonic()
    # The scheduler handles signals while it runs; one that comes after it stopped is recorded,
    # not fatal: the statuses still drain, the summaries are still written, the exit is 128+N.
    with recorded_signals() as late, active(limits.lock):
        # While status writes drain, a second signal must not cut them in half.
        final: dict[str, Any] = {"mode": "none"}
        rewritten: list[int] = []
        try:
            runs = scheduler.run()
        finally:
            limits.stopped()
            with _signals_deferred():
                writer.close()
                rewritten = writer.reassert()
                if workspaces is not None:
                    final = {"mode": "worktree", "notices": list(workspaces.notices)}
                    final.update(workspaces.close())
            shutil.rmtree(work_dir, ignore_errors=True)
        signum = scheduler.signal_received or (late[0] if late else None)
        warnings = list(request.plan.warnings)
        warnings += [
            f"task {c.number} was no longer in the TODO file when its status ({c.outcome}) "
            "was written"
            for c in writer.missing
        ]
        warnings += [
            f"task {n}'s status had been overwritten in the TODO file (an executor rewrote the "
            "file without its lock): it was written again"
            for n in rewritten
        ]
        summary = build_summary(
            plan=request.plan,
            runs=runs,
            todo=str(request.todo),
            strategy=settings.strategy,
            max_parallel=settings.max_parallel,
            started=started_wall.isoformat(timespec="seconds"),
            finished=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            duration_s=time.monotonic() - started,
            log_dir=str(log_dir),
            warnings=warnings,
            failed_updates=[
                {"number": f.change.number, "status": f.change.outcome, "error": f.error}
                for f in writer.failed
            ],
            interrupted_by=signal.Signals(signum).name if signum else None,
            isolation=final,
            todo_lock=limits.lock.as_summary(),
            deadline=limits.deadline_summary(
                scheduler.deadline_hit,
                sorted(n for n, r in runs.items() if (r.outcome, r.reason) == _NOT_STARTED),
            ),
        )
        markdown = render_markdown(summary)
        write_outputs(summary, markdown, request.summary_json, request.summary_md)
    signum = signum or (late[0] if late else None)
    if signum:
        code = 128 + signum
    else:
        code = EXIT_OK if summary["result"] == "success" else EXIT_TASKS_FAILED
    return RunResult(summary, markdown, code)


def open_workspaces(
    settings: Settings,
    repo: Path,
    started_in: Path,
    todo: Path,
    reporter: Reporter | None,
    *,
    branch_prefix: str | None = None,
    committer: dict[str, str] | None = None,
    tasks: int = 0,
) -> Workspaces | None:
    """Worktree isolation when asked for, or by default in a git repository with a commit;
    None when tasks share the work tree. ``todo`` is absolute; ``branch_prefix`` names the
    branches that keep unintegrated work (default ``batchaction/<run-id>``); ``committer`` the
    ``GIT_COMMITTER_*`` of the commits the run makes (default: the repository's user); ``tasks``
    how many will run (that many worktrees, up to ``max-parallel``, are made at once). Raises
    BatchError (exit 2) when ``worktree`` was asked for and cannot be had."""
    from batchaction.repo import MIN_GIT, git_version, has_commits  # noqa: PLC0415
    from batchaction.workspaces import Workspaces  # noqa: PLC0415

    mode = settings.isolation
    if mode == "none":
        return None
    version = git_version()
    if version and version < MIN_GIT:
        wanted = ".".join(map(str, MIN_GIT))
        have = ".".join(map(str, version))
        if mode == "worktree":
            raise BatchError(
                f"--isolation worktree needs git {wanted} or later (this is git {have}): "
                "update git, or pass --isolation none"
            )
        _notice(reporter, f"git {have} is older than {wanted}: tasks share the work tree")
        return None
    if not has_commits(repo):
        if mode == "worktree":
            raise BatchError(
                f"--isolation worktree needs a git repository with at least one commit; {repo} "
                "is not one: commit first, or pass --isolation none"
            )
        _notice(reporter, "not a git repository with a commit: tasks share the work tree")
        return None
    workspaces = Workspaces(
        repo=repo,
        todo=Path(os.path.realpath(todo)),  # read and written without following symlinks
        max_parallel=settings.max_parallel,
        started_in=started_in,
        copy=settings.worktree_copy,
        link=settings.worktree_link,
        author=settings.task_author,
        token=f"{os.getpid()}-{secrets.token_hex(6)}",
        branch_prefix=branch_prefix,
        committer=committer,
    )
    workspaces.open(tasks)
    for notice in workspaces.notices:
        _notice(reporter, notice)
    return workspaces


def _notice(reporter: Reporter | None, message: str) -> None:
    if reporter is not None:
        reporter.notice(message)
    else:
        print(f"notice: {message}", file=sys.stderr)


def write_outputs(
    summary: Mapping[str, Any], markdown: str, json_path: Path | None, md_path: Path | None
) -> None:
    for path, text in ((json_path, json.dumps(summary, indent=2) + "\n"), (md_path, markdown)):
        if path is None:
            continue
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise BatchError(f"{path}: cannot write the summary: {exc.strerror or exc}") from None


@contextlib.contextmanager
def _signals_deferred() -> Any:
    """Hold SIGINT/SIGTERM/SIGHUP while a critical section finishes (main thread only)."""
    signals = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    try:
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    except (ValueError, OSError):
        yield
        return
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
