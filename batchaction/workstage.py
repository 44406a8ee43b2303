"""How a finished task's work reaches the integration tip: collected, verified, integrated.

With worktree isolation a finished task's work is committed and replayed onto the tip
(``workspaces.py``), or kept on its branch when it is not to be integrated. ``--verify CMD``
adds a check first: with ``verify-on: integrated`` (the default) the task's commits are
replayed onto the tip without moving it, the command runs in the task's worktree checked out
clean at that candidate (nothing the task left stays), and the tip moves only if it passes.
One candidate is verified at a time, so the tip it was made on is still the tip when it
passes: two tasks that each pass alone and break together cannot both land (the merge
queue's problem, solved as a merge queue of one does). ``verify-on: task`` runs the command
in the task's worktree as the task left it, before integrating: cheaper, and blind to that.
Without isolation it runs in the work tree.

A mixin of ``Scheduler``: it uses the scheduler's runs, options and status submission.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from batchaction import executor
from batchaction.supervision import Proc, Supervisor, exit_reason
from batchaction.taskrun import RunOptions, TaskRun, duration_text
from batchaction.writeback import StatusChange

if TYPE_CHECKING:
    from batchaction.workspaces import TaskWork


class WorkStage:
    """Collection and verification of finished tasks' work (see the module docstring)."""

    options: RunOptions
    runs: dict[int, TaskRun]
    token: str
    submit: Callable[[StatusChange], None]
    envs: dict[int, dict[str, str]]  # each task's environment, for the verify command
    verify_queue: deque[int]  # finished, awaiting verification on the tip
    verifying: int | None  # being verified on the tip now

    def _settle(self, run: TaskRun) -> None:
        raise NotImplementedError

    def _restore(self, run: TaskRun) -> StatusChange:
        raise NotImplementedError

    def _verify(self, sup: Supervisor, run: TaskRun) -> None:
        """``--verify``: in the task's worktree now (``task``, or no isolation), or on the tip
        with the task's work replayed, one task at a time (``integrated``)."""
        spaces = self.options.workspaces
        if spaces is None or self.options.verify_on == "task":
            self._spawn_verify(sup, run, spaces.path_of(run.number) if spaces else self.options.cwd)
            return
        self.verify_queue.append(run.number)
        self._next_verify(sup)

    def _next_verify(self, sup: Supervisor) -> None:
        spaces = self.options.workspaces
        while spaces is not None and self.verifying is None and self.verify_queue:
            run = self.runs[self.verify_queue.popleft()]
            try:
                work = spaces.prepare(run.number, run.title)
            except Exception as exc:
                run.outcome, run.reason = "failed", f"could not collect the task's work: {exc}"
                self._settle(run)
                continue
            self._apply_work(run, work)
            if work.candidate is None:  # nothing to verify: no commits, or a conflict
                self._settle(run)
                continue
            self.verifying = run.number
            self._spawn_verify(sup, run, spaces.path_of(run.number))

    def _spawn_verify(self, sup: Supervisor, run: TaskRun, cwd: Path) -> None:
        opts = self.options
        assert opts.verify is not None
        command = executor.command_for(opts.verify, run.number)
        log_fd = os.open(run.log_path or os.devnull, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.write(log_fd, f"\n--- verify: {command} ---\n".encode())
        # Its own token: what the task left running is swept by the task's, not this one.
        token = f"{self.token}:{run.number}:verify"
        env = {**self.envs.get(run.number, {}), "BATCH_RUN_TOKEN": token}
        try:
            proc = sup.spawn(
                run.number, command, cwd=cwd, env=env, log_fd=log_fd,
                stream=opts.stream, timeout=opts.timeout, token=token,
                result_file=opts.work_dir / f"verify-{run.number}.json", stall=opts.stall_timeout,
            )  # fmt: skip
        except OSError as exc:
            os.close(log_fd)
            self._verify_failed(run, f"verify could not start: {exc.strerror or exc}")
            self._after_verify(sup, run, passed=False)
            return
        proc.role = "verify"

    def _verified(self, sup: Supervisor, run: TaskRun, proc: Proc, returncode: int) -> None:
        if proc.cancelled:
            run.outcome, run.reason = "cancelled", "interrupted during verification"
            self.submit(self._restore(run))
        elif proc.stalled or proc.timed_out or returncode != 0:
            why = (
                f"stalled: no output for {duration_text(proc.stall or 0)}" if proc.stalled
                else f"timed out after {duration_text(self.options.timeout)}" if proc.timed_out
                else exit_reason(returncode)
            )  # fmt: skip
            self._verify_failed(run, f"verify failed ({why})")
        self._after_verify(sup, run, passed=run.outcome in ("completed", "in-progress"))

    def _verify_failed(self, run: TaskRun, reason: str) -> None:
        run.outcome = "failed"
        where = "on the integrated tip" if self.options.verify_on == "integrated" else ""
        run.reason = f"{reason} {where}".strip() if self.options.workspaces else reason

    def _after_verify(self, sup: Supervisor, run: TaskRun, passed: bool) -> None:
        spaces = self.options.workspaces
        if spaces is not None and self.verifying == run.number:
            self.verifying = None
            try:
                work = spaces.accept(run.number) if passed else spaces.reject(run.number)
                self._apply_work(run, work)
            except Exception as exc:
                run.outcome, run.reason = "failed", f"could not collect the task's work: {exc}"
        elif spaces is not None:
            self._collect_work(run)
        self._settle(run)
        self._next_verify(sup)

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
            run.branch = self.options.workspaces.branches.get(run.number)
            return
        self._apply_work(run, work)

    def _apply_work(self, run: TaskRun, work: TaskWork) -> None:
        run.branch = work.branch
        run.commits += len(work.integrated) if work.candidate is None else 0
        if work.conflicts:
            run.outcome = "failed"
            run.reason = (
                "conflict in "
                + ", ".join(work.conflicts[:10])
                + (f" (kept on {work.branch})" if work.branch else "")
            )
        elif work.branch and run.outcome in ("failed", "timed-out", "cancelled"):
            run.reason = f"{run.reason or run.outcome} (work kept on {work.branch})"
        if work.todo_conflict and work.candidate is None:
            run.reason = f"{run.reason}; {work.todo_conflict}" if run.reason else work.todo_conflict
