"""Worktree isolation at scale and its honest outcomes: 20 agents, ``--verify`` on the
integrated tip or in the task's worktree, ``--stall-timeout``, retries and kept branches.
Real processes (``fixtures/executors/agent.sh``), real git."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from typing import Any

import pytest
from test_isolation import AGENT, git, no_leftovers, repo, run, todo_text

__all__ = ["repo"]  # the fixture

BATCHACTION = shlex.join([sys.executable, "-m", "batchaction"])


def outcomes(summary: dict[str, object]) -> dict[int, tuple[str, str | None]]:
    tasks = summary["tasks"]
    assert isinstance(tasks, list)
    return {t["number"]: (t["outcome"], t["reason"]) for t in tasks}


def run_with(
    repo: Path, selection: str, executor: str, *extra: str, **env: str
) -> tuple[int, dict[str, Any], str]:
    """``run`` with ``exec.sh`` (committed) holding ``executor``; ``$1`` is the task number."""
    (repo / "exec.sh").write_text(f"#!/bin/sh\n{executor}\n", encoding="utf-8")
    git(repo, "commit", "-qam", "executor")
    return run(repo, selection, *extra, **env)


class TestTwentyAgents:
    def test_twenty_agents_five_wide_in_an_order_the_graph_allows(self, repo: Path) -> None:
        """20 agents at 5 wide, 6-20 each needing the task five before it (and its file):
        every task's commit is on the branch exactly once, holds only its own files, and
        comes after the commit of the task it depends on."""
        (repo / "TODO.md").write_text(todo_text(20, {n: n - 5 for n in range(6, 21)}))
        (repo / "shared.txt").write_text("".join(f"task {n}: todo\n" for n in range(1, 21)))
        git(repo, "commit", "-qam", "twenty tasks")
        start = git(repo, "rev-parse", "HEAD")
        code, summary, err = run(
            repo, "1-20", "--max-parallel", "5", AGENT_SHARED="shared.txt", AGENT_SLEEP="0.05"
        )
        assert code == 0, err
        assert {n: o for n, (o, _) in outcomes(summary).items()} == dict.fromkeys(
            range(1, 21), "completed"
        )
        subjects = git(repo, "log", "--reverse", "--format=%s", f"{start}..HEAD").splitlines()
        assert sorted(subjects) == sorted(f"task {n}: agent work" for n in range(1, 21))
        position = {int(s.split()[1].rstrip(":")): i for i, s in enumerate(subjects)}
        for n in range(6, 21):
            assert position[n - 5] < position[n], subjects
        for sha in git(repo, "rev-list", f"{start}..HEAD").split():
            n = int(git(repo, "log", "-1", "--format=%s", sha).split()[1].rstrip(":"))
            files = git(repo, "diff-tree", "--no-commit-id", "--name-only", "-r", sha).split()
            assert sorted(files) == ["shared.txt", f"work/task-{n}.txt"]
        assert (repo / "shared.txt").read_text() == "".join(
            f"task {n}: done\n" for n in range(1, 21)
        )
        no_leftovers(repo)

    def test_an_agent_sets_another_tasks_status_in_the_shared_file(self, repo: Path) -> None:
        """``batchaction status set`` inside a task's worktree edits the shared TODO file
        ($BATCH_TODO_PATH, under its lock), not the worktree's copy."""
        code, _, err = run_with(
            repo, "1", f"{BATCHACTION} status set 9 blocked --reason 'needs a key' && "
            f'exec "{AGENT}" "$1"',
        )  # fmt: skip
        assert code == 0, err
        text = (repo / "TODO.md").read_text()
        section = text.split("### 9.")[1].split("###")[0]
        assert "**Status**: [BLOCKED]" in section
        assert "needs a key" in section
        assert "**Status**: [COMPLETED]" in text.split("### 1.")[1].split("###")[0]


# Passes while at most one line of shared.txt says "done": each task alone passes, two together
# do not. With verify-on: integrated only one of them may land.
AT_MOST_ONE = 'test "$(grep -c done shared.txt)" -le 1'


