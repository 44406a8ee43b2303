"""The scheduler through ``batchaction run`` as a real process (SPEC 5): order, limits, signals."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import ClassVar

import pytest
from runhelpers import (
    Spec,
    Workspace,
    all_gone,
    kill_quietly,
    make_workspace,
    process_gone,
    read_exact,
    read_pids,
    status_lines,
    task_fields,
    todo_text,
    wait_for,
)

from batchaction.planner import plan
from batchaction.todo import parse_todo

# 2 fails; 3 and 5 depend on it directly, 4 through 3; 1, 6 and 7 do not depend on it.
FAILURE_DAG = [
    Spec(1),
    Spec(2),
    Spec(3, deps="Task 2"),
    Spec(4, deps="Task 3"),
    Spec(5, deps="Task 1, Task 2"),
    Spec(6),
    Spec(7, deps="Task 1"),
]


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    """A workspace with the probe executor and no TODO.md yet."""
    return make_workspace(tmp_path)


class TestFailureBlocking:
    def test_failure_blocks_exactly_the_transitive_dependents(self, ws: Workspace) -> None:
        """A failed task blocks its direct and indirect dependents; independent tasks complete."""
        ws.write(FAILURE_DAG)
        result = ws.run("1-7", env={"PROBE_EXIT_2": "3"})
        assert result.code == 1, result.err
        assert result.outcomes() == {
            1: "completed",
            2: "failed",
            3: "blocked",
            4: "blocked",
            5: "blocked",
            6: "completed",
            7: "completed",
        }
        for number in (3, 4, 5):
            task = result.tasks[number]
            assert task["blocked_by"] == [2], number
            assert task["reason"] == "blocked by failed task 2"
            assert task["attempts"] == 0
        assert set(ws.timeline().starts) == {1, 2, 6, 7}
        assert result.summary is not None
        assert result.summary["result"] == "failure"

    def test_todo_records_failure_and_blocking(self, ws: Workspace) -> None:
        """TODO.md gets [FAILED] with Failed/Failure Reason and [BLOCKED] with Blocking Reason."""
        ws.write(FAILURE_DAG)
        result = ws.run("1-7", env={"PROBE_EXIT_2": "3"})
        assert result.code == 1, result.err
        failed = result.fields(2)
        assert failed["Status"] == "[FAILED]"
        assert failed["Failed"] == failed["Started"]
        assert len(failed["Failed"]) == len("2026-01-01")
        assert failed["Failure Reason"] == "exit code 3"
        for number in (3, 4, 5):
            fields = result.fields(number)
            assert fields["Status"] == "[BLOCKED]", number
            assert fields["Blocking Reason"] == "blocked by failed task 2"
            assert "Blocked" in fields
            assert "Started" not in fields
        for number in (1, 6, 7):
            fields = result.fields(number)
            assert fields["Status"] == "[COMPLETED]", number
            assert fields["Completed"] == fields["Started"]

    def test_timed_out_task_blocks_its_dependents(self, ws: Workspace) -> None:
        """A timed-out task blocks its dependents just like a failed one."""
        ws.write([Spec(1), Spec(2, deps="Task 1"), Spec(3)])
        result = ws.run("1-3", "--timeout", "0.5", "--grace", "1", env={"PROBE_SLEEP_1": "30"})
        assert result.code == 1, result.err
        assert result.outcomes() == {1: "timed-out", 2: "blocked", 3: "completed"}
        assert result.tasks[2]["blocked_by"] == [1]
        assert result.fields(2)["Blocking Reason"] == "blocked by timed-out task 1"
        assert result.fields(1)["Failure Reason"] == "timed out after 0.5s"

    def test_fail_fast_starts_nothing_new(self, ws: Workspace) -> None:
        """With --fail-fast, tasks not started at the first failure are cancelled, not run."""
        original = ws.write([Spec(n) for n in range(1, 7)])
        env = {"PROBE_EXIT_1": "1", "PROBE_SLEEP": "0.5", "PROBE_SLEEP_1": "0"}
        result = ws.run("1-6", "--max-parallel", "2", "--fail-fast", env=env)
        assert result.code == 1, result.err
        assert sorted(ws.timeline().starts) == [1, 2]
        outcomes = result.outcomes()
        assert outcomes[1] == "failed"
        assert outcomes[2] == "completed"  # already running: it finishes
        for number in range(3, 7):
            assert outcomes[number] == "cancelled"
            assert result.tasks[number]["reason"] == "not started: --fail-fast after task 1"
            assert result.tasks[number]["attempts"] == 0
            assert status_lines(result.todo)[number] == status_lines(original)[number]

    def test_without_fail_fast_everything_independent_runs(self, ws: Workspace) -> None:
        """Without --fail-fast, the same failure leaves every independent task running."""
        ws.write([Spec(n) for n in range(1, 7)])
        env = {"PROBE_EXIT_1": "1", "PROBE_SLEEP": "0.1", "PROBE_SLEEP_1": "0"}
        result = ws.run("1-6", "--max-parallel", "2", env=env)
        assert result.code == 1, result.err
        assert sorted(ws.timeline().starts) == [1, 2, 3, 4, 5, 6]
        assert list(result.outcomes().values()).count("completed") == 5


class TestConcurrency:
    def test_limit_holds_and_is_reached(self, ws: Workspace) -> None:
        """Twelve tasks with --max-parallel 3 never run more than 3 at once, and 3 do."""
        ws.write([Spec(n) for n in range(1, 13)])
        result = ws.run("1-12", "--max-parallel", "3", env={"PROBE_SLEEP": "0.4"})
        assert result.code == 0, result.err
        timeline = ws.timeline()
        assert len(timeline.starts) == 12
        assert len(timeline.ends) == 12
        assert timeline.max_overlap() == 3
        assert set(result.outcomes().values()) == {"completed"}

    def test_longest_chain_first(self, ws: Workspace) -> None:
        """Eager scheduling starts the task with the longest remaining chain first."""
        ws.write([Spec(1), Spec(2), Spec(3, deps="Task 2"), Spec(4, deps="Task 3")])
        result = ws.run("1-4", "--max-parallel", "1")
        assert result.code == 0, result.err
        assert ws.timeline().started() == [2, 3, 1, 4]
        assert ws.timeline().max_overlap() == 1

    def test_effort_weighted_bottom_level_first(self, ws: Workspace) -> None:
        """With one slot, ready tasks start by the planner's Effort-weighted bottom level.

        A task's bottom level is its Effort plus the heaviest chain of dependents after it: the
        8-hour and 6-hour tasks (6 and 5) go before task 1 (30 minutes, heading a chain of
        four half-hour tasks: 2 hours), although 1 has the lower number and the longest chain.
        The 45-minute task 7 waits until the chain's rest weighs less than it.
        """
        efforts = {1: "30 minutes", 2: "30 minutes", 3: "30 minutes", 4: "30 minutes"}
        efforts |= {5: "6 hours", 6: "8 hours", 7: "45 minutes"}
        specs = [Spec(1), Spec(2, deps="Task 1"), Spec(3, deps="Task 2"), Spec(4, deps="Task 3")]
        text = todo_text([*specs, Spec(5), Spec(6), Spec(7)])
        for number, effort in efforts.items():
            heading = f"### {number}. Task number {number}\n- **Effort**: "
            assert heading + "1 hour\n" in text
            text = text.replace(heading + "1 hour\n", heading + effort + "\n")
        ws.todo.write_bytes(text.encode())
        the_plan = plan(parse_todo(text).tasks, list(efforts))
        levels = dict(the_plan.bottom_level)
        assert levels == {1: 2.0, 2: 1.5, 3: 1.0, 4: 0.5, 5: 6.0, 6: 8.0, 7: 0.75}
        # One slot: each time, the ready task with the highest bottom level (then the lowest
        # number) starts, and runs to its end before the next one starts.
        expected: list[int] = []
        ready = {n for n in the_plan.run if not the_plan.edges[n]}
        while ready:
            number = min(ready, key=lambda n: (-levels[n], n))
            ready.remove(number)
            expected.append(number)
            ready |= {
                n
                for n in the_plan.run
                if n not in expected and set(the_plan.edges[n]) <= set(expected)
            }
        assert expected == [6, 5, 1, 2, 3, 7, 4]

        result = ws.run("1-7", "--max-parallel", "1")
        assert result.code == 0, result.err
        assert ws.timeline().started() == expected
        assert ws.timeline().max_overlap() == 1


class TestStrategies:
    GRAPH = (Spec(1, title="Long A"), Spec(2, title="Short B"), Spec(3, deps="Task 2"))
    SLEEPS: ClassVar[dict[str, str]] = {
        "PROBE_SLEEP_1": "1.2",
        "PROBE_SLEEP_2": "0.1",
        "PROBE_SLEEP_3": "1.0",
    }

    @pytest.mark.slow
    def test_eager_beats_waves_on_an_unbalanced_graph(self, tmp_path: Path) -> None:
        """Eager starts C once B is done; waves waits for A, so eager finishes much sooner."""
        makespans: dict[str, float] = {}
        for strategy in ("eager", "waves"):
            (tmp_path / strategy).mkdir()
            ws = make_workspace(tmp_path / strategy)
            ws.write(list(self.GRAPH))
            result = ws.run("1-3", "--strategy", strategy, env=self.SLEEPS)
            assert result.code == 0, result.err
            assert result.summary is not None
            assert result.summary["strategy"] == strategy
            timeline = ws.timeline()
            assert timeline.starts[3] >= timeline.ends[2]
            if strategy == "eager":
                assert timeline.starts[3] < timeline.ends[1]
            else:
                assert timeline.starts[3] >= timeline.ends[1]
            makespans[strategy] = timeline.makespan()
        assert makespans["eager"] < makespans["waves"] - 0.4, makespans


class TestRetries:
    def test_failing_task_is_run_again_once(self, ws: Workspace) -> None:
        """--retries 1 runs a failing task twice, then records it as failed."""
        ws.write([Spec(1)])
        result = ws.run("1", "--retries", "1", env={"PROBE_EXIT_1": "4"})
        assert result.code == 1, result.err
        task = result.tasks[1]
        assert task["outcome"] == "failed"
        assert task["attempts"] == 2
        assert ws.timeline().started() == [1, 1]
        log = Path(task["log_path"]).read_text(encoding="utf-8")
        assert "--- attempt 2 ---" in log
        assert result.fields(1)["Status"] == "[FAILED]"

    def test_task_that_fails_then_succeeds_completes(self, ws: Workspace) -> None:
        """A task that fails on its first attempt and succeeds on the retry ends completed."""
        ws.write([Spec(1), Spec(2, deps="Task 1")])
        executor = "[ {number} != 1 ] || test -e tried || { touch tried; exit 1; }"
        result = ws.run("1-2", "--retries", "1", executor=executor)
        assert result.code == 0, result.err
        assert result.tasks[1]["outcome"] == "completed"
        assert result.tasks[1]["attempts"] == 2
        assert result.tasks[2]["outcome"] == "completed"
        assert result.tasks[2]["attempts"] == 1
        assert result.fields(1)["Status"] == "[COMPLETED]"
        assert "Failed" not in result.fields(1)


# Each executor records its shell's pid and its child's pid, then waits for the child.
LONG_EXECUTOR = "sleep 30 & echo $! >> {pids}; echo $$ >> {pids}; wait"
STUBBORN_EXECUTOR = 'trap "" TERM; sleep 30 & echo $! >> {pids}; echo $$ >> {pids}; wait'


def sections(text: str) -> dict[int, str]:
    """Each task's whole section (heading to the next heading), byte for byte."""
    doc = parse_todo(text)
    return {t.number: "".join(doc.lines[t.heading_line : t.end_line]) for t in doc.tasks}


