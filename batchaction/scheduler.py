"""The scheduler: runs the plan's tasks as processes, eager or in strict waves.

One thread, one ``selectors`` loop over process fds (pidfd), output pipes and the signal wake-up
pipe; timeouts come from the loop's deadline. Which task starts next is ``policy.py``; how
processes are started, watched and stopped is ``supervision.py``; where a task runs and how its
work is integrated is ``workspaces.py``. This module decides outcomes, retries, blocking and the
status changes, which go to the writer thread: the hand-off from a finished task to its
dependents never waits on the disk.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import secrets
import selectors
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from batchaction import executor
from batchaction.errors import BatchError
from batchaction.planner import Plan
from batchaction.policy import ReadyQueue, retry_delay
from batchaction.supervision import Proc, Supervisor, exit_reason, install_handlers
from batchaction.writeback import StatusChange, today

if TYPE_CHECKING:
    from batchaction.workspaces import Workspaces

TaskOutcome = Literal[
    "pending", "completed", "in-progress", "failed", "timed-out", "blocked", "skipped", "cancelled"
]
FINISHED = frozenset({"completed", "in-progress", "failed", "timed-out", "blocked", "cancelled"})
MAX_WAIT = 3600.0  # longest single wait of the loop; it wakes up and waits again


@dataclass
class TaskRun:
    """What happened to one task; the summary is made of these."""

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


@dataclass(frozen=True)
class RunOptions:
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


class Reporter:
    """Receives state changes; the default does nothing."""

    def task_started(self, run: TaskRun, running: Sequence[int]) -> None: ...
    def task_finished(self, run: TaskRun, running: Sequence[int]) -> None: ...
    def task_retry(self, run: TaskRun, delay: float) -> None: ...
    def output(self, number: int, line: str) -> None: ...
    def interrupted(self, signum: int) -> None: ...
    def notice(self, message: str) -> None: ...


class Scheduler:
    def __init__(
        self,
        plan: Plan,
        options: RunOptions,
        *,
        submit: Callable[[StatusChange], None],
        reporter: Reporter | None = None,
        lines: Sequence[str] = (),
    ) -> None:
        self.plan = plan
        self.options = options
        self.submit = submit
        self.reporter = reporter or Reporter()
        self.lines = lines
        self.runs: dict[int, TaskRun] = {}
        for number in plan.run:
            task = plan.tasks[number]
            self.runs[number] = TaskRun(
                number, task.title, plan.wave_of(number), previous_status=task.status
            )
        for blocked in plan.blocked:
            task = plan.tasks[blocked.number]
            self.runs[blocked.number] = TaskRun(
                blocked.number,
                task.title,
                0,
                outcome="blocked",
                blocked_by=list(blocked.blocked_by),
                reason=blocked.reason,
                previous_status=task.status,
            )
        self.queue = ReadyQueue(plan, options.strategy)
        self.dependents = self.queue.dependents
        self.sup: Supervisor | None = None
        self.stopping = False
        self.failed_first: int | None = None
        self.signal_received: int | None = None
        self.hurry = False  # a second SIGINT: no more grace for anything
        # BATCH_RUN_TOKEN=<token>:<n>:<attempt> marks every process a task starts.
        self.token = options.token or f"{os.getpid()}-{secrets.token_hex(6)}"

    # -- public -----------------------------------------------------------------------------

    def run(self) -> dict[int, TaskRun]:
        for blocked in self.plan.blocked:
            self.submit(StatusChange(blocked.number, "blocked", today(), blocked.reason))
        self.queue.initial()
        selector = selectors.DefaultSelector()
        sup = self.sup = Supervisor(selector, self.options.grace, self.reporter.output)
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        selector.register(wake_r, selectors.EVENT_READ, ("wake", None))
        previous_handlers = install_handlers(self._on_signal)
        previous_wakeup = signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        # This loop mostly waits in system calls; when the status writer thread is busy
        # parsing, a short switch interval hands the GIL back to the loop quickly.
        previous_interval = sys.getswitchinterval()
        sys.setswitchinterval(0.0005)
        try:
            self._loop(selector, sup, wake_r)
        finally:
            try:
                # Still under our handlers: a second Ctrl-C here ends the wait for lingering
                # groups instead of raising KeyboardInterrupt and leaving them behind.
                sup.kill_everything(lambda: self.hurry, f"{self.token}:")
                for run in self.runs.values():
                    if run.outcome == "pending":
                        run.outcome = "cancelled"
                        run.reason = run.reason or "not started"
            finally:
                sys.setswitchinterval(previous_interval)
                signal.set_wakeup_fd(previous_wakeup)
                for signum, handler in previous_handlers.items():
                    signal.signal(signum, handler)
                selector.close()
                os.close(wake_r)
                os.close(wake_w)
        return self.runs

    # -- loop -------------------------------------------------------------------------------

    def _loop(self, selector: selectors.BaseSelector, sup: Supervisor, wake_r: int) -> None:
        while True:
            self._launch(sup)
            idle = not sup.procs and not self.queue.delayed
            if idle and (self.stopping or not self.queue.ready):
                break
            now = time.monotonic()
            moments = sup.moments() + self.queue.next_retry()
            # Capped: epoll refuses waits of more than ~24.8 days (a --timeout of 720h crashed).
            timeout = min(max(0.0, min(moments) - now), MAX_WAIT) if moments else None
            for key, _ in selector.select(timeout):
                kind, proc = key.data
                if kind == "wake":
                    with contextlib.suppress(BlockingIOError):
                        os.read(wake_r, 512)
                elif kind == "exit":
                    self._finish(sup, proc)
                elif kind == "out" and proc.pipe is not None:
                    # (None: the exit, reported in the same batch, already drained and closed it.)
                    sup.pump(proc)
            sup.check_deadlines(time.monotonic())
            if sup.sweep_due(time.monotonic()):
                self._launch(sup)  # dependents first: the sweep reads /proc
                sup.sweep_strays()
            if self.signal_received is not None and not self.stopping:
                self._interrupt(sup)

    def _launch(self, sup: Supervisor) -> None:
        for number in self.queue.due(time.monotonic()):
            if self.stopping:
                self._cancel_unstarted(number)
            else:
                self.queue.push(number)
        if self.stopping:
            return
        free = self.options.max_parallel - len(sup.procs)
        chosen = self.queue.take(
            free, lambda n: self.runs[n].wave, lambda n: self.runs[n].outcome in FINISHED
        )
        for number in chosen:
            self._start(sup, number)

    # -- processes --------------------------------------------------------------------------

    def _start(self, sup: Supervisor, number: int) -> None:
        opts = self.options
        run = self.runs[number]
        task = self.plan.tasks[number]
        run.attempts += 1
        first_attempt = run.attempts == 1
        log_path = opts.log_dir / f"task-{number}.log"
        run.log_path = str(log_path)
        task_file = opts.work_dir / f"task-{number}.json"
        result_file = opts.work_dir / f"result-{number}.json"
        result_file.unlink(missing_ok=True)
        if first_attempt:
            body = self.lines[task.heading_line : task.end_line]
            task_file.write_text(
                json.dumps(executor.task_document(task, body, run.wave, opts.todo_path)),
                encoding="utf-8",
            )
        env = executor.executor_env(
            opts.environ,
            task=task,
            wave=run.wave,
            dependencies=task.dependencies,
            todo_path=opts.todo_path,
            task_file=task_file,
            result_file=result_file,
            secrets=opts.secrets,
            expose_token=opts.expose_token,
        )
        log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        if not first_attempt:
            os.write(log_fd, f"\n--- attempt {run.attempts} ---\n".encode())
        command = executor.command_for(opts.executor, number)
        token = f"{self.token}:{number}:{run.attempts}"
        env["BATCH_RUN_TOKEN"] = token
        cwd = opts.cwd
        try:
            if opts.workspaces is not None:
                tree = opts.workspaces.start(number)
                cwd = tree.path
                env.update(opts.workspaces.environment(tree))
                command = opts.workspaces.command(command)
            sup.spawn(
                number, command, cwd=cwd, env=env, log_fd=log_fd, stream=opts.stream,
                timeout=opts.timeout, result_file=result_file, token=token,
            )  # fmt: skip
        except (OSError, BatchError) as exc:
            os.close(log_fd)
            if opts.workspaces is not None and number in opts.workspaces.busy_numbers():
                opts.workspaces.finish(number, task.title, integrate=False, keep=False)
            run.outcome = "failed"
            problem = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            run.reason = f"could not start the executor: {problem}"
            self.submit(StatusChange(number, "failed", today(), run.reason))
            self.reporter.task_finished(run, sup.running())
            self._after_failure(run)
            return
        if first_attempt:
            run.started_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
            self.submit(StatusChange(number, "in-progress", today()))
        run.outcome = "pending"
        self.reporter.task_started(run, sup.running())

    def _finish(self, sup: Supervisor, proc: Proc) -> None:
        returncode = sup.reap(proc)
        run = self.runs[proc.number]
        run.exit_code = returncode
        run.duration_s = round(time.monotonic() - proc.started, 3)
        run.log_tail = executor.read_tail(Path(run.log_path or ""))
        status, summary, problem = executor.read_result(proc.result_file)
        if proc.cancelled:
            run.outcome = "cancelled"
            run.reason = "interrupted"
            self.submit(self._restore(run))
        elif proc.timed_out:
            run.outcome = "timed-out"
            run.reason = f"timed out after {_seconds(self.options.timeout)}"
        elif returncode != 0:
            run.outcome = "failed"
            run.reason = exit_reason(returncode) + (f": {summary}" if summary else "")
        elif problem is not None:
            run.outcome = "failed"
            run.reason = problem
        elif status == "failed":
            run.outcome = "failed"
            run.reason = "the executor reported failure" + (f": {summary}" if summary else "")
        elif status == "in-progress":
            run.outcome = "in-progress"
            run.reason = summary or "the executor reported work in progress"
        else:
            run.outcome = "completed"
            run.reason = summary
        if self.options.workspaces is not None:
            self._collect_work(run)
        if run.outcome in ("failed", "timed-out") and (
            run.attempts <= self.options.retries and not self.stopping
        ):
            delay = retry_delay(run.attempts, self.options.retry_backoff)
            self.queue.delay(time.monotonic() + delay, run.number)
            self.reporter.task_retry(run, delay)
            run.outcome = "pending"
            return
        if run.outcome in ("failed", "timed-out"):
            self.submit(StatusChange(run.number, "failed", today(), run.reason))
        elif run.outcome == "completed":
            self.submit(StatusChange(run.number, "completed", today()))
        self.reporter.task_finished(run, sup.running())
        if run.outcome in ("failed", "timed-out"):
            self._after_failure(run)
        elif run.outcome == "completed":
            for child in self.queue.completed(run.number):
                if self.runs[child].outcome == "pending":
                    self.queue.push(child)
        elif run.outcome == "in-progress":
            self._block_dependents(run, f"waits for task {run.number}, still in progress")

    def _collect_work(self, run: TaskRun) -> None:
        """Worktree isolation: integrate a finished task's work, or keep it on its branch."""
        assert self.options.workspaces is not None
        integrate = run.outcome in ("completed", "in-progress")
        try:
            work = self.options.workspaces.finish(
                run.number, run.title, integrate=integrate, keep=not integrate
            )
        except Exception as exc:
            run.outcome = "failed"
            run.reason = f"could not collect the task's work: {exc}"
            return
        run.branch = work.branch
        run.commits += len(work.integrated)
        if work.conflicts:
            run.outcome = "failed"
            run.reason = (
                "conflict in "
                + ", ".join(work.conflicts[:10])
                + (f" (kept on {work.branch})" if work.branch else "")
            )
        elif work.branch and run.outcome in ("failed", "timed-out", "cancelled"):
            run.reason = f"{run.reason or run.outcome} (work kept on {work.branch})"
        if work.todo_conflict:
            run.reason = f"{run.reason}; {work.todo_conflict}" if run.reason else work.todo_conflict

    def _after_failure(self, run: TaskRun) -> None:
        word = "timed-out" if run.outcome == "timed-out" else "failed"
        self._block_dependents(run, f"blocked by {word} task {run.number}")
        if self.options.fail_fast and self.failed_first is None:
            self.failed_first = run.number
            self.stopping = True
            for number in self.queue.drain():
                self._cancel_unstarted(number, f"not started: --fail-fast after task {run.number}")

    def _block_dependents(self, root: TaskRun, reason: str) -> None:
        stack = list(self.dependents.get(root.number, []))
        while stack:
            number = stack.pop()
            child = self.runs[number]
            if child.outcome == "blocked":
                if root.number not in child.blocked_by:
                    child.blocked_by.append(root.number)
                    child.blocked_by.sort()
                continue
            if child.outcome != "pending" or child.attempts:
                continue
            child.outcome = "blocked"
            child.blocked_by = [root.number]
            child.reason = reason
            self.queue.discard(number)
            self.submit(StatusChange(number, "blocked", today(), reason))
            self.reporter.task_finished(child, self.sup.running() if self.sup else [])
            stack.extend(self.dependents.get(number, []))

    def _cancel_unstarted(self, number: int, reason: str = "not started: interrupted") -> None:
        run = self.runs[number]
        if run.outcome == "pending":
            run.outcome = "cancelled"
            run.reason = reason
            if run.attempts:
                # Waiting for a retry: TODO.md already says it is in progress.
                self.submit(self._restore(run))

    def _restore(self, run: TaskRun) -> StatusChange:
        """Put a cancelled task back as it was: its section as read, or (edited meanwhile) its
        Status, its Started line and the lifecycle lines its start removed.

        Of the lifecycle lines, the run wrote only Started before the task was cancelled
        (Completed, Failed and Blocked are written when a task ends, never for a cancelled one).
        """
        task = self.plan.tasks[run.number]
        started = task.field("started")
        return StatusChange(
            run.number,
            "restore",
            today(),
            previous=run.previous_status,
            previous_fields=(("Started", started.value if started is not None else None),),
            previous_lines=tuple(self.lines[task.heading_line : task.end_line]),
        )

    # -- signals ----------------------------------------------------------------------------

    def _on_signal(self, signum: int, _frame: object) -> None:
        if self.signal_received is not None and signum == signal.SIGINT:
            # A second Ctrl-C: no more grace, for running tasks and lingering groups.
            self.hurry = True
            if self.sup is not None:
                self.sup.kill_now()
        self.signal_received = self.signal_received or signum

    def _interrupt(self, sup: Supervisor) -> None:
        assert self.signal_received is not None
        self.stopping = True
        self.reporter.interrupted(self.signal_received)
        sup.cancel_all()
        for number in self.queue.drain():
            self._cancel_unstarted(number)
        for run in self.runs.values():
            if run.outcome == "pending" and not run.attempts:
                self._cancel_unstarted(run.number)


def _seconds(value: float) -> str:
    if value >= 3600 and value % 3600 == 0:
        return f"{value / 3600:g}h"
    if value >= 60 and value % 60 == 0:
        return f"{value / 60:g}m"
    return f"{value:g}s"
