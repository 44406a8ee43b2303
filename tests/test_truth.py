"""The result tells the truth: a push refused by branch protection, or a TODO.md the run could
not write (deleted, binary, a directory in the way, a lock that is a symlink), is said on the
reply's first line, the job summary's header, the ``result`` and ``pushed`` outputs and the exit
code; a deleted or undecodable TODO.md is never committed in the bot's name. Through the real
entrypoint, a bare remote and the loopback API."""

from __future__ import annotations

import shlex
from typing import Any

import pytest
from actionhelpers import (
    BOT,
    ApiStub,
    Sandbox,
    comment_event,
    pull_answer,
    run_action,
)

PROTECTED = """#!/bin/sh
echo "remote: error: GH006: Protected branch update failed for refs/heads/feature." >&2
echo "remote: error: Changes must be made through a pull request." >&2
exit 1
"""


def run_task(sandbox: Sandbox, api: ApiStub, executor: str, isolation: str = "none") -> Any:
    api.serve(role="write", pull=pull_answer("feature", sandbox.feature_sha))
    return run_action(
        sandbox, "issue_comment", comment_event("/task 4"), api_url=api.url,
        inputs={"executor": executor, "isolation": isolation}, timeout=60,
    )  # fmt: skip


def locked(command: str, todo: str = "TODO.md") -> str:
    """``command`` run under the TODO lock, as a script that edits TODO.md should: the damage is
    not raced by the run's own "in progress" write (which could undo it, or put a file in the
    way of an ``ln`` or ``mkdir``)."""
    return f"flock {todo}.lock sh -c {shlex.quote(command)}"


def first_line(text: str) -> str:
    """The first line a reader sees: the reply's invisible marker comment is skipped."""
    lines = [line for line in text.splitlines() if line.strip()]
    return next(line for line in lines if not line.startswith("<!--"))


def assert_told(run: Any, api: ApiStub, *words: str) -> None:
    assert "Traceback" not in run.err, run.err
    assert run.code == 1, (run.err, run.out)
    assert run.outputs["result"] == "failure"
    (reply,) = api.comments()
    for text in (first_line(reply), first_line(run.step_summary)):
        for word in words:
            assert word in text, text


def no_bot_commit_breaks_the_todo(sandbox: Sandbox) -> None:
    """Whatever reached the branch, TODO.md is there, a text file, in every bot commit."""
    tip = sandbox.tip("feature")
    for sha in sandbox.git("rev-list", f"{sandbox.feature_sha}..{tip}").split():
        if sandbox.people(sha)[1] != BOT:
            continue
        files = sandbox.git("ls-tree", "-r", "--name-only", sha).split()
        assert "TODO.md" in files, f"bot commit {sha} deletes TODO.md"
        assert "\0" not in sandbox.show(sha, "TODO.md")


@pytest.mark.parametrize("isolation", ["none", "worktree"])
def test_a_push_refused_by_branch_protection_is_the_first_thing_said(
    sandbox: Sandbox, api: ApiStub, isolation: str
) -> None:
    hook = sandbox.remote / "hooks" / "pre-receive"
    hook.write_text(PROTECTED)
    hook.chmod(0o755)
    run = run_task(sandbox, api, "true", isolation)
    assert_told(run, api, "not pushed")
    assert run.outputs["pushed"] == "false"
    assert "Protected branch" in run.out  # the remote's own words, in the log
    assert sandbox.tip("feature") == sandbox.feature_sha


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param("rm TODO.md", id="deleted"),
        pytest.param("printf 'x\\000y' >> TODO.md", id="binary"),
        pytest.param("printf '\\377\\376' >> TODO.md", id="not-utf8"),
        pytest.param("rm TODO.md && mkdir TODO.md", id="directory"),
    ],
)
def test_a_todo_file_the_run_could_not_write_is_said_and_never_committed(
    sandbox: Sandbox, api: ApiStub, damage: str
) -> None:
    run = run_task(sandbox, api, locked(damage))
    assert_told(run, api, "TODO.md")
    no_bot_commit_breaks_the_todo(sandbox)


def test_a_lock_file_that_is_a_symlink_writes_nothing_elsewhere(
    sandbox: Sandbox, api: ApiStub
) -> None:
    target = sandbox.root / "outside.txt"
    target.write_text("keep me\n", encoding="utf-8")
    run = run_task(sandbox, api, f"ln -sf {target} TODO.md.lock")
    assert target.read_text(encoding="utf-8") == "keep me\n"
    assert "Traceback" not in run.err, run.err
    if run.code == 0:
        assert run.outputs["result"] == "success"
    else:
        assert_told(run, api, "TODO.md")


@pytest.mark.parametrize(
    "trap",
    [
        pytest.param(
            "git config commit.gpgSign true && git config user.signingKey no-such-key",
            id="gpgsign-without-a-key",
        ),
        pytest.param(
            "for h in pre-commit commit-msg pre-push; do printf '#!/bin/sh\\nexit 1\\n' "
            "> .git/hooks/$h; chmod +x .git/hooks/$h; done",
            id="failing-hooks",
        ),
        pytest.param("git config core.hooksPath /nonexistent-hooks", id="hooks-path"),
    ],
)
def test_traps_in_the_repository_config_do_not_stop_the_status_commit(
    sandbox: Sandbox, api: ApiStub, trap: str
) -> None:
    """The bot's commits never sign and run no hook: the statuses reach the branch."""
    run = run_task(sandbox, api, trap)
    assert run.code == 0, (run.err, run.out)
    assert run.outputs["pushed"] == "true"
    tip = sandbox.tip("feature")
    assert sandbox.people(tip)[1] == BOT
    assert "gpgsig" not in sandbox.git("cat-file", "commit", tip)


def test_an_unmerged_index_a_task_leaves_does_not_stop_the_status_commit(
    sandbox: Sandbox, api: ApiStub
) -> None:
    """The status commit is made from TODO.md alone (``commit --only``): a conflicted entry a
    task left in the index is neither committed nor in the way."""
    conflict = (
        "blob=$(git hash-object -w /dev/null) && "
        "printf '100644 %s 1\\tclash.txt\\n100644 %s 2\\tclash.txt\\n' $blob $blob "
        "| git update-index --index-info"
    )
    run = run_task(sandbox, api, conflict)
    assert run.code == 0, (run.err, run.out)
    assert run.outputs["pushed"] == "true"
    tip = sandbox.tip("feature")
    assert sandbox.git("diff-tree", "--no-commit-id", "--name-only", "-r", tip) == "TODO.md"
