"""The scheduler: runs the plan's tasks as processes, eager or in strict waves.

One thread, one ``selectors`` loop over process fds (pidfd), output pipes and the signal wake-up
pipe; timeouts come from the loop's deadline. Status changes are queued to the writer thread,
so the hand-off from a finished task to its dependents never waits on the disk.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import heapq
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from batchaction import executor
from batchaction.errors import BatchError
from batchaction.planner import Plan
from batchaction.writeback import StatusChange, today

if TYPE_CHECKING:
    from batchaction.workspaces import Workspaces

TaskOutcome = Literal[
    "pending", "completed", "in-progress", "failed", "timed-out", "blocked", "skipped", "cancelled"
]
FINISHED = frozenset({"completed", "in-progress", "failed", "timed-out", "blocked", "cancelled"})
INTERRUPTS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
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


class Reporter:
    """Receives state changes; the default does nothing."""

    def task_started(self, run: TaskRun, running: Sequence[int]) -> None: ...
    def task_finished(self, run: TaskRun, running: Sequence[int]) -> None: ...
    def task_retry(self, run: TaskRun, delay: float) -> None: ...
    def output(self, number: int, line: str) -> None: ...
    def interrupted(self, signum: int) -> None: ...
    def notice(self, message: str) -> None: ...


@dataclass
class _Proc:
    run: TaskRun
    popen: subprocess.Popen[bytes]
    pidfd: int
    pgid: int
    started: float
    deadline: float
    log_fd: int
    result_file: Path
    pipe: int | None = None
    partial: bytes = b""
    timed_out: bool = False
    cancelled: bool = False
    kill_at: float | None = None


@dataclass
class _Lingering:
    pgid: int
    kill_at: float


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
        self.dependents = plan.dependents()
        self.waiting = {n: len(plan.edges.get(n, ())) for n in plan.run}
        self.ready: list[tuple[float, int]] = []
        self.delayed: list[tuple[float, int]] = []
        self.procs: dict[int, _Proc] = {}  # by pidfd
        self.lingering: list[_Lingering] = []
        self.stopping = False
        self.failed_first: int | None = None
        self.signal_received: int | None = None
        self.hurry = False  # a second SIGINT: no more grace for anything
        self.current_wave = 1

    # -- public -----------------------------------------------------------------------------

    def run(self) -> dict[int, TaskRun]:
        for blocked in self.plan.blocked:
            self.submit(StatusChange(blocked.number, "blocked", today(), blocked.reason))
        for number in self.plan.run:
            if self.waiting[number] == 0:
                self._make_ready(number)
        selector = selectors.DefaultSelector()
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        selector.register(wake_r, selectors.EVENT_READ, ("wake", None))
        previous_handlers = self._install_signals()
        previous_wakeup = signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        # This loop mostly waits in system calls; when the status writer thread is busy
        # parsing, a short switch interval hands the GIL back to the loop quickly.
        previous_interval = sys.getswitchinterval()
        sys.setswitchinterval(0.0005)
        try:
            self._loop(selector, wake_r)
        finally:
            try:
                # Still under our handlers: a second Ctrl-C here ends the wait for lingering
                # groups instead of raising KeyboardInterrupt and leaving them behind.
                self._kill_everything()
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

    def _loop(self, selector: selectors.BaseSelector, wake_r: int) -> None:
        while True:
            self._launch(selector)
            if not self.procs and not self.delayed and not self._can_launch():
                break
            now = time.monotonic()
            timeout = self._next_deadline(now)
            for key, _ in selector.select(timeout):
                kind, proc = key.data
                if kind == "wake":
                    with contextlib.suppress(BlockingIOError):
                        os.read(wake_r, 512)
                elif kind == "exit":
                    self._finish(selector, proc)
                elif kind == "out" and proc.pipe is not None:
                    # (None: the exit, reported in the same batch, already drained and closed it.)
                    self._pump(selector, proc)
            self._check_deadlines(time.monotonic())
            if self.signal_received is not None and not self.stopping:
                self._interrupt()

    def _can_launch(self) -> bool:
        return not self.stopping and bool(self.ready)

    def _next_deadline(self, now: float) -> float | None:
        moments = [p.kill_at if p.kill_at is not None else p.deadline for p in self.procs.values()]
        moments += [linger.kill_at for linger in self.lingering]
        moments += [at for at, _ in self.delayed]
        if not moments:
            return None
        # Capped: epoll refuses waits of more than ~24.8 days (a --timeout of 720h crashed).
        return min(max(0.0, min(moments) - now), MAX_WAIT)

    def _launch(self, selector: selectors.BaseSelector) -> None:
        now = time.monotonic()
        while self.delayed and self.delayed[0][0] <= now:
            _, number = heapq.heappop(self.delayed)
            if not self.stopping:
                heapq.heappush(self.ready, (-self.plan.bottom_level.get(number, 1.0), number))
            else:
                self._cancel_unstarted(number)
        if self.stopping:
            return
        if self.options.strategy == "waves":
            self._advance_wave()
        held: list[tuple[float, int]] = []
        while self.ready and len(self.procs) < self.options.max_parallel:
            item = heapq.heappop(self.ready)
            number = item[1]
            if self.options.strategy == "waves" and self.runs[number].wave != self.current_wave:
                held.append(item)
                continue
            self._start(selector, number)
        for item in held:
            heapq.heappush(self.ready, item)

    def _advance_wave(self) -> None:
        while self.current_wave <= len(self.plan.waves):
            wave = self.plan.waves[self.current_wave - 1]
            if all(self.runs[n].outcome in FINISHED for n in wave):
                self.current_wave += 1
            else:
                return

    def _make_ready(self, number: int) -> None:
        heapq.heappush(self.ready, (-self.plan.bottom_level.get(number, 1.0), number))

    # -- processes --------------------------------------------------------------------------

    def _start(self, selector: selectors.BaseSelector, number: int) -> None:
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
        cwd = opts.cwd
        try:
            if opts.workspaces is not None:
                tree = opts.workspaces.start(number)
                cwd = tree.path
                env.update(opts.workspaces.environment(tree))
                command = opts.workspaces.command(command)
            popen = executor.spawn(command, cwd=cwd, env=env, log=log_fd, stream=opts.stream)
        except (OSError, BatchError) as exc:
            os.close(log_fd)
            if opts.workspaces is not None and number in opts.workspaces.busy_numbers():
                opts.workspaces.finish(number, task.title, integrate=False, keep=False)
            run.outcome = "failed"
            problem = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            run.reason = f"could not start the executor: {problem}"
            self.submit(StatusChange(number, "failed", today(), run.reason))
            self.reporter.task_finished(run, self._running())
            self._after_failure(run)
            return
        now = time.monotonic()
        if first_attempt:
            run.started_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
            self.submit(StatusChange(number, "in-progress", today()))
        pidfd = os.pidfd_open(popen.pid)
        proc = _Proc(
            run=run,
            popen=popen,
            pidfd=pidfd,
            pgid=popen.pid,
            started=now,
            deadline=now + opts.timeout,
            log_fd=log_fd,
            result_file=result_file,
        )
        self.procs[pidfd] = proc
        selector.register(pidfd, selectors.EVENT_READ, ("exit", proc))
        if popen.stdout is not None:
            proc.pipe = popen.stdout.fileno()
            os.set_blocking(proc.pipe, False)
            selector.register(proc.pipe, selectors.EVENT_READ, ("out", proc))
        run.outcome = "pending"
        self.reporter.task_started(run, self._running())

    def _running(self) -> list[int]:
        return sorted(p.run.number for p in self.procs.values())

    def _pump(self, selector: selectors.BaseSelector, proc: _Proc, final: bool = False) -> None:
        """Move output from the pipe to the log file, echoing whole lines."""
        assert proc.pipe is not None
        while True:
            try:
                chunk = os.read(proc.pipe, 65536)
            except BlockingIOError:
                break
            if not chunk:
                self._close_pipe(selector, proc)
                final = True  # end of output: a last line without a newline is echoed too
                break
            os.write(proc.log_fd, chunk)
            data = proc.partial + chunk
            *complete, proc.partial = data.split(b"\n")
            for line in complete:
                self.reporter.output(proc.run.number, line.decode("utf-8", "replace"))
            if len(proc.partial) > 65536:
                self.reporter.output(proc.run.number, proc.partial.decode("utf-8", "replace"))
                proc.partial = b""
            if not final:
                break
        if final and proc.partial:
            self.reporter.output(proc.run.number, proc.partial.decode("utf-8", "replace"))
            proc.partial = b""

    def _close_pipe(self, selector: selectors.BaseSelector, proc: _Proc) -> None:
        if proc.pipe is not None:
            selector.unregister(proc.pipe)
            if proc.popen.stdout is not None:
                proc.popen.stdout.close()
            proc.pipe = None

    def _finish(self, selector: selectors.BaseSelector, proc: _Proc) -> None:
        returncode = proc.popen.wait()
        selector.unregister(proc.pidfd)
        os.close(proc.pidfd)
        del self.procs[proc.pidfd]
        if proc.pipe is not None:
            self._pump(selector, proc, final=True)
            self._close_pipe(selector, proc)
        os.close(proc.log_fd)
        run = proc.run
        run.exit_code = returncode
        run.duration_s = round(time.monotonic() - proc.started, 3)
        run.log_tail = executor.read_tail(Path(run.log_path or ""))
        if executor.group_alive(proc.pgid):
            executor.terminate_group(proc.pgid)
            # The grace period that began with a timeout or interrupt goes on; it is not
            # granted twice. A leader that exited by itself leaves its group a full one.
            full = time.monotonic() + self.options.grace
            kill_at = full if proc.kill_at is None else min(proc.kill_at, full)
            self.lingering.append(_Lingering(proc.pgid, kill_at))
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
            run.reason = _exit_reason(returncode) + (f": {summary}" if summary else "")
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
            heapq.heappush(self.delayed, (time.monotonic() + delay, run.number))
            self.reporter.task_retry(run, delay)
            run.outcome = "pending"
            return
        if run.outcome in ("failed", "timed-out"):
            self.submit(StatusChange(run.number, "failed", today(), run.reason))
        elif run.outcome == "completed":
            self.submit(StatusChange(run.number, "completed", today()))
        self.reporter.task_finished(run, self._running())
        if run.outcome in ("failed", "timed-out"):
            self._after_failure(run)
        elif run.outcome == "completed":
            for child in self.dependents.get(run.number, []):
                self.waiting[child] -= 1
                if self.waiting[child] == 0 and self.runs[child].outcome == "pending":
                    self._make_ready(child)
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
        except (OSError, BatchError) as exc:
            run.outcome = "failed"
            run.reason = f"could not integrate the task's work: {exc}"
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
            for _, number in list(self.ready) + list(self.delayed):
                self._cancel_unstarted(number, f"not started: --fail-fast after task {run.number}")
            self.ready.clear()
            self.delayed.clear()

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
            self.ready = [item for item in self.ready if item[1] != number]
            heapq.heapify(self.ready)
            self.submit(StatusChange(number, "blocked", today(), reason))
            self.reporter.task_finished(child, self._running())
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

    # -- time and signals -------------------------------------------------------------------

    def _check_deadlines(self, now: float) -> None:
        for proc in list(self.procs.values()):
            if proc.kill_at is not None and now >= proc.kill_at:
                executor.kill_group(proc.pgid)
                proc.kill_at = now + 3600  # killed; wait for the exit event
            elif proc.kill_at is None and now >= proc.deadline:
                proc.timed_out = True
                executor.terminate_group(proc.pgid)
                proc.kill_at = now + self.options.grace
        still: list[_Lingering] = []
        for linger in self.lingering:
            if not executor.group_alive(linger.pgid):
                continue
            if now >= linger.kill_at:
                executor.kill_group(linger.pgid)
                linger.kill_at = now + 0.05
            still.append(linger)
        self.lingering = still

    def _install_signals(self) -> dict[int, signal._HANDLER]:
        previous: dict[int, signal._HANDLER] = {}

        def handler(signum: int, _frame: object) -> None:
            if self.signal_received is not None and signum == signal.SIGINT:
                # A second Ctrl-C: no more grace, for running tasks and lingering groups.
                self.hurry = True
                for proc in self.procs.values():
                    executor.kill_group(proc.pgid)
                for linger in self.lingering:
                    executor.kill_group(linger.pgid)
            self.signal_received = self.signal_received or signum

        for signum in INTERRUPTS:
            with contextlib.suppress(ValueError):  # not the main thread
                previous[signum] = signal.signal(signum, handler)
        return previous

    def _interrupt(self) -> None:
        assert self.signal_received is not None
        self.stopping = True
        self.reporter.interrupted(self.signal_received)
        now = time.monotonic()
        for proc in self.procs.values():
            proc.cancelled = True
            executor.terminate_group(proc.pgid)
            proc.kill_at = min(proc.kill_at or now + self.options.grace, now + self.options.grace)
        for _, number in list(self.ready) + list(self.delayed):
            self._cancel_unstarted(number)
        for run in self.runs.values():
            if run.outcome == "pending" and not run.attempts:
                self._cancel_unstarted(run.number)
        self.ready.clear()
        self.delayed.clear()

    def _kill_everything(self) -> None:
        """Nothing we started outlives the run."""
        for proc in self.procs.values():
            executor.kill_group(proc.pgid)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(timeout=5)
        for linger in self.lingering:
            # The grace period each group got when it was sent SIGTERM, not a new one.
            while (
                executor.group_alive(linger.pgid)
                and time.monotonic() < linger.kill_at
                and not self.hurry
            ):
                time.sleep(0.02)
            executor.kill_group(linger.pgid)
            executor.reap_group(linger.pgid)
        for run in self.runs.values():
            if run.outcome == "pending":
                run.outcome = "cancelled"
                run.reason = run.reason or "not started"


def retry_delay(attempt: int, backoff: float) -> float:
    """Seconds to wait after ``attempt`` failed: tenacity's exponential backoff, capped at 60 s.

    tenacity is imported here, on the first retry, so that runs without one never load it.
    """
    import tenacity  # noqa: PLC0415

    state = tenacity.RetryCallState(retry_object=tenacity.Retrying(), fn=None, args=(), kwargs={})
    state.attempt_number = attempt
    return float(tenacity.wait_exponential(multiplier=backoff, max=60.0)(state))


def _seconds(value: float) -> str:
    if value >= 3600 and value % 3600 == 0:
        return f"{value / 3600:g}h"
    if value >= 60 and value % 60 == 0:
        return f"{value / 60:g}m"
    return f"{value:g}s"


def _exit_reason(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"killed by {name}"
    return f"exit code {returncode}"