class TestVerify:
    def test_on_the_integrated_tip_two_tasks_that_break_together_do_not_both_land(
        self, repo: Path
    ) -> None:
        start = git(repo, "rev-parse", "HEAD")
        code, summary, err = run(
            repo, "1-2", "--max-parallel", "2", "--verify", AT_MOST_ONE,
            AGENT_SHARED="shared.txt",
        )  # fmt: skip
        assert code == 1, err
        result = outcomes(summary)
        landed = [n for n, (o, _) in result.items() if o == "completed"]
        (failed,) = [n for n, (o, _) in result.items() if o == "failed"]
        assert len(landed) == 1
        reason = result[failed][1] or ""
        assert reason.startswith("verify failed (exit code 1) on the integrated tip"), reason
        assert f"task-{failed}" in reason
        assert git(repo, "grep", "-c", "done", "HEAD", "--", "shared.txt").endswith(":1")
        assert git(repo, "log", "--format=%s", f"{start}..HEAD").splitlines() == [
            f"task {landed[0]}: agent work"
        ]
        kept = next(t["branch"] for t in summary["tasks"] if t["number"] == failed)
        assert git(repo, "show", f"{kept}:work/task-{failed}.txt").startswith(f"task {failed}")
        assert "**Status**: [FAILED]" in (repo / "TODO.md").read_text().split(f"### {failed}.")[1]
        no_leftovers(repo)

    def test_a_dependent_of_a_task_that_failed_verification_is_blocked(self, repo: Path) -> None:
        code, summary, err = run(repo, "1,6", "--verify", "false")
        assert code == 1, err
        result = outcomes(summary)
        assert result[1][0] == "failed"
        assert result[6] == ("blocked", "blocked by failed task 1")
        assert git(repo, "log", "-1", "--format=%s") == "init"

    def test_in_the_task_worktree_it_is_blind_to_tasks_that_break_together(
        self, repo: Path
    ) -> None:
        """``verify-on: task`` checks each task's own worktree: both pass, both land."""
        code, summary, err = run(
            repo, "1-2", "--max-parallel", "2", "--verify", AT_MOST_ONE,
            "--verify-on", "task", AGENT_SHARED="shared.txt",
        )  # fmt: skip
        assert code == 0, err
        assert [o for o, _ in outcomes(summary).values()] == ["completed", "completed"]
        assert git(repo, "grep", "-c", "done", "HEAD", "--", "shared.txt").endswith(":2")

    def test_verify_sees_the_task_number_and_runs_without_isolation(self, repo: Path) -> None:
        code, summary, err = run(
            repo, "1-2", "--isolation", "none", "--verify", 'test "{number}" = 1',
            AGENT_COMMIT="0",
        )  # fmt: skip
        assert code == 1, err
        result = outcomes(summary)
        assert result[1][0] == "completed"
        assert result[2] == ("failed", "verify failed (exit code 1)")


SILENT = "echo started; sleep 30"
CHATTY = 'i=0; while [ $i -lt 12 ]; do echo "tick $i"; i=$((i + 1)); sleep 0.25; done'


class TestStallTimeout:
    @pytest.mark.parametrize("stream", ["--stream", "--no-stream"])
    def test_a_silent_task_is_stopped_as_stalled(self, repo: Path, stream: str) -> None:
        code, summary, err = run_with(repo, "1", SILENT, "--stall-timeout", "1", stream)
        assert code == 1, err
        assert outcomes(summary)[1] == ("timed-out", "stalled: no output for 1s")
        task = summary["tasks"][0]
        assert task["duration_s"] < 10  # stopped long before its sleep would have ended
        assert "**Status**: [FAILED]" in (repo / "TODO.md").read_text().split("### 1.")[1]

    @pytest.mark.parametrize("stream", ["--stream", "--no-stream"])
    def test_a_task_that_keeps_printing_is_not_stalled(self, repo: Path, stream: str) -> None:
        code, summary, err = run_with(repo, "1", CHATTY, "--stall-timeout", "1", stream)
        assert code == 0, err
        assert outcomes(summary)[1][0] == "completed"

    def test_the_overall_timeout_is_reported_apart_from_a_stall(self, repo: Path) -> None:
        code, summary, err = run_with(
            repo, "1", CHATTY, "--stall-timeout", "1", "--timeout", "1", "--no-stream"
        )
        assert code == 1, err
        assert outcomes(summary)[1] == ("timed-out", "timed out after 1s")


class TestKeptBranches:
    def test_a_retry_that_succeeds_leaves_no_branch(self, repo: Path, tmp_path: Path) -> None:
        """The failed first attempt's work is kept on a branch until the retry lands."""
        marker = tmp_path / "tried"
        executor = (
            f"if [ ! -e {shlex.quote(str(marker))} ]; then touch {shlex.quote(str(marker))}; "
            f'AGENT_FAIL="$1" exec "{AGENT}" "$1"; fi\nexec "{AGENT}" "$1"'
        )
        code, summary, err = run_with(repo, "1", executor, "--retries", "1")
        assert code == 0, err
        assert outcomes(summary)[1][0] == "completed"
        assert summary["tasks"][0]["attempts"] == 2
        assert git(repo, "branch", "--list", "batchaction/*") == ""
        assert git(repo, "log", "-1", "--format=%s") == "task 1: agent work"

    def test_a_kept_task_branch_and_the_result_branch_coexist(self, repo: Path) -> None:
        """A conflict keeps task 2 on <prefix>/task-2; a dirty work tree keeps the tip off
        main: the result branch must not collide with the task branch's name."""
        (repo / "shared.txt").write_text("my local edit\n")
        code, summary, err = run(repo, "1-2", "--max-parallel", "2", AGENT_CONFLICT="shared.txt")
        assert code == 1, err
        result_branch = summary["isolation"]["result_branch"]
        assert result_branch
        kept = [t["branch"] for t in summary["tasks"] if t["branch"]]
        assert len(kept) == 1
        branches = git(repo, "branch", "--list", "batchaction/*", "--format=%(refname:short)")
        assert sorted(branches.split()) == sorted([result_branch, *kept])
        assert (repo / "shared.txt").read_text() == "my local edit\n"
        assert os.path.exists(repo / "TODO.md")