class TestInterrupts:
    def _interrupt(
        self, ws: Workspace, signum: int, executor: str, *extra: str
    ) -> tuple[int, str, str, list[int]]:
        """Start a run of 1-3 (two at a time), signal it once 1 and 2 run.

        Task 1 has no Started line, task 2 an older one. Returns the exit code, the TODO text
        before and after the run, and the executors' pids.
        """
        original = ws.write(
            [
                Spec(1),
                Spec(
                    2,
                    status="[FAILED]",
                    extra=(
                        "**Started**: 2020-01-01",
                        "**Failed**: 2020-01-02",
                        "**Failure Reason**: exit code 1",
                    ),
                ),
                Spec(3, status="[BLOCKED] (waiting)"),
            ]
        )
        assert "Started" not in task_fields(original, 1)
        pids_file = ws.root / "pids"
        command = executor.format(pids=pids_file)
        proc = ws.start("1-3", "--max-parallel", "2", *extra, executor=command)
        try:

            def both_running() -> bool:
                text = read_exact(ws.todo)
                lines = status_lines(text)
                return (
                    "[IN PROGRESS]" in lines[1]
                    and "[IN PROGRESS]" in lines[2]
                    and len(read_pids(pids_file)) == 4
                )

            assert wait_for(both_running, timeout=30), ws.todo.read_text(encoding="utf-8")
            # The run wrote both Started lines: a new one for 1, today's date over 2's.
            running = read_exact(ws.todo)
            assert len(task_fields(running, 1)["Started"]) == len("2026-01-01")
            assert task_fields(running, 2)["Started"] != "2020-01-01"
            proc.send_signal(signum)
            result = ws.finish(proc, timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            kill_quietly(p for p in read_pids(pids_file) if not process_gone(p))
        pids = read_pids(pids_file)
        assert result.summary is not None, result.err
        assert result.summary["result"] == "interrupted"
        assert result.summary["interrupted_by"] == signal.Signals(signum).name
        assert result.outcomes() == {1: "cancelled", 2: "cancelled", 3: "cancelled"}
        assert result.tasks[3]["attempts"] == 0
        return result.code, original, result.todo, pids

    @pytest.mark.parametrize(
        ("signum", "code"),
        [(signal.SIGTERM, 143), (signal.SIGINT, 130), (signal.SIGHUP, 129)],
        ids=["SIGTERM", "SIGINT", "SIGHUP"],
    )
    def test_signal_restores_statuses(self, ws: Workspace, signum: int, code: int) -> None:
        """An interrupt cancels the run, puts the tasks back as they were (Status and Started
        lines: a new one removed, an older one's value back) and leaves no executor alive."""
        exit_code, before, after, pids = self._interrupt(ws, signum, LONG_EXECUTOR)
        assert exit_code == code
        assert sections(after) == sections(before)
        assert after == before
        assert len(pids) == 4
        assert all_gone(pids), pids

    def test_executor_ignoring_sigterm_is_killed_after_grace(self, ws: Workspace) -> None:
        """Executors that ignore SIGTERM are killed once the grace period ends."""
        exit_code, before, after, pids = self._interrupt(
            ws, signal.SIGTERM, STUBBORN_EXECUTOR, "--grace", "1"
        )
        assert exit_code == 143
        assert sections(after) == sections(before)
        assert after == before
        assert len(pids) == 4
        assert all_gone(pids), pids

    def test_interrupt_during_retry_backoff_restores_status(self, ws: Workspace) -> None:
        """A task waiting for its retry when the run is interrupted gets its old status back."""
        original = ws.write([Spec(1, status="[PLANNED]"), Spec(2)])
        proc = ws.start("1-2", "--retries", "1", env={"PROBE_EXIT_1": "1", "PROBE_SLEEP_2": "30"})
        try:

            def first_attempt_over() -> bool:
                return ("end", 1) in [(kind, n) for kind, n, _ in ws.timeline().events]

            assert wait_for(first_attempt_over, timeout=30)
            proc.send_signal(signal.SIGTERM)
            result = ws.finish(proc, timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert result.code == 143, result.err
        assert result.tasks[1]["attempts"] == 1  # interrupted between the attempts
        assert result.outcomes() == {1: "cancelled", 2: "cancelled"}
        assert sections(result.todo) == sections(original)
        assert result.todo == original
