"""Process supervision: executors under their supervisors, their output, deadlines and signals.

Each executor is ``/bin/sh -c`` leading a process group of its own under a per-task supervisor
(``subreaper.py``, started by ``executor.spawn`` in a session of its own), a child subreaper
that outlives it until every process of the task is gone, and exits as it did. The
supervisor's exit is watched through a pidfd and the output through a pipe, both in the
scheduler's ``selectors`` loop; output goes to the task's log file, whole lines to the
reporter. A timeout or an interrupt sends SIGTERM to the supervisor, which forwards it to the
executor's group; when the grace period is over, the supervisor is asked to SIGKILL everything
(``executor.request_kill``), and is killed itself if it does not end. What the executor left
running (``setsid`` daemons, double forks: strays) the supervisor stops before it exits, and
names in its report. Should a supervisor die before its task's processes (killed by its own
task), its executor's group lingers until it is empty or its grace is over, and the processes
that carry the task's ``BATCH_RUN_TOKEN`` are found in ``/proc`` and stopped like it.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batchaction import executor
from batchaction.subreaper import read_report

INTERRUPTS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
SWEEP_EVERY = 0.2  # seconds between two reads of /proc for strays (one read serves many tasks)
KILL_WAIT = 5.0  # seconds a supervisor gets to end after it was asked to kill its task


@dataclass
class Proc:
    """One running executor."""

    number: int
    popen: subprocess.Popen[bytes]
    pidfd: int
    pgid: int
    started: float
    deadline: float
    log_fd: int
    result_file: Path
    report_fd: int = -1  # where the supervisor writes its report (subreaper.py)
    token: str = ""
    pipe: int | None = None
    partial: bytes = b""
    timed_out: bool = False
    cancelled: bool = False
    kill_at: float | None = None
    stall: float | None = None  # seconds without output after which it is stopped
    active_at: float = 0.0  # when output was last seen
    watched_at: float = 0.0  # when the log file's size was last looked at (no pipe)
    log_size: int = 0
    stalled: bool = False
    role: str = "task"  # or "verify": the --verify command run for the task
    kill_requested: bool = False  # the supervisor was asked to SIGKILL the task
    strays: list[dict[str, Any]] = field(default_factory=list)  # {"pid", "command"}, killed

    def stall_check(self) -> float | None:
        """When its silence is next looked at: the stall deadline, or (output going straight
        to the log file, which grows unseen) a quarter of the stall timeout after the last
        look, so a stall is caught between 1 and 1.25 stall timeouts of silence."""
        if self.stall is None or self.kill_at is not None:
            return None
        due = self.active_at + self.stall
        if self.pipe is None:
            due = min(due, self.watched_at + max(self.stall / 4, 0.25))
        return due


@dataclass
class Lingering:
    pgid: int
    kill_at: float


class Supervisor:
    """The running executors of one run. ``on_line(number, text)`` receives output lines."""

    def __init__(
        self, selector: selectors.BaseSelector, grace: float, on_line: Callable[[int, str], None]
    ) -> None:
        self.selector = selector
        self.grace = grace
        self.on_line = on_line
        self.procs: dict[int, Proc] = {}  # by pidfd
        self.lingering: list[Lingering] = []
        self.sweep: list[str] = []  # tokens of ended tasks whose strays are still to be found
        self.last_sweep = 0.0

    def running(self) -> list[int]:
        return sorted(p.number for p in self.procs.values())

    def spawn(
        self,
        number: int,
        command: str,
        *,
        cwd: Path,
        env: Mapping[str, str],
        log_fd: int,
        stream: bool,
        timeout: float,
        result_file: Path,
        token: str = "",
        stall: float | None = None,
    ) -> Proc:
        """Start an executor and watch it; ``timeout`` and ``stall`` (no output for that
        long) in seconds. Raises OSError when it cannot be started."""
        report_fd = os.memfd_create("batchaction-task-report")
        try:
            popen = executor.spawn(
                command, cwd=cwd, env=env, log=log_fd, stream=stream, grace=self.grace,
                report=report_fd,
            )  # fmt: skip
        except BaseException:
            os.close(report_fd)
            raise
        now = time.monotonic()
        pidfd = os.pidfd_open(popen.pid)
        proc = Proc(
            number=number,
            popen=popen,
            pidfd=pidfd,
            pgid=popen.pid,
            started=now,
            deadline=now + timeout,
            log_fd=log_fd,
            result_file=result_file,
            report_fd=report_fd,
            token=token,
            stall=stall,
            active_at=now,
            watched_at=now,
            log_size=os.fstat(log_fd).st_size,
        )
        self.procs[pidfd] = proc
        self.selector.register(pidfd, selectors.EVENT_READ, ("exit", proc))
        if popen.stdout is not None:
            proc.pipe = popen.stdout.fileno()
            os.set_blocking(proc.pipe, False)
            self.selector.register(proc.pipe, selectors.EVENT_READ, ("out", proc))
        return proc

    def pump(self, proc: Proc, final: bool = False) -> None:
        """Move output from the pipe to the log file, passing on whole lines."""
        assert proc.pipe is not None
        while True:
            try:
                chunk = os.read(proc.pipe, 65536)
            except BlockingIOError:
                break
            if not chunk:
                self._close_pipe(proc)
                final = True  # end of output: a last line without a newline is passed on too
                break
            os.write(proc.log_fd, chunk)
            proc.active_at = time.monotonic()
            data = proc.partial + chunk
            *complete, proc.partial = data.split(b"\n")
            for line in complete:
                self.on_line(proc.number, line.decode("utf-8", "replace"))
            if len(proc.partial) > 65536:
                self.on_line(proc.number, proc.partial.decode("utf-8", "replace"))
                proc.partial = b""
            if not final:
                break
        if final and proc.partial:
            self.on_line(proc.number, proc.partial.decode("utf-8", "replace"))
            proc.partial = b""

    def _close_pipe(self, proc: Proc) -> None:
        if proc.pipe is not None:
            self.selector.unregister(proc.pipe)
            if proc.popen.stdout is not None:
                proc.popen.stdout.close()
            proc.pipe = None

    def reap(self, proc: Proc) -> int:
        """The exit of ``proc``'s supervisor: drain the output, close the fds, read its report
        (``proc.strays``). Returns the executor's exit code (negative: the signal that killed
        it); the supervisor's own when it died before reporting it. Only then may processes of
        the task be left: they linger (SIGTERM now, SIGKILL when the grace is over)."""
        returncode = proc.popen.wait()
        self.selector.unregister(proc.pidfd)
        os.close(proc.pidfd)
        del self.procs[proc.pidfd]
        if proc.pipe is not None:
            self.pump(proc, final=True)
            self._close_pipe(proc)
        os.close(proc.log_fd)
        report = read_report(proc.report_fd)
        os.close(proc.report_fd)
        proc.strays = report.strays
        if report.returncode is not None:
            return report.returncode
        # The report is writable by the task (its supervisor runs as the executor's user): a
        # group it names is signalled only when it is in the supervisor's session.
        named = (
            report.executor if report.executor and _in_session(report.executor, proc.pgid) else None
        )
        for pgid in {proc.pgid, named or proc.pgid}:
            if executor.group_alive(pgid):
                executor.terminate_group(pgid)
                # The grace period that began with a timeout or interrupt goes on; it is not
                # granted twice.
                full = time.monotonic() + self.grace
                kill_at = full if proc.kill_at is None else min(proc.kill_at, full)
                self.lingering.append(Lingering(pgid, kill_at))
        if proc.token:
            self.sweep.append(proc.token)
        return returncode

    def sweep_strays(self, prefix: str | None = None) -> int:
        """Stop the processes of ended tasks that escaped their group (``setsid``): SIGTERM
        now, SIGKILL when the grace is over. ``prefix`` sweeps every token that starts with it
        (the end of the run). Returns how many were found."""
        if not self.sweep and prefix is None:
            return 0
        wanted = [f"BATCH_RUN_TOKEN={t}\0".encode() for t in self.sweep]
        self.sweep = []
        self.last_sweep = time.monotonic()
        marker = f"BATCH_RUN_TOKEN={prefix}".encode() if prefix is not None else None
        own = {os.getpid(), os.getpgrp()}
        found = 0
        for pid in _pids():
            if pid in own:
                continue
            try:
                environ = Path(f"/proc/{pid}/environ").read_bytes()
                pgid = os.getpgid(pid)
            except (OSError, ProcessLookupError):
                continue
            if not (any(w in environ for w in wanted) or (marker and marker in environ)):
                continue
            if pgid in own:
                continue
            found += 1
            executor.terminate_group(pgid)
            kill_at = time.monotonic() + self.grace
            if not any(linger.pgid == pgid for linger in self.lingering):
                self.lingering.append(Lingering(pgid, kill_at))
        return found

    def moments(self) -> list[float]:
        """When something is due: a deadline, a SIGKILL after the grace period."""
        found = [p.kill_at if p.kill_at is not None else p.deadline for p in self.procs.values()]
        found += [due for p in self.procs.values() if (due := p.stall_check()) is not None]
        if self.sweep:
            found.append(self.last_sweep + SWEEP_EVERY)
        return found + [linger.kill_at for linger in self.lingering]

    def sweep_due(self, now: float) -> bool:
        """Strays to look for, and the last look long enough ago: /proc is read at most every
        SWEEP_EVERY seconds, not once per finished task (500 short tasks would pay 500 reads)."""
        return bool(self.sweep) and now - self.last_sweep >= SWEEP_EVERY

    def check_deadlines(self, now: float) -> None:
        for proc in list(self.procs.values()):
            if proc.kill_at is not None and now >= proc.kill_at:
                self._kill(proc, now)
            elif proc.kill_at is None and now >= proc.deadline:
                proc.timed_out = True
                executor.terminate_group(proc.pgid)
                proc.kill_at = now + self.grace
            elif self._silent(proc, now):
                proc.stalled = True
                executor.terminate_group(proc.pgid)
                proc.kill_at = now + self.grace
        still: list[Lingering] = []
        for linger in self.lingering:
            if not executor.group_alive(linger.pgid):
                continue
            if now >= linger.kill_at:
                executor.kill_group(linger.pgid)
                linger.kill_at = now + 0.05
            still.append(linger)
        self.lingering = still

    def _silent(self, proc: Proc, now: float) -> bool:
        """Whether ``proc`` has printed nothing for its stall timeout (None: no such limit)."""
        due = proc.stall_check()
        if due is None or now < due:
            return False
        if proc.pipe is None:  # its output goes straight to the log file: has it grown?
            proc.watched_at = now
            try:
                size = os.fstat(proc.log_fd).st_size
            except OSError:
                return False
            if size != proc.log_size:
                proc.log_size, proc.active_at = size, now
                return False
        assert proc.stall is not None
        return now >= proc.active_at + proc.stall

    def cancel_all(self) -> None:
        """An interrupt: every running group gets SIGTERM and the grace period."""
        now = time.monotonic()
        for proc in self.procs.values():
            proc.cancelled = True
            executor.terminate_group(proc.pgid)
            proc.kill_at = min(proc.kill_at or now + self.grace, now + self.grace)

    def kill_now(self) -> None:
        """A second Ctrl-C: no more grace, for running tasks and lingering groups."""
        now = time.monotonic()
        for proc in self.procs.values():
            if not proc.kill_requested:
                self._kill(proc, now)
        for linger in self.lingering:
            executor.kill_group(linger.pgid)

    def _kill(self, proc: Proc, now: float) -> None:
        """Ask the supervisor to SIGKILL its task; if it is still there KILL_WAIT seconds later,
        SIGKILL it and its executor's group (what is left is swept as lingering)."""
        if not proc.kill_requested:
            proc.kill_requested = True
            executor.request_kill(proc.pgid)
            proc.kill_at = now + KILL_WAIT
            return
        executor.kill_group(proc.pgid)
        report = read_report(proc.report_fd)
        if report.executor is not None:
            executor.kill_group(report.executor)
        proc.kill_at = now + 3600  # killed; wait for the exit event

    def kill_everything(self, hurry: Callable[[], bool], token_prefix: str | None = None) -> None:
        """Nothing we started outlives the run."""
        for proc in self.procs.values():
            if not proc.kill_requested:
                self._kill(proc, time.monotonic())
        due = time.monotonic() + KILL_WAIT  # one wait for all of them, not one each
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(timeout=max(0.0, due - time.monotonic()))
            if proc.popen.poll() is None:
                self._kill(proc, time.monotonic())
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.popen.wait(timeout=5)
            with contextlib.suppress(OSError):
                os.close(proc.report_fd)
        if token_prefix is not None:
            self.sweep_strays(token_prefix)
        for linger in self.lingering:
            # The grace period each group got when it was sent SIGTERM, not a new one.
            while executor.group_alive(linger.pgid) and time.monotonic() < linger.kill_at:
                if hurry():
                    break
                time.sleep(0.02)
            executor.kill_group(linger.pgid)
            executor.reap_group(linger.pgid)


def _pids() -> list[int]:
    try:
        return [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return []


def install_handlers(handler: Callable[[int, Any], None]) -> dict[int, Any]:
    """Install ``handler`` for SIGINT, SIGTERM and SIGHUP; returns the previous handlers."""
    previous: dict[int, Any] = {}
    for signum in INTERRUPTS:
        with contextlib.suppress(ValueError):  # not the main thread
            previous[signum] = signal.signal(signum, handler)
    return previous


def exit_reason(returncode: int) -> str:
    """``exit code 3`` or ``killed by SIGKILL``."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"killed by {name}"
    return f"exit code {returncode}"


def _in_session(pgid: int, session: int) -> bool:
    """Whether the process ``pgid`` (a group's leader) belongs to the session ``session``."""
    try:
        return os.getsid(pgid) == session
    except OSError:
        return False
