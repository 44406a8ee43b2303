"""Commit-back under a push race: other clones push to the branch while the batch runs.

The executor of a task itself clones the bare remote a second time, commits there (a new file,
a line at the top of TODO.md and a note in an unselected task) and pushes to the PR branch before
it exits, so the action's own push is rejected once and must land on top without losing anything.
"""

from __future__ import annotations

import json
import shlex
import sys

import pytest
from actionhelpers import (
    BOT,
    HUMAN,
    ApiStub,
    Sandbox,
    comment_event,
    pull_answer,
    run_action,
    status_of,
)
from pytest_httpserver import HTTPServer

from batchaction import gitops

# argv: task number, configuration file. Writes ran-N; races and commits as configured.
RACER = r"""
import json
import pathlib
import subprocess
import sys

number = int(sys.argv[1])
cfg = json.loads(pathlib.Path(sys.argv[2]).read_text())
markers = pathlib.Path(cfg["markers"])


def git(*args, cwd):
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"git {args} failed: {done.stderr}")
    return done.stdout.strip()


(markers / f"ran-{number}").write_text("")
if number in cfg["race"]:
    clone = pathlib.Path(cfg["clones"]) / f"other-{number}"
    git("clone", "--quiet", "--branch", cfg["branch"], cfg["remote"], str(clone), cwd=cfg["clones"])
    (clone / f"other-{number}.txt").write_text("pushed from another clone\n")
    todo = clone / "TODO.md"
    text = todo.read_text()
    text = text.replace("# TODO\n", "# TODO\n\nIntro line from another clone.\n", 1)
    text = text.replace("Body of task five.\n", "Body of task five.\nNote from another clone.\n")
    if cfg.get("adjacent"):
        # Right above task 1's Status line: a textual rebase of a status commit conflicts.
        text = text.replace(
            "### 1. Lay the foundation\n- **Effort**: 1 hour\n",
            "### 1. Lay the foundation\n- **Effort**: 2 hours (re-estimated)\n",
        )
    todo.write_text(text)
    if cfg.get("readme"):
        (clone / "README.md").write_text("Hello from another clone.\n")
    git("add", "-A", cwd=clone)
    git("commit", "--quiet", "-m", f"Other clone during task {number}", cwd=clone)
    git("push", "--quiet", "origin", f"HEAD:{cfg['branch']}", cwd=clone)
    (markers / f"other-{number}.sha").write_text(git("rev-parse", "HEAD", cwd=clone))
if number in cfg["own"]:
    workspace = pathlib.Path.cwd()
    (workspace / f"own-{number}.txt").write_text(f"made by task {number}\n")
    git("add", f"own-{number}.txt", cwd=workspace)
    if cfg.get("readme"):
        (workspace / "README.md").write_text(f"Hello from task {number}.\n")
        git("add", "README.md", cwd=workspace)
    git("commit", "--quiet", "-m", f"Executor commit for task {number}", cwd=workspace)
    (markers / f"own-{number}.sha").write_text(git("rev-parse", "HEAD", cwd=workspace))
"""
LIFECYCLE = ("**Status**:", "**Started**:", "**Completed**:")


@pytest.fixture
def api(httpserver: HTTPServer, sandbox: Sandbox) -> ApiStub:
    """The GitHub API stub, answering that ``feature`` at its current sha is the PR head."""
    stub = ApiStub(httpserver)
    stub.serve(role="write", pull=pull_answer("feature", sandbox.feature_sha))
    return stub


def racer(
    sandbox: Sandbox,
    *,
    race: tuple[int, ...] = (),
    own: tuple[int, ...] = (),
    readme: bool = False,
    adjacent: bool = False,
) -> str:
    """The executor command: the racing script with its configuration."""
    (sandbox.root / "clones").mkdir(exist_ok=True)
    script = sandbox.root / "racer.py"
    script.write_text(RACER, encoding="utf-8")
    config = sandbox.root / "racer.json"
    config.write_text(
        json.dumps(
            {
                "markers": str(sandbox.markers),
                "clones": str(sandbox.root / "clones"),
                "remote": str(sandbox.remote),
                "branch": "feature",
                "race": list(race),
                "own": list(own),
                "readme": readme,
                "adjacent": adjacent,
            }
        ),
        encoding="utf-8",
    )
    words = [sys.executable, str(script), "{number}", str(config)]
    return " ".join(shlex.quote(word) for word in words)


def without_lifecycle(text: str) -> list[str]:
    return [line for line in text.splitlines() if not line.lstrip("- ").startswith(LIFECYCLE)]


def assert_fast_forwards_only(sandbox: Sandbox, branch: str) -> None:
    """Every update the remote branch ever took moved it forward (no force push)."""
    updates = sandbox.ref_log(branch)
    assert updates
    for old, new in updates:
        if set(old) != {"0"}:
            assert sandbox.is_ancestor(old, new), (old, new)


