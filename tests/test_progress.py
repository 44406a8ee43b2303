"""Progress output of ``batchaction run`` as a real process (README "Output", SPEC 7).

Console: one ninja-style line per change on stderr (``[3/8] done 63 (12.4s) | running 64, 65 |
failed 1``), then a Luigi-style closing summary. ``--log-format json``: one JSON object per
line on stderr and nothing else.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import pty
import re
import select
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli
from runhelpers import Spec, clean_env, todo_text

RunCli = Callable[..., tuple[int, str, str]]

# 1 and 4 complete, 2 fails (exit 3), 3 is blocked by 2 and 5 by 3; 6 is not in the file.
SPECS = [
    Spec(1),
    Spec(2),
    Spec(3, deps="Task 2"),
    Spec(4, deps="Task 1"),
    Spec(5, deps="Task 3"),
]
SELECTION = "1-6"
EXECUTOR = "case {number} in 2) exit 3 ;; *) true ;; esac"
BATCHACTION = (sys.executable, "-m", "batchaction")
TOTAL = 5  # tasks that run or are blocked; the skipped 6 is not counted

PROGRESS = re.compile(
    r"\[(?P<done>\d+)/(?P<total>\d+)\] "
    r"(?P<word>start|done|in progress|FAILED|TIMED OUT|blocked|cancelled|retry) "
    r"(?P<number>\d+)"
    r"(?P<attempt> \(attempt \d+\))?"
    r"(?: in \d+\.\ds)?"
    r"(?P<took> \(\d+\.\ds\))?"
    r"(?:: (?P<why>.*?))?"
    r"(?: \| running (?P<running>\d+(?:, \d+)*))?"
    r"(?: \| failed (?P<failed>\d+))?"
)


@dataclass(frozen=True)
class Line:
    done: int
    total: int
    word: str
    number: int
    why: str | None
    running: tuple[int, ...]
    failed: int

    @classmethod
    def parse(cls, text: str) -> Line:
        match = PROGRESS.fullmatch(text)
        assert match is not None, f"not a progress line: {text!r}"
        return cls(
            done=int(match["done"]),
            total=int(match["total"]),
            word=match["word"],
            number=int(match["number"]),
            why=match["why"],
            running=tuple(int(n) for n in (match["running"] or "").split(", ") if n),
            failed=int(match["failed"] or 0),
        )


def write_todo(base: Path, specs: list[Spec] = SPECS) -> None:
    (base / "TODO.md").write_text(todo_text(specs), encoding="utf-8")


def run(cli: RunCli, base: Path, *extra: str, executor: str = EXECUTOR) -> tuple[int, str, str]:
    return cli(
        "run",
        SELECTION,
        "--executor",
        executor,
        "--log-dir",
        base / "logs",
        "--max-parallel",
        "2",
        *extra,
        cwd=base,
    )


def progress_lines(err: str) -> list[Line]:
    return [Line.parse(line) for line in err.splitlines() if line.startswith("[")]


def closing_summary(err: str) -> list[str]:
    head = "===== batchaction summary ====="
    assert err.count(head) == 1, err
    return err.split(head, 1)[1].strip("\n").splitlines()


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str, str]:
    """One console run of SPECS (the ``cli`` fixture is function-scoped: run_cli directly)."""
    base = tmp_path_factory.mktemp("progress")
    write_todo(base)
    return run(run_cli, base, "--no-stream")


class TestConsoleProgress:
    def test_exit_code_and_streams(self, result: tuple[int, str, str]) -> None:
        """A failure exits 1; with --no-stream nothing goes to stdout, and no traceback."""
        code, out, err = result
        assert code == 1, err
        assert out == ""
        assert "Traceback" not in err

    def test_every_change_is_a_ninja_line(self, result: tuple[int, str, str]) -> None:
        """Stderr holds the plan warning, the progress lines, then the closing summary:
        every line before the summary parses as ``[done/total] word N ...``."""
        _, _, err = result
        before = err.split("===== batchaction summary =====", 1)[0].strip("\n").splitlines()
        assert before[0] == "warning: task 6 is not in TODO.md: skipped"
        assert before[1] == "notice: not a git repository with a commit: tasks share the work tree"
        lines = [Line.parse(text) for text in before[2:]]
        assert len(lines) == 3 + TOTAL  # three starts, five finishes
        assert all(line.total == TOTAL for line in lines)

    def test_counts_only_grow_and_end_at_total(self, result: tuple[int, str, str]) -> None:
        """The done count never goes down, rises by one per finished task, and ends at N/N."""
        lines = progress_lines(result[2])
        counts = [line.done for line in lines]
        assert counts == sorted(counts)
        assert counts[0] == 0
        assert (lines[-1].done, lines[-1].total) == (TOTAL, TOTAL)
        finished = [line for line in lines if line.word != "start"]
        assert [line.done for line in finished] == list(range(1, TOTAL + 1))
        starts = [line for line in lines if line.word == "start"]
        assert all(line.number in line.running for line in starts)
        assert all(line.number not in line.running for line in finished)

    def test_each_task_reports_its_outcome(self, result: tuple[int, str, str]) -> None:
        """Completed, failed and blocked tasks get their word once; blocked ones never start
        and name the failure; a dependent starts only after its dependency is done."""
        lines = progress_lines(result[2])
        words = {(line.word, line.number) for line in lines}
        assert sorted(n for w, n in words if w == "start") == [1, 2, 4]
        outcome = {line.number: line.word for line in lines if line.word != "start"}
        assert outcome == {1: "done", 2: "FAILED", 3: "blocked", 4: "done", 5: "blocked"}
        by_key = {(line.word, line.number): i for i, line in enumerate(lines)}
        assert by_key[("done", 1)] < by_key[("start", 4)]
        assert by_key[("FAILED", 2)] < by_key[("blocked", 3)] < by_key[("blocked", 5)]
        reasons = {line.number: line.why for line in lines if line.word != "start"}
        assert reasons[2] == "exit code 3"
        assert reasons[3] == "blocked by failed task 2"
        assert reasons[5] == "blocked by failed task 2"
        assert reasons[1] is None
        assert reasons[4] is None

    def test_failed_tail_appears_after_the_failure(self, result: tuple[int, str, str]) -> None:
        """``| failed 1`` is on every line from the failure on, and on none before it."""
        lines = progress_lines(result[2])
        first = next(i for i, line in enumerate(lines) if line.word == "FAILED")
        assert [line.failed for line in lines] == [0] * first + [1] * (len(lines) - first)

    def test_closing_summary(self, result: tuple[int, str, str]) -> None:
        """The Luigi-style summary lists completed, failed, blocked and skipped tasks."""
        lines = closing_summary(result[2])
        assert lines[:6] == [
            "Scheduled 5 tasks of which:",
            "* 2 completed: 1, 4",
            "* 1 failed: 2",
            "* 2 were blocked: 3, 5",
            "* 1 skipped: 6 (not-found)",
            "",
        ]
        assert re.fullmatch(
            r"This run failed :\( \(see the reasons above and the logs in /\S+/logs\)", lines[6]
        ), lines[6]
        assert len(lines) == 7


def test_success_summary_and_no_failed_tail(cli: RunCli, tmp_path: Path) -> None:
    """When everything completes, no line carries ``| failed``, the count ends at N/N and
    the summary says success (exit 0)."""
    write_todo(tmp_path)
    code, out, err = run(cli, tmp_path, "--no-stream", executor="true")
    assert (code, out) == (0, ""), err
    lines = progress_lines(err)
    assert all(line.failed == 0 for line in lines)
    assert (lines[-1].done, lines[-1].total) == (TOTAL, TOTAL)
    assert sorted(line.number for line in lines if line.word == "done") == [1, 2, 3, 4, 5]
    summary = closing_summary(err)
    assert "* 5 completed: 1-5" in summary
    assert not any("failed" in line or "blocked" in line for line in summary)
    assert "This run was a success :)" in summary


def test_retry_does_not_count_as_done(cli: RunCli, tmp_path: Path) -> None:
    """A retried task reports ``retry`` and ``(attempt 2)`` without moving the done count."""
    write_todo(tmp_path, [Spec(2)])
    code, _, err = cli(
        "run",
        "2",
        "--executor",
        "exit 3",
        "--retries",
        "1",
        "--no-stream",
        "--log-dir",
        tmp_path / "logs",
        cwd=tmp_path,
    )
    assert code == 1, err
    raw = [text for text in err.splitlines() if text.startswith("[")]
    assert raw == [
        "[0/1] start 2 | running 2",
        "[0/1] retry 2 in 1.0s: exit code 3",
        "[0/1] start 2 (attempt 2) | running 2",
        raw[3],
    ]
    assert re.fullmatch(r"\[1/1\] FAILED 2 \(\d+\.\ds\): exit code 3 \| failed 1", raw[3])


# Runs batchaction with a selector that lets every ready event pile up and reports process
# exits (pidfds) before the rest: an order the kernel is free to use, made certain here.
EXITS_FIRST = """
import os, runpy, selectors, time

