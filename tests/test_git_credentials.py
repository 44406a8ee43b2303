"""The token reaches git for fetch and push only, through a pipe: never in a process's
command line or environment, where any process of the same user (an executor) can read it
in /proc. Against a real git server over HTTP that requires basic auth."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest
from actionhelpers import (
    BOT,
    TOKEN,
    TOKEN_FORMS,
    Sandbox,
    dispatch_event,
    run_action,
    status_of,
)
from githttp import BackgroundProbe, GitHttpServer, ProcessProbe

AGENT = Path(__file__).resolve().parent / "fixtures" / "executors" / "agent.sh"


def racing_clone(sandbox: Sandbox) -> Path:
    """A clone of the remote with one commit on main that the remote does not have yet."""
    clone = sandbox.clone(sandbox.root / "racer", "main")
    (clone / "racer.txt").write_text("pushed by someone else during the run\n", encoding="utf-8")
    sandbox.git("add", "racer.txt", cwd=clone)
    sandbox.git("commit", "--quiet", "-m", "someone else's commit", cwd=clone)
    return clone


@pytest.mark.parametrize("isolation", ["worktree", "none"])
def test_fetch_and_push_authenticate_and_no_process_shows_the_token(
    sandbox: Sandbox, isolation: str
) -> None:
    """A dispatched run on main against a server that requires the token: task 1 (an agent)
    first pushes someone else's commit to the remote, so the action's push is rejected, it
    fetches and pushes again, all authenticated. During every authorized request (git
    waiting on the server) and all through the run, no process's /proc/<pid>/environ or
    cmdline holds any form of the token; the probe did see git's HTTP helper and send-pack
    at work, and .git/config never held the token."""
    racer = racing_clone(sandbox)
    probe = ProcessProbe(TOKEN_FORMS)
    with GitHttpServer(
        sandbox.root,
        username="x-access-token",
        password=TOKEN,
        on_authorized=lambda method, path: probe.scan(),
    ) as server:
        origin = f"{server.url}/remote.git"
        sandbox.git("remote", "set-url", "origin", origin, cwd=sandbox.workspace)
        race = (
            "if [ {number} = 1 ]; then env -u GIT_DIR -u GIT_WORK_TREE git -C "
            f"{shlex.quote(str(racer))} push --quiet {shlex.quote(str(sandbox.remote))} "
            "HEAD:main; fi"
        )
        with BackgroundProbe(probe):
            run = run_action(
                sandbox,
                "workflow_dispatch",
                dispatch_event("1-4", ref="refs/heads/main"),
                api_url=server.url,
                inputs={
                    "executor": f"{race} && exec {shlex.quote(str(AGENT))} {{number}}",
                    "isolation": isolation,
                    # Agents committing in one shared work tree must take turns (index.lock).
                    "max-parallel": "2" if isolation == "worktree" else "1",
                },
                extra_env={"GITHUB_SERVER_URL": server.url, "AGENT_SLEEP": "0.05"},
            )
    assert run.code == 0, run.out + run.err
    tip = sandbox.tip("main")
    assert sandbox.people(tip) == (BOT, BOT)
    assert sandbox.subjects(f"{sandbox.main_sha}..{tip}")[-1] == "someone else's commit"
    todo = sandbox.show(tip, "TODO.md")
    assert [status_of(todo, n) for n in (1, 2, 3, 4)] == ["[COMPLETED]"] * 4
    granted = [(s.method, s.path.split("?")[0]) for s in server.seen if s.authorized]
    assert ("POST", "/remote.git/git-receive-pack") in granted  # the pushes
    assert ("POST", "/remote.git/git-upload-pack") in granted  # the fetch after the race
    assert probe.found == []
    assert probe.saw("git-remote-http"), sorted(probe.commands)  # the probe saw git at work
    assert probe.saw("send-pack"), sorted(probe.commands)
    stored = (sandbox.workspace / ".git" / "config").read_text(encoding="utf-8")
    assert not any(form in stored for form in TOKEN_FORMS)


def test_the_token_goes_to_the_github_server_only(sandbox: Sandbox, tmp_path: Path) -> None:
    """A fetch from another host (what a redirected URL would reach) is asked for
    credentials and gets none: the helper answers only the server it was made for."""
    from batchaction import gitops
    from batchaction.credentials import RemoteAccess

    with (
        GitHttpServer(sandbox.root, username="x-access-token", password=TOKEN) as github,
        GitHttpServer(sandbox.root, username="x-access-token", password=TOKEN) as other,
    ):
        sandbox.git("remote", "set-url", "origin", f"{other.url}/remote.git", cwd=sandbox.workspace)
        access = RemoteAccess(github.url, TOKEN)
        fetched = gitops.git("fetch", "origin", cwd=sandbox.workspace, access=access, check=False)
        assert fetched.returncode != 0
        assert other.seen
        assert not any(s.authorization for s in other.seen)
        sandbox.git(
            "remote", "set-url", "origin", f"{github.url}/remote.git", cwd=sandbox.workspace
        )
        fetched = gitops.git("fetch", "origin", cwd=sandbox.workspace, access=access, check=False)
        assert fetched.returncode == 0, fetched.stderr
        assert any(s.authorized for s in github.seen)


def test_configured_credential_helpers_are_not_asked_or_told(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """A credential helper in the repository's or the user's configuration is neither asked
    for credentials nor told the token (git's ``store`` after a success): the action's
    fetch and push reset the helper list to its own."""
    from batchaction import gitops
    from batchaction.credentials import RemoteAccess

    record = tmp_path / "helper-calls"
    helper = tmp_path / "helper.sh"
    helper.write_text(f'#!/bin/sh\n{{ echo "$1"; cat; }} >> {shlex.quote(str(record))}\n')
    helper.chmod(0o755)
    sandbox.git("config", "credential.helper", str(helper), cwd=sandbox.workspace)
    sandbox.git("config", "--global", "credential.helper", str(helper), cwd=sandbox.workspace)
    with GitHttpServer(sandbox.root, username="x-access-token", password=TOKEN) as server:
        sandbox.git(
            "remote", "set-url", "origin", f"{server.url}/remote.git", cwd=sandbox.workspace
        )
        access = RemoteAccess(server.url, TOKEN)
        env = {"HOME": str(sandbox.home), "GIT_CONFIG_NOSYSTEM": "1"}
        fetched = gitops.git("fetch", "origin", cwd=sandbox.workspace, env=env, access=access)
        assert fetched.returncode == 0
        pushed = gitops.git(
            "push", "origin", "HEAD:refs/heads/copy", cwd=sandbox.workspace, env=env, access=access
        )
        assert pushed.returncode == 0
    assert not record.exists()
    proc = subprocess.run(
        ["git", "config", "--get-all", "credential.helper"],
        cwd=sandbox.workspace,
        env=sandbox.env(),
        capture_output=True,
        text=True,
        check=True,
    )
    assert proc.stdout.split() == [str(helper), str(helper)]  # untouched


def test_a_server_url_that_is_no_url_refuses_with_a_reason(sandbox: Sandbox) -> None:
    """With a token and a GITHUB_SERVER_URL git's credential protocol cannot match, the
    fetch does not run and says why (no traceback, no prompt)."""
    from batchaction import gitops
    from batchaction.credentials import RemoteAccess

    access = RemoteAccess("", TOKEN)
    fetched = gitops.git("fetch", "origin", cwd=sandbox.workspace, access=access, check=False)
    assert fetched.returncode == 128
    assert "GITHUB_SERVER_URL" in fetched.stderr
    with pytest.raises(gitops.GitError, match="GITHUB_SERVER_URL"):
        gitops.git("fetch", "origin", cwd=sandbox.workspace, access=access)