def assert_theirs_kept(sandbox: Sandbox, theirs: str, tip: str) -> None:
    """Their commit is an ancestor of the tip and their file and TODO.md edits are all there."""
    assert sandbox.is_ancestor(theirs, tip)
    assert sandbox.merges(f"{sandbox.feature_sha}..{tip}") == []
    assert sandbox.show(tip, "other-1.txt") == "pushed from another clone"
    final = sandbox.show(tip, "TODO.md")
    assert "Intro line from another clone." in final
    assert "Note from another clone." in final
    assert without_lifecycle(final) == without_lifecycle(sandbox.show(theirs, "TODO.md"))


def test_status_commit_lands_on_top_of_a_racing_push(sandbox: Sandbox, api: ApiStub) -> None:
    """Another clone pushes while task 1 runs; the statuses land on top, theirs intact."""
    run = run_action(
        sandbox,
        "issue_comment",
        comment_event("/task 1-3"),
        api_url=api.url,
        inputs={"executor": racer(sandbox, race=(1,))},
    )
    assert run.code == 0, run.err
    theirs = (sandbox.markers / "other-1.sha").read_text()
    tip = sandbox.tip("feature")
    assert theirs != tip
    assert sandbox.is_ancestor(sandbox.feature_sha, theirs)
    assert_theirs_kept(sandbox, theirs, tip)
    assert sandbox.git("rev-parse", f"{tip}^") == theirs
    assert sandbox.people(tip) == (BOT, BOT)
    final = sandbox.show(tip, "TODO.md")
    assert [status_of(final, n) for n in (1, 2, 3, 4, 5)] == ["[COMPLETED]"] * 3 + [
        "[NOT STARTED]"
    ] * 2
    assert_fast_forwards_only(sandbox, "feature")
    assert sandbox.tip("main") == sandbox.main_sha
    commit = run.summary["commit"]
    assert (commit["pushed"], commit["attempts"], commit["error"]) == (True, 2, None)
    assert run.outputs["commit-sha"] == tip
    assert api.reactions() == ["eyes", "rocket"]


def test_executor_commit_is_pushed_along(sandbox: Sandbox, api: ApiStub) -> None:
    """A commit an executor makes in the workspace reaches the remote under the status commit."""
    run = run_action(
        sandbox,
        "issue_comment",
        comment_event("/task 1-2"),
        api_url=api.url,
        inputs={"executor": racer(sandbox, own=(1,))},
    )
    assert run.code == 0, run.err
    own = (sandbox.markers / "own-1.sha").read_text()
    tip = sandbox.tip("feature")
    assert sandbox.is_ancestor(own, tip)
    assert sandbox.git("rev-parse", f"{own}^") == sandbox.feature_sha
    assert sandbox.people(own) == (HUMAN, HUMAN)
    assert sandbox.people(tip) == (BOT, BOT)
    assert sandbox.show(tip, "own-1.txt") == "made by task 1"
    assert run.summary["commit"]["attempts"] == 1
    assert_fast_forwards_only(sandbox, "feature")


def test_executor_commit_is_rebased_onto_a_racing_push(sandbox: Sandbox, api: ApiStub) -> None:
    """Task 1's race and task 2's own commit: the own commit is rebased onto their tip."""
    run = run_action(
        sandbox,
        "issue_comment",
        comment_event("/task 1-3"),
        api_url=api.url,
        inputs={"executor": racer(sandbox, race=(1,), own=(2,)), "max-parallel": "1"},
    )
    assert run.code == 0, run.err
    theirs = (sandbox.markers / "other-1.sha").read_text()
    tip = sandbox.tip("feature")
    assert_theirs_kept(sandbox, theirs, tip)
    assert sandbox.subjects(f"{theirs}..{tip}") == [
        "tasks: 1-3 completed",
        "Executor commit for task 2",
    ]
    rebased = sandbox.git("rev-parse", f"{tip}^")
    assert sandbox.git("rev-parse", f"{rebased}^") == theirs
    assert sandbox.people(rebased)[0] == HUMAN
    assert sandbox.show(tip, "own-2.txt") == "made by task 2"
    assert sandbox.people(tip) == (BOT, BOT)
    final = sandbox.show(tip, "TODO.md")
    assert [status_of(final, n) for n in (1, 2, 3)] == ["[COMPLETED]"] * 3
    assert_fast_forwards_only(sandbox, "feature")
    assert run.outputs["commit-sha"] == tip


