"""Tasks that attack the run from their worktree: they move batchaction's private ref, plant
hooks in the shared git directory, leave files that fake a passing check, print escape
sequences; and a run killed after integrating work. Real processes, real git."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from runhelpers import wait_for
from test_isolation import AGENT, BATCHACTION, git, no_leftovers, repo, run
from test_worktree_outcomes import outcomes, run_with

from batchaction.inert import inert

__all__ = ["repo"]  # the fixture

COMMON = "common=$(git rev-parse --git-common-dir)"


def test_a_task_that_moves_the_private_ref_stops_nothing(repo: Path) -> None:
    """Task 1 points refs/batchaction/<run>/tip at a commit of its own: the run goes on from
    the tip it holds, every task lands once, the planted commit nowhere."""
    planted = (
        f"{COMMON}; echo planted > planted.txt; git add planted.txt; "
        "git -c user.name=x -c user.email=x@y commit -qm planted; "
        'git for-each-ref --format="%(refname)" refs/batchaction | '
        'while read -r ref; do git update-ref "$ref" HEAD; done; git reset -q --hard HEAD^'
    )
    executor = f'if [ "$1" = 1 ]; then {planted}; fi; exec "{AGENT}" "$1"'
    start = git(repo, "rev-parse", "HEAD")
    code, summary, err = run_with(repo, "1-4", executor, "--max-parallel", "2")
    assert code == 0, err
    assert {n: o for n, (o, _) in outcomes(summary).items()} == dict.fromkeys(
        range(1, 5), "completed"
    )
    subjects = git(repo, "log", "--format=%s", f"{start}..HEAD").splitlines()
    assert sorted(subjects) == ["executor"] + [f"task {n}: agent work" for n in range(1, 5)]
    assert "planted.txt" not in git(repo, "ls-tree", "-r", "--name-only", "HEAD")
    no_leftovers(repo)


def test_hooks_a_task_plants_never_run_in_batchactions_own_git(repo: Path, tmp_path: Path) -> None:
    """Task 1 installs post-checkout and reference-transaction hooks in the shared git
    directory; batchaction's own checkouts and ref updates for tasks 2 and 3 run neither."""
    marker = tmp_path / "hook-ran"
    hook = f'#!/bin/sh\necho "$0" >> {marker}\n'
    (tmp_path / "hook").write_text(hook)
    plant = (
        f"{COMMON}; for h in post-checkout reference-transaction; do "
        f'cp {tmp_path / "hook"} "$common/hooks/$h"; chmod +x "$common/hooks/$h"; done'
    )
    executor = f'if [ "$1" = 1 ]; then {plant}; fi; AGENT_COMMIT=0 exec "{AGENT}" "$1"'
    code, summary, err = run_with(repo, "1,4,5", executor, "--max-parallel", "1")
    assert code == 0, err
    assert [o for o, _ in outcomes(summary).values()] == ["completed"] * 3
    assert not marker.exists(), marker.read_text()


def test_verify_runs_on_a_clean_checkout_of_the_candidate(repo: Path) -> None:
    """A task leaves an ignored file the check looks for: on the candidate it is gone, so
    the check fails as it would on the branch."""
    (repo / ".gitignore").write_text("build/\n")
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-qm", "ignore build")
    executor = f'mkdir -p build && touch build/ok && exec "{AGENT}" "$1"'
    code, summary, err = run_with(repo, "1", executor, "--verify", "test -e build/ok")
    assert code == 1, err
    assert outcomes(summary)[1][1] == (
        "verify failed (exit code 1) on the integrated tip (work kept on "
        f"{summary['tasks'][0]['branch']})"
    )


def test_escape_sequences_in_an_executor_summary_reach_nothing(repo: Path) -> None:
    executor = (
        'printf \'{"status": "failed", "summary": "\\\\u001b[31mred\\\\u001b[0m '
        '\\\\u001b]0;title\\\\u0007done"}\' > "$BATCH_RESULT_FILE"'
    )
    code, summary, err = run_with(repo, "1", executor)
    assert code == 1, err
    reason = outcomes(summary)[1][1] or ""
    assert "\x1b" not in reason
    assert "\x07" not in reason
    assert "red" in reason
    assert "\x1b" not in err
    assert "\x1b" not in (repo / "TODO.md").read_text()


def test_mentions_are_escaped_once() -> None:
    assert inert("@octocat and #5") == "@&#8203;octocat and #&#8203;5"


def test_work_a_killed_run_integrated_reaches_the_branch_at_the_next_run(repo: Path) -> None:
    """The killed run had integrated task 1 (and written it completed) but never moved the
    branch: the next run fast-forwards it, so the TODO file's word holds."""
    executor = (
        f'if [ "$1" = 1 ]; then AGENT_SLEEP=0 exec "{AGENT}" "$1"; fi; '
        f'AGENT_SLEEP=60 exec "{AGENT}" "$1"'
    )
    proc = subprocess.Popen(
        [*BATCHACTION, "run", "1-2", "--executor", executor.replace("$1", "{number}")],
        cwd=repo, env=dict(os.environ), start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert wait_for(
            lambda: "[COMPLETED]" in (repo / "TODO.md").read_text().split("### 2.")[0],
            timeout=60,
        )
        time.sleep(0.5)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert not (repo / "work" / "task-1.txt").exists()  # on the private tip only
    code, _, err = run(repo, "3")
    assert code == 0, err
    assert "fast-forwarded to the work a killed run had integrated" in err
    assert (repo / "work" / "task-1.txt").read_text().startswith("task 1, step 1")
    no_leftovers(repo)


def test_a_conflict_names_only_the_files_that_really_conflict(repo: Path) -> None:
    """Tasks 1 and 2 edit their own lines of shared.txt (merged line by line) and the first
    line of conflict.txt (a real conflict): only conflict.txt is named."""
    code, summary, err = run(
        repo, "1-2", "--max-parallel", "2",
        AGENT_SHARED="shared.txt", AGENT_CONFLICT="conflict.txt",
    )  # fmt: skip
    assert code == 1, err
    (reason,) = [r for o, r in outcomes(summary).values() if o == "failed"]
    assert (reason or "").startswith("conflict in conflict.txt (kept on ")


def test_a_status_an_executor_overwrote_is_written_again(repo: Path) -> None:
    """Task 2 copies TODO.md while task 1 runs, waits until task 1 is written completed, then
    puts its stale copy back without the lock: the run writes task 1's status again, and
    says so."""
    stale = (
        'if [ "$1" = 2 ]; then cp TODO.md /tmp/stale-$$; '
        "i=0; until grep -A1 '### 1\\.' TODO.md | grep -q COMPLETED || [ $i -gt 100 ]; do "
        "sleep 0.1; i=$((i + 1)); done; cat /tmp/stale-$$ > TODO.md; rm /tmp/stale-$$; fi"
    )
    code, summary, err = run_with(
        repo, "1-2", f'{stale}; exec "{AGENT}" "$1"', "--isolation", "none",
        "--max-parallel", "2", AGENT_COMMIT="0", AGENT_SLEEP="0",
    )  # fmt: skip
    assert code == 0, err
    text = (repo / "TODO.md").read_text()
    assert "**Status**: [COMPLETED]" in text.split("### 1.")[1].split("###")[0]
    assert any("task 1's status had been overwritten" in w for w in summary["warnings"])
