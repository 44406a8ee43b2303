"""Progress for people (ninja-style lines, a live bar on a terminal) and for machines (JSON)."""

from __future__ import annotations

import signal
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from batchaction.selection import format_selection
from batchaction.taskrun import Reporter, TaskRun

WORDS = {
    "completed": "done",
    "in-progress": "in progress",
    "failed": "FAILED",
    "timed-out": "TIMED OUT",
    "blocked": "blocked",
    "cancelled": "cancelled",
}


def _running(numbers: Sequence[int]) -> str:
    if not numbers:
        return ""
    shown = ", ".join(map(str, numbers[:8])) + (", …" if len(numbers) > 8 else "")
    return f" | running {shown}"


def _flat(text: str | None) -> str:
    """One line: an executor's summary must not start lines of its own (``::error::...`` would
    be a workflow command on a GitHub runner, which reads them from stderr too)."""
    return " ".join((text or "").split())


class HumanReporter(Reporter):
    """``[3/8] done 63 (12.4s) | running 64, 65 | failed 1`` on every change."""

    def __init__(self, total: int, out: TextIO | None = None, live: bool | None = None) -> None:
        self.total = total
        self.out = out or sys.stderr
        self.live = self.out.isatty() if live is None else live
        self.done = 0
        self.failed = 0
        self._bar = False

    def _line(self, text: str, permanent: bool) -> None:
        if self.live:
            self.out.write("\r\x1b[K" + text + ("\n" if permanent else ""))
            self._bar = not permanent
        else:
            self.out.write(text + "\n")
        self.out.flush()

    def _tail(self, running: Sequence[int]) -> str:
        return _running(running) + (f" | failed {self.failed}" if self.failed else "")

    def task_started(self, run: TaskRun, running: Sequence[int]) -> None:
        attempt = f" (attempt {run.attempts})" if run.attempts > 1 else ""
        self._line(
            f"[{self.done}/{self.total}] start {run.number}{attempt}{self._tail(running)}",
            permanent=not self.live,
        )

    def task_finished(self, run: TaskRun, running: Sequence[int]) -> None:
        self.done += 1
        if run.outcome in ("failed", "timed-out"):
            self.failed += 1
        took = f" ({run.duration_s:.1f}s)" if run.duration_s is not None else ""
        why = f": {_flat(run.reason)}" if run.reason and run.outcome != "completed" else ""
        word = WORDS.get(run.outcome, run.outcome)
        self._line(
            f"[{self.done}/{self.total}] {word} {run.number}{took}{why}{self._tail(running)}",
            permanent=True,
        )

    def task_retry(self, run: TaskRun, delay: float) -> None:
        self._line(
            f"[{self.done}/{self.total}] retry {run.number} in {delay:.1f}s: {_flat(run.reason)}",
            permanent=True,
        )

    def output(self, number: int, line: str) -> None:
        if self._bar:
            self.out.write("\r\x1b[K")
            self._bar = False
        sys.stdout.write(f"[{number}] {line}\n")
        sys.stdout.flush()

    def interrupted(self, signum: int) -> None:
        name = signal.Signals(signum).name
        self._line(f"{name}: stopping; running tasks get the grace period", permanent=True)

    def notice(self, message: str) -> None:
        self._line(f"notice: {message}", permanent=True)


def configure_json_logging(out: TextIO | None = None) -> None:
    import structlog  # noqa: PLC0415 - only --log-format json pays for it

    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.PrintLoggerFactory(out or sys.stderr),
        cache_logger_on_first_use=False,
    )


class JsonReporter(Reporter):
    """One JSON object per event on stderr (``--log-format json``), through structlog."""

    def __init__(self) -> None:
        import structlog  # noqa: PLC0415

        self.log: Any = structlog.get_logger("batchaction")

    def task_started(self, run: TaskRun, running: Sequence[int]) -> None:
        self.log.info("task_started", task=run.number, attempt=run.attempts, running=list(running))

    def task_finished(self, run: TaskRun, running: Sequence[int]) -> None:
        self.log.info(
            "task_finished",
            task=run.number,
            outcome=run.outcome,
            duration_s=run.duration_s,
            exit_code=run.exit_code,
            reason=run.reason,
            blocked_by=run.blocked_by,
            running=list(running),
        )

    def task_retry(self, run: TaskRun, delay: float) -> None:
        self.log.warning("task_retry", task=run.number, delay_s=delay, reason=run.reason)

    def output(self, number: int, line: str) -> None:
        self.log.info("task_output", task=number, line=line)

    def interrupted(self, signum: int) -> None:
        self.log.warning("interrupted", signal=signal.Signals(signum).name)

    def plan_warning(self, message: str) -> None:
        self.log.warning("plan_warning", message=message)

    def notice(self, message: str) -> None:
        self.log.info("notice", message=message)

    def run_finished(self, summary: Mapping[str, Any]) -> None:
        self.log.info(
            "run_finished",
            result=summary["result"],
            counts=summary["counts"],
            skipped=[s["number"] for s in summary["skipped"]],
            duration_s=summary["duration_s"],
        )


def isolation_lines(summary: Mapping[str, Any]) -> list[str]:
    """Where the tasks' work went (worktree isolation): the branch, and kept branches."""
    isolation = summary.get("isolation") or {}
    lines = [f"* {isolation['message']}"] if isolation.get("message") else []
    lines += [
        f"* work of task {t['number']} ({t['outcome']}) kept on {t['branch']}"
        for t in summary["tasks"]
        if t.get("branch")
    ]
    return lines


def final_report(summary: Mapping[str, Any]) -> str:
    """A Luigi-style closing summary for the terminal."""
    tasks = summary["tasks"]
    lines = ["", "===== batchaction summary =====", ""]
    lines.append(f"Scheduled {len(tasks)} task{'s' if len(tasks) != 1 else ''} of which:")
    for outcome, label in (
        ("completed", "completed"),
        ("in-progress", "left in progress by their executor"),
        ("failed", "failed"),
        ("timed-out", "timed out"),
        ("blocked", "were blocked"),
        ("cancelled", "were cancelled"),
    ):
        numbers = [t["number"] for t in tasks if t["outcome"] == outcome]
        if numbers:
            lines.append(f"* {len(numbers)} {label}: {format_selection(numbers)}")
    if summary["skipped"]:
        lines.append(
            f"* {len(summary['skipped'])} skipped: "
            + ", ".join(f"{s['number']} ({s['reason']})" for s in summary["skipped"])
        )
    for update in summary.get("status_updates_failed") or []:
        lines.append(
            f"! status {update['status']} of {update['number']} not written: {update['error']}"
        )
    lines += isolation_lines(summary)
    verdict = {
        "success": "This run was a success :)",
        "failure": "This run failed :( (see the reasons above and the logs in "
        f"{summary['log_dir']})",
        "interrupted": f"This run was interrupted by {summary.get('interrupted_by')}",
    }[summary["result"]]
    lines += ["", verdict, ""]
    return "\n".join(lines)
