"""The action with tasks in worktrees (the default): agents that commit, rewrite TODO.md and
conflict, end to end through ``batchaction action``, a bare remote and the API stub. The
pushed branch must hold every integrated commit and the status commit, nothing else."""

from __future__ import annotations

import shlex
from pathlib import Path

from actionhelpers import (
    BOT,
    HUMAN,
    PR_NUMBER,
    ActionRun,
    ApiStub,
    Sandbox,
    comment_event,
    pull_answer,
    run_action,
    status_of,
)

AGENT = Path(__file__).resolve().parent / "fixtures" / "executors" / "agent.sh"
# Tasks 2 and 3 depend on task 1 (TODO_TEXT) and need its file.
AGENTS = (
    "if [ {number} = 2 ] || [ {number} = 3 ]; then export AGENT_NEEDS=1; fi; "
    f"exec {shlex.quote(str(AGENT))} {{number}}"
)


def agents_run(
    sandbox: Sandbox, api: ApiStub, body: str, inputs: dict[str, str] | None = None, **env: str
) -> ActionRun:
    api.serve(role="write", pull=pull_answer("feature", sandbox.feature_sha))
    return run_action(
        sandbox,
        "issue_comment",
        comment_event(body),
        api_url=api.url,
        inputs={"executor": AGENTS, **(inputs or {})},
        extra_env={"AGENT_SLEEP": "0.05", **env},
    )


def files_of(sandbox: Sandbox, sha: str) -> list[str]:
    return sorted(sandbox.git("diff-tree", "--no-commit-id", "--name-only", "-r", sha).split())


def kept_branches(sandbox: Sandbox) -> list[str]:
    return sorted(b for b in sandbox.refs() if "batchaction/" in b)


def test_the_pushed_branch_holds_every_integrated_commit_and_the_status_commit(
    sandbox: Sandbox, api: ApiStub
) -> None:
    """Four agents, two wide, each committing with git add -A and rewriting TODO.md without
    the lock: the push is their four commits (authors kept, only their own files, in an
    order the graph allows), then the bot's status commit."""
    run = agents_run(
        sandbox, api, "/task 1-4", {"max-parallel": "2"}, AGENT_TODO="TODO.md", AGENT_NOISY="1"
    )
    assert run.code == 0, run.err
    tip = sandbox.tip("feature")
    shas = sandbox.git("rev-list", "--reverse", f"{sandbox.feature_sha}..{tip}").split()
    subjects = [sandbox.git("log", "-1", "--format=%s", sha) for sha in shas]
    assert subjects[-1] == "tasks: 1-4 completed"
    assert sandbox.people(tip) == (BOT, BOT)
    agents = subjects[:-1]
    assert sorted(agents) == [f"task {n}: agent work" for n in (1, 2, 3, 4)]
    assert agents.index("task 1: agent work") < agents.index("task 2: agent work")
    assert agents.index("task 1: agent work") < agents.index("task 3: agent work")
    for sha, subject in zip(shas, agents, strict=False):
        n = subject.split()[1].rstrip(":")
        assert files_of(sandbox, sha) == [f"work/task-{n}.txt"]
        # The agents commit as the runner's git identity (GIT_AUTHOR_* here): kept.
        assert sandbox.people(sha)[0] == HUMAN
    assert files_of(sandbox, tip) == ["TODO.md"]
    todo = sandbox.show(tip, "TODO.md")
    assert [status_of(todo, n) for n in (1, 2, 3, 4, 5)] == ["[COMPLETED]"] * 4 + ["[NOT STARTED]"]
    assert sandbox.merges(f"{sandbox.feature_sha}..{tip}") == []
    assert run.outputs["commit-sha"] == tip
    assert kept_branches(sandbox) == []
    summary = run.summary
    assert summary["isolation"]["mode"] == "worktree"
    assert sum(t["integrated_commits"] for t in summary["tasks"]) == 4


def test_commit_each_makes_its_status_commits_on_the_integration_tip(
    sandbox: Sandbox, api: ApiStub
) -> None:
    """``commit: each``: the status commits and the agents' commits form one linear history,
    a task's completed status after its work (the in-progress one is written while it runs,
    so it may land before or after the work)."""
    run = agents_run(sandbox, api, "/task 1-2", {"commit": "each", "max-parallel": "1"})
    assert run.code == 0, run.err
    tip = sandbox.tip("feature")
    shas = sandbox.git("rev-list", "--reverse", f"{sandbox.feature_sha}..{tip}").split()
    subjects = [sandbox.git("log", "-1", "--format=%s", sha) for sha in shas]
    statuses = [s for s in subjects if s.startswith("tasks: ")]
    assert len(statuses) >= 2  # the writer may gather changes made close together
    assert all(
        sandbox.people(sha) == (BOT, BOT)
        for sha, s in zip(shas, subjects, strict=True)
        if s in statuses
    )
    for n in (1, 2):
        (work,) = [
            sha for sha, s in zip(shas, subjects, strict=True) if s == f"task {n}: agent work"
        ]
        assert status_of(sandbox.show(work, "TODO.md"), n) == "[IN PROGRESS]"
    assert sandbox.merges(f"{sandbox.feature_sha}..{tip}") == []
    todo = sandbox.show(tip, "TODO.md")
    assert [status_of(todo, n) for n in (1, 2, 3)] == ["[COMPLETED]"] * 2 + ["[NOT STARTED]"]
    assert sandbox.show(tip, "work/task-2.txt").startswith("task 2, step 1")


def test_a_conflict_fails_one_task_and_its_work_is_pushed_when_asked(
    sandbox: Sandbox, api: ApiStub
) -> None:
    run = agents_run(
        sandbox, api, "/task 1, 4", {"max-parallel": "2", "push-failed-branches": "true"},
        AGENT_CONFLICT="README.md",
    )  # fmt: skip
    assert run.code == 1, run.err
    tasks = {t["number"]: t for t in run.summary["tasks"]}
    (loser,) = [n for n, t in tasks.items() if t["outcome"] == "failed"]
    (winner,) = [n for n, t in tasks.items() if t["outcome"] == "completed"]
    branch = f"batchaction/pr-{PR_NUMBER}/task-{loser}"
    assert tasks[loser]["reason"] == f"conflict in README.md (kept on {branch})"
    assert kept_branches(sandbox) == [f"refs/heads/{branch}"]
    assert sandbox.show(f"refs/heads/{branch}", "README.md") == f"edited by task {loser}"
    tip = sandbox.tip("feature")
    assert sandbox.show(tip, "README.md") == f"edited by task {winner}"
    assert sandbox.subjects(f"{sandbox.feature_sha}..{tip}")[1:] == [f"task {winner}: agent work"]
    assert run.summary["isolation"]["pushed_branches"] == [branch]


def test_kept_work_stays_in_the_runner_unless_asked(sandbox: Sandbox, api: ApiStub) -> None:
    run = agents_run(sandbox, api, "/task 4", AGENT_FAIL="4")
    assert run.code == 1, run.err
    assert kept_branches(sandbox) == []
    assert "in this runner only: set `push-failed-branches: true`" in run.out
    assert (run.summary["tasks"][0]["branch"] or "").startswith(f"batchaction/pr-{PR_NUMBER}/")
