"""The scheduler: runs the plan's tasks as processes, eager or in strict waves.

One thread, one ``selectors`` loop over process fds (pidfd), output pipes and the signal wake-up
pipe; timeouts come from the loop's deadline. Which task starts next is ``policy.py``; how
processes are started, watched and stopped is ``supervision.py``; where a task runs is
``workspaces.py``, and how its work is verified and integrated is ``workstage.py``. This module
decides outcomes, retries, blocking and the
status changes, which go to the writer thread: the hand-off from a finished task to its
dependents never waits on the disk.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import os
import secrets
import selectors
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

from batchaction import executor
from batchaction.errors import BatchError
from batchaction.planner import Plan
from batchaction.policy import ReadyQueue, retry_delay
from batchaction.runlimits import DEADLINE_REASON, RunLimits, snapshot
from batchaction.supervision import Proc, Supervisor, exit_reason, install_handlers
from batchaction.taskrun import FINISHED, Reporter, RunOptions, TaskRun, duration_text
from batchaction.workstage import WorkStage
from batchaction.writeback import StatusChange, today

MAX_WAIT = 3600.0  # longest single wait of the loop; it wakes up and waits again


class Scheduler(WorkStage):
    def __init__(
        self,
        plan: Plan,
        options: RunOptions,
        *,
        submit: Callable[[StatusChange], None],
        reporter: Reporter | None = None,
        lines: Sequence[str] = (),
        limits: RunLimits | None = None,
    ) -> None:
        self.plan = plan
        self.limits = limits
        self.deadline = (limits.deadline if limits else None) or math.inf
        self.deadline_hit = False  # past run-deadline: nothing new starts
        self.stop_reason, self.started = "interrupted", (0.0, "")  # (monotonic, ISO 8601)
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
        self.envs: dict[int, dict[str, str]] = {}  # each task's environment (for --verify)
        self.verify_queue: deque[int] = deque()  # finished, awaiting --verify on the tip
        self.verifying: int | None = None  # on the tip now (one at a time: the tip must hold)

    # -- public -----------------------------------------------------------------------------

    def run(self) -> dict[int, TaskRun]:
        self.started = (time.monotonic(), dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
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
            moments += [self.deadline] if self.deadline < math.inf and not self.stopping else []
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
            if not self.stopping and time.monotonic() >= self.deadline:
                self._wind_down(sup, DEADLINE_REASON)
            if sup.sweep_due(time.monotonic()):
                self._launch(sup)  # dependents first: the sweep reads /proc
                sup.sweep_strays()
            if self.signal_received is not None and not self.stopping:
                self._interrupt(sup)

    def _launch(self, sup: Supervisor) -> None:
        for number in self.queue.due(time.monotonic()):
            if self.stopping:
                self._cancel_unstarted(number, f"not started: {self.stop_reason}")
            else:
                self.queue.push(number)
        if self.stopping:
            return
        # A worktree stays its task's while its work waits for or undergoes verification.
        held = self.options.workspaces.busy_numbers() if self.options.workspaces else set()
        free = self.options.max_parallel - len(held | set(sup.running()))
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
                stall=opts.stall_timeout,
            )  # fmt: skip
            self.envs[number] = env
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
        run.strays += proc.strays  # what its supervisor had to kill when it ended
        if proc.role == "verify":
            self._verified(sup, run, proc, returncode)
            return
        run.exit_code = returncode
        run.duration_s = round(time.monotonic() - proc.started, 3)
        run.log_tail = executor.read_tail(Path(run.log_path or ""))
        status, summary, problem = executor.read_result(proc.result_file)
        if proc.cancelled:
            run.outcome = "cancelled"
            run.reason = self.stop_reason
            self.submit(self._restore(run))
        elif proc.stalled:
            run.outcome = "timed-out"
            run.reason = f"stalled: no output for {duration_text(proc.stall or 0)}"
        elif proc.timed_out:
            run.outcome = "timed-out"
            run.reason = f"timed out after {duration_text(self.options.timeout)}"
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
        if self.options.verify and run.outcome in ("completed", "in-progress"):
            self._verify(sup, run)
            return
        if self.options.workspaces is not None:
            self._collect_work(run)
        self._settle(run)

    def _settle(self, run: TaskRun) -> None:
        """A task's outcome is known: retry it, or write its status and move its dependents."""
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
        self.reporter.task_finished(run, self.sup.running() if self.sup else [])
        if run.outcome in ("failed", "timed-out"):
            self._after_failure(run)
        elif run.outcome == "completed":
            for child in self.queue.completed(run.number):
                if self.runs[child].outcome == "pending":
                    self.queue.push(child)
        elif run.outcome == "in-progress":
            self._block_dependents(run, f"waits for task {run.number}, still in progress")

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
        if run.outcome == "pending" and self.deadline_hit and not run.attempts:
            run.outcome, run.reason = "skipped", DEADLINE_REASON  # never started: TODO untouched
        elif run.outcome == "pending":
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
        self.reporter.interrupted(self.signal_received)
        self._wind_down(sup, "interrupted")
        if self.limits and self.limits.on_interrupt:  # publish now, before the grace is over
            self.limits.on_interrupt(self.signal_received, snapshot(
                self.plan, self.runs, self.options, started=self.started,
                why=self.stop_reason, signum=self.signal_received))  # fmt: skip

    def _wind_down(self, sup: Supervisor, why: str) -> None:
        """Start nothing new; running tasks get SIGTERM and the grace (``why``: interrupted or
        run deadline reached, when tasks not started are skipped)."""
        self.stopping, self.stop_reason = True, why
        if why == DEADLINE_REASON:
            self.deadline_hit = True
            self.reporter.notice(f"{why}: nothing new starts; running tasks get the grace period")
        sup.cancel_all()
        while self.verify_queue:  # finished, not yet verified: kept, as an interrupted task's
            run = self.runs[self.verify_queue.popleft()]
            run.outcome, run.reason = "cancelled", f"{why} before its verification"
            self.submit(self._restore(run))
            self._collect_work(run)
            self.reporter.task_finished(run, sup.running())
        for number in self.queue.drain():
            self._cancel_unstarted(number, f"not started: {why}")
        for run in self.runs.values():
            if run.outcome == "pending" and not run.attempts:
                self._cancel_unstarted(run.number, f"not started: {why}")
