"""What a task leaves in the repository cannot steer the action's own push: a submodule whose
remote is a command, a branch reset under the run, a TODO.md replaced by a FIFO or a symlink,
or made executable. Through the real entrypoint, a bare remote and the loopback API."""

from __future__ import annotations

import shlex

import pytest
from actionhelpers import BOT, ApiStub, Sandbox
from test_truth import assert_told, locked, run_task

# A submodule moved to a new commit, the shared config told to push submodules on demand, and
# the submodule's own remote an ``ext::`` command (allowed in the submodule's own config,
# which the configuration check does not read). The command records what it could read.
SUBMODULE = """set -e
W="$MARKERS/w"; mkdir -p "$W"
git -c init.defaultBranch=main init -q --bare "$W/sub.git"
git -c init.defaultBranch=main init -q "$W/src"
git -C "$W/src" -c user.name=a -c user.email=a@b commit -q --allow-empty -m s1
git -C "$W/src" push -q "$W/sub.git" HEAD:main
git -c protocol.file.allow=always submodule add -q "$W/sub.git" sub
git -c user.name=a -c user.email=a@b commit -q -m "add sub"
git -C sub checkout -q -b feature
git -C sub -c user.name=a -c user.email=a@b commit -q --allow-empty -m s2
git add sub
git -c user.name=a -c user.email=a@b commit -q -m "bump sub"
git config push.recurseSubmodules on-demand
printf '#!/bin/sh\\nfor f in /proc/$$/fd/*; do cat "$f"; done > "$1" 2>&1\\nexit 1\\n' \
  > "$W/ext.sh"
chmod +x "$W/ext.sh"
git -C sub config remote.origin.url "ext::$W/ext.sh $MARKERS/ext-ran %S"
git -C sub config protocol.ext.allow always
"""


def test_a_submodule_whose_remote_is_a_command_never_runs_it(
    sandbox: Sandbox, api: ApiStub
) -> None:
    script = sandbox.root / "submodule.sh"
    script.write_text(SUBMODULE.replace("$MARKERS", shlex.quote(str(sandbox.markers))))
    run = run_task(sandbox, api, f"sh {shlex.quote(str(script))}")
    assert "Traceback" not in run.err
    ran = sandbox.markers / "ext-ran"
    assert not ran.exists(), ran.read_text(errors="replace")[:500]


@pytest.mark.parametrize(
    ("isolation", "rewrite"),
    [
        ("none", "git reset -q --hard HEAD~1"),
        ("none", "git checkout -q main"),
        ("worktree", 'git -C "$GITHUB_WORKSPACE" reset -q --hard HEAD~1'),
    ],
)
def test_a_branch_reset_under_the_run_is_never_force_pushed(
    sandbox: Sandbox, api: ApiStub, isolation: str, rewrite: str
) -> None:
    """The remote takes forced pushes (GitHub's default for a pull request's branch): the
    push still goes only onto a history that contains the branch's tip."""
    sandbox.git("config", "receive.denyNonFastForwards", "false")
    run = run_task(sandbox, api, rewrite, isolation)
    assert sandbox.is_ancestor(sandbox.feature_sha, sandbox.tip("feature"))
    assert (run.code == 0) == (run.outputs["result"] == "success"), (run.code, run.outputs)
    if run.outputs["pushed"] == "false":
        assert_told(run, api, "not pushed")


@pytest.mark.parametrize("isolation", ["none", "worktree"])
def test_a_todo_file_replaced_by_a_fifo_does_not_hang_the_action(
    sandbox: Sandbox, api: ApiStub, isolation: str
) -> None:
    fifo = 'rm "$BATCH_TODO_PATH" && mkfifo "$BATCH_TODO_PATH"'
    run = run_task(sandbox, api, locked(fifo, '"$BATCH_TODO_PATH"'), isolation)
    assert_told(run, api, "TODO.md")


@pytest.mark.parametrize("isolation", ["none", "worktree"])
def test_a_todo_file_replaced_by_a_symlink_is_neither_written_through_nor_committed(
    sandbox: Sandbox, api: ApiStub, isolation: str
) -> None:
    victim = sandbox.root / "victim.md"
    victim.write_bytes((sandbox.workspace / "TODO.md").read_bytes())
    before = victim.read_bytes()
    link = f'rm "$BATCH_TODO_PATH" && ln -s {shlex.quote(str(victim))} "$BATCH_TODO_PATH"'
    run = run_task(sandbox, api, locked(link, '"$BATCH_TODO_PATH"'), isolation)
    assert victim.read_bytes() == before
    assert_told(run, api, "TODO.md")
    tip = sandbox.tip("feature")
    assert sandbox.git("ls-tree", tip, "TODO.md").startswith("100644 blob")


def test_a_todo_file_moved_behind_a_symlink_in_the_workspace_is_not_committed_elsewhere(
    sandbox: Sandbox, api: ApiStub
) -> None:
    run = run_task(sandbox, api, locked("mv TODO.md TODO.md.real && ln -s TODO.md.real TODO.md"))
    assert_told(run, api, "TODO.md")
    tip = sandbox.tip("feature")
    for sha in sandbox.git("rev-list", f"{sandbox.feature_sha}..{tip}").split():
        if sandbox.people(sha)[1] == BOT:
            assert "TODO.md.real" not in sandbox.git("ls-tree", "-r", "--name-only", sha)


def test_a_todo_file_made_executable_is_committed_with_its_mode(
    sandbox: Sandbox, api: ApiStub
) -> None:
    run = run_task(sandbox, api, "chmod +x TODO.md")
    assert run.code == 0, run.err
    tip = sandbox.tip("feature")
    assert sandbox.people(tip)[1] == BOT
    assert sandbox.git("ls-tree", tip, "TODO.md").startswith("100644 blob")


def test_integrated_work_left_off_the_branch_is_a_failure_said_first(
    sandbox: Sandbox, api: ApiStub
) -> None:
    """A task commits on the workspace's branch behind the run's back: the integrated work
    cannot be fast-forwarded onto it, and the exit code, the result and the reply agree."""
    moved = (
        'git -C "$GITHUB_WORKSPACE" -c user.name=a -c user.email=a@b commit -q --allow-empty -m x'
    )
    run = run_task(sandbox, api, f"{moved} && echo work > work.txt", "worktree")
    assert run.code == 1, run.err
    assert run.outputs["result"] == "failure"
    (reply,) = api.comments()
    assert "⚠️ integrated work not on the branch" in reply.split("\n")[1]