def is_pidfd(fd):
    try:
        return os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:[pidfd]"
    except OSError:
        return False

real_select = selectors.DefaultSelector.select

def select(self, timeout=None):
    time.sleep(0.05)
    return sorted(real_select(self, timeout), key=lambda event: not is_pidfd(event[0].fd))

selectors.DefaultSelector.select = select
runpy.run_module("batchaction", run_name="__main__", alter_sys=True)
"""


def test_stream_survives_exit_and_output_together(tmp_path: Path) -> None:
    """``--stream``: a task's exit and the end of its output can be reported in the same
    wake-up, exit first; the run must still end cleanly with all of the output echoed.

    (Handling the exit closed the pipe and the output event then crashed the run with an
    AssertionError traceback: no summary, running tasks killed. Quick ``--stream`` runs hit
    it by themselves too, in up to three runs out of four depending on the machine's load.)
    """
    write_todo(tmp_path, [Spec(1), Spec(2)])
    bootstrap = tmp_path / "exits_first.py"
    bootstrap.write_text(EXITS_FIRST, encoding="utf-8")
    proc = subprocess.run(
        [
            *(sys.executable, bootstrap, "run", "1-2", "--executor", "echo hi {number}"),
            *("--stream", "--max-parallel", "1", "--log-dir", tmp_path / "logs"),
        ],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    assert (proc.returncode, proc.stdout) == (0, "[1] hi 1\n[2] hi 2\n"), proc.stderr
    assert "* 2 completed: 1-2" in proc.stderr


def test_live_line_on_a_terminal(tmp_path: Path) -> None:
    """With stderr on a terminal, start lines are a live line rewritten in place (``\\r`` and
    erase-line, no newline) and each finish is a permanent line."""
    write_todo(tmp_path, [Spec(1), Spec(2, deps="Task 1")])
    primary, secondary = pty.openpty()
    try:
        proc = subprocess.Popen(
            [
                *BATCHACTION,
                *("run", "1-2", "--executor", "true", "--no-stream"),
                *("--log-dir", str(tmp_path / "logs")),
            ],
            cwd=tmp_path,
            env=clean_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=secondary,
        )
        os.close(secondary)
        secondary = -1
        chunks: list[bytes] = []
        while True:
            ready, _, _ = select.select([primary], [], [], 60)
            assert ready, "no output from the run within 60 s"
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # EIO: the terminal's other end is closed
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert proc.stdout is not None
        out = proc.stdout.read()
        proc.stdout.close()
        assert proc.wait(timeout=60) == 0
    finally:
        os.close(primary)
        if secondary != -1:
            os.close(secondary)
    assert out == b""
    text = b"".join(chunks).decode("utf-8").replace("\r\n", "\n")
    erase = "\r\x1b[K"
    notice = erase + "notice: not a git repository with a commit: tasks share the work tree\n"
    assert text.startswith(notice)
    text = text.removeprefix(notice)
    assert text.startswith(erase + "[0/2] start 1 | running 1" + erase + "[1/2] done 1 (")
    assert erase + "[1/2] start 2 | running 2" + erase + "[2/2] done 2 (" in text
    assert "\n===== batchaction summary =====\n" in text
    # Every start is overwritten, never left on a line of its own.
    assert not re.search(r"start \d+[^\r\n]*\n", text)


class TestJsonLog:
    @staticmethod
    def events(err: str) -> list[dict[str, Any]]:
        """Every stderr line as a JSON object (fails on any line that is not one)."""
        assert err.endswith("\n"), err
        events: list[dict[str, Any]] = []
        for text in err.splitlines():
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                pytest.fail(f"not a JSON line on stderr: {text!r}")
            assert isinstance(value, dict), text
            events.append(value)
        return events

    def test_every_line_is_a_json_event(self, cli: RunCli, tmp_path: Path) -> None:
        """``--log-format json``: only JSON objects on stderr, each with event, level and an
        ISO timestamp; a start and a finish for every task that ran, a finish for the
        blocked ones; none of the console lines or the closing summary."""
        write_todo(tmp_path)
        code, out, err = run(cli, tmp_path, "--no-stream", "--log-format", "json")
        assert (code, out) == (1, "")
        events = self.events(err)
        for event in events:
            assert event["level"] in ("info", "warning")
            assert dt.datetime.fromisoformat(event["timestamp"]).tzinfo is not None
        assert {"task_started", "task_finished"} <= {e["event"] for e in events}
        started = [e["task"] for e in events if e["event"] == "task_started"]
        finished = {e["task"]: e for e in events if e["event"] == "task_finished"}
        assert sorted(started) == [1, 2, 4]
        assert len(finished) == TOTAL
        assert {n: e["outcome"] for n, e in finished.items()} == {
            1: "completed",
            2: "failed",
            3: "blocked",
            4: "completed",
            5: "blocked",
        }
        assert finished[2]["exit_code"] == 3
        assert finished[2]["reason"] == "exit code 3"
        assert finished[3]["blocked_by"] == [2]
        assert finished[5]["blocked_by"] == [2]
        order = [(e["event"], e["task"]) for e in events if "task" in e]
        for number in started:
            assert order.index(("task_started", number)) < order.index(("task_finished", number))
        assert order.index(("task_finished", 1)) < order.index(("task_started", 4))
        assert "=====" not in err
        assert not re.search(r"^\[\d+/\d+\]", err, re.M)
        last = events[-1]
        assert last["event"] == "run_finished"
        assert last["result"] == "failure"
        assert (last["counts"]["completed"], last["counts"]["failed"]) == (2, 1)
        assert last["counts"]["blocked"] == 2

    def test_plan_warnings_are_events_too(self, cli: RunCli, tmp_path: Path) -> None:
        """A task not in the file is a ``plan_warning`` event before any task starts."""
        write_todo(tmp_path)
        code, out, err = cli(
            "run", "1, 99", "--executor", "true", "--log-format", "json", cwd=tmp_path
        )
        assert (code, out) == (0, ""), err
        events = self.events(err)
        warnings = [e for e in events if e["event"] == "plan_warning"]
        assert len(warnings) == 1
        assert "99" in warnings[0]["message"]
        assert events.index(warnings[0]) < next(
            i for i, e in enumerate(events) if e["event"] == "task_started"
        )
        assert events[-1]["event"] == "run_finished"
        assert events[-1]["skipped"] == [99]

    def test_output_and_retries_stay_json(self, cli: RunCli, tmp_path: Path) -> None:
        """With --stream, task output (quotes, backslashes, braces, stderr too) becomes
        ``task_output`` events and a retry a ``task_retry`` warning; stdout stays empty."""
        write_todo(tmp_path, [Spec(1), Spec(2)])
        # The executor closes its output a moment before it exits, so that the end of its
        # output and its exit never reach the scheduler together: that race is the business
        # of test_stream_survives_exit_and_output_together.
        executor = (
            "printf '%s\\n' 'say \"hi\" \\ {x}'; echo 'to stderr' >&2; "
            "exec >/dev/null 2>&1; sleep 0.1; [ {number} = 1 ] || exit 3"
        )
        code, out, err = cli(
            "run",
            "1-2",
            "--executor",
            executor,
            "--stream",
            "--retries",
            "1",
            "--log-format",
            "json",
            "--log-dir",
            tmp_path / "logs",
            cwd=tmp_path,
        )
        assert (code, out) == (1, ""), err
        events = self.events(err)
        output = [(e["task"], e["line"]) for e in events if e["event"] == "task_output"]
        for number, attempts in ((1, 1), (2, 2)):
            assert output.count((number, 'say "hi" \\ {x}')) == attempts, output
            assert output.count((number, "to stderr")) == attempts, output
        (retry,) = [e for e in events if e["event"] == "task_retry"]
        assert (retry["task"], retry["level"], retry["reason"]) == (2, "warning", "exit code 3")
        starts = [(e["task"], e["attempt"]) for e in events if e["event"] == "task_started"]
        assert sorted(starts) == [(1, 1), (2, 1), (2, 2)]
        finishes = [(e["task"], e["outcome"]) for e in events if e["event"] == "task_finished"]
        assert sorted(finishes) == [(1, "completed"), (2, "failed")]