def test_add_paths_files_survive_a_racing_push(sandbox: Sandbox, api: ApiStub) -> None:
    """Files matching ``add-paths`` keep their commit when the status commit is rebuilt."""
    executor = racer(sandbox, race=(1,)) + " && mkdir -p out && echo report > out/r-{number}.txt"
    run = run_action(
        sandbox,
        "issue_comment",
        comment_event("/task 1-2"),
        api_url=api.url,
        # add-paths is for tasks that share the workspace; in worktrees all work is committed.
        inputs={
            "executor": executor,
            "add-paths": "out/*.txt",
            "max-parallel": "1",
            "isolation": "none",
        },
    )
    assert run.code == 0, run.err
    theirs = (sandbox.markers / "other-1.sha").read_text()
    tip = sandbox.tip("feature")
    assert run.summary["commit"]["attempts"] == 2
    assert_theirs_kept(sandbox, theirs, tip)
    assert sandbox.show(tip, "out/r-1.txt") == "report"
    assert sandbox.show(tip, "out/r-2.txt") == "report"
    assert sandbox.subjects(f"{theirs}..{tip}") == ["tasks: 1-2 completed", gitops.FILES_MESSAGE]
    assert sandbox.people(tip) == (BOT, BOT)
    assert sandbox.people(f"{tip}^") == (BOT, BOT)
    final = sandbox.show(tip, "TODO.md")
    assert [status_of(final, n) for n in (1, 2)] == ["[COMPLETED]"] * 2
    # The workspace holds what was pushed: nothing of the run is left behind or lost.
    assert sandbox.git("rev-parse", "HEAD", cwd=sandbox.workspace) == tip
    assert (sandbox.workspace / "out" / "r-1.txt").read_text() == "report\n"
    assert_fast_forwards_only(sandbox, "feature")


def test_commit_each_rebases_every_status_commit(sandbox: Sandbox, api: ApiStub) -> None:
    """With ``commit: each`` the per-change status commits are rebased onto the racing push."""
    run = run_action(
        sandbox,
        "issue_comment",
        comment_event("/task 1-2"),
        api_url=api.url,
        inputs={"executor": racer(sandbox, race=(1,)), "commit": "each", "max-parallel": "1"},
    )
    assert run.code == 0, run.err
    theirs = (sandbox.markers / "other-1.sha").read_text()
    tip = sandbox.tip("feature")
    assert_theirs_kept(sandbox, theirs, tip)
    ours = sandbox.git("rev-list", f"{theirs}..{tip}").split()
    assert len(ours) >= 2
    assert all(sandbox.people(sha) == (BOT, BOT) for sha in ours)
    final = sandbox.show(tip, "TODO.md")
    assert [status_of(final, n) for n in (1, 2, 3)] == [
        "[COMPLETED]",
        "[COMPLETED]",
        "[NOT STARTED]",
    ]
    assert_fast_forwards_only(sandbox, "feature")


@pytest.mark.parametrize("mode", ["end", "each"])
def test_statuses_are_reapplied_next_to_a_racing_edit(
    sandbox: Sandbox, api: ApiStub, mode: str
) -> None:
    """The racing push edits the line right above task 1's Status line. A textual rebase of
    a status commit would conflict there; re-applying the status changes does not, in either
    commit mode, and their edit stays."""
    run = run_action(
        sandbox,
        "issue_comment",
        comment_event("/task 1-2"),
        api_url=api.url,
        inputs={
            "executor": racer(sandbox, race=(1,), adjacent=True),
            "commit": mode,
            "max-parallel": "1",
        },
    )
    assert run.code == 0, run.err
    theirs = (sandbox.markers / "other-1.sha").read_text()
    tip = sandbox.tip("feature")
    assert run.summary["commit"]["pushed"] is True
    assert sandbox.is_ancestor(theirs, tip)
    assert sandbox.merges(f"{sandbox.feature_sha}..{tip}") == []
    final = sandbox.show(tip, "TODO.md")
    assert "### 1. Lay the foundation\n- **Effort**: 2 hours (re-estimated)\n" in final
    assert [status_of(final, n) for n in (1, 2, 3)] == [
        "[COMPLETED]",
        "[COMPLETED]",
        "[NOT STARTED]",
    ]
    ours = sandbox.git("rev-list", f"{theirs}..{tip}").split()
    assert ours
    assert all(sandbox.people(sha) == (BOT, BOT) for sha in ours)
    if mode == "each":
        assert len(ours) >= 2  # the per-change commits, each rebuilt on their tip
    assert_fast_forwards_only(sandbox, "feature")


def test_conflicting_push_is_reported_and_never_forced(sandbox: Sandbox, api: ApiStub) -> None:
    """A push whose rebase conflicts is reported, never forced, and leaves commit-sha empty."""
    run = run_action(
        sandbox,
        "issue_comment",
        comment_event("/task 1-2"),
        api_url=api.url,
        inputs={"executor": racer(sandbox, race=(1,), own=(2,), readme=True), "max-parallel": "1"},
    )
    assert run.code == 1, run.err
    theirs = (sandbox.markers / "other-1.sha").read_text()
    assert sandbox.tip("feature") == theirs
    assert_fast_forwards_only(sandbox, "feature")
    assert "::error::the status commit was not pushed" in run.out
    commit = run.summary["commit"]
    assert commit["pushed"] is False
    assert commit["error"]
    assert run.outputs["commit-sha"] == ""
    assert api.reactions() == ["eyes", "confused"]
    workspace_todo = (sandbox.workspace / "TODO.md").read_text(encoding="utf-8")
    assert [status_of(workspace_todo, n) for n in (1, 2)] == ["[COMPLETED]"] * 2
    assert sandbox.git("symbolic-ref", "--short", "HEAD", cwd=sandbox.workspace) == "feature"
