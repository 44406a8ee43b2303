"""A task cannot redirect or weaken the action's fetch and push by writing git
configuration (the shared ``.git/config``, the user's ``~/.gitconfig``): a proxy, TLS
verification off, ``insteadOf``, a push URL, an include. The action reads that configuration
before any task runs and refuses to push when it changed, saying which keys; it still
publishes. In worktrees (``.git/config`` is shared with the tasks' worktrees) and without."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from actionhelpers import TOKEN, ActionRun, Sandbox, dispatch_event, run_action
from githttp import GitHttpServer, ProxyRecorder

AGENT = Path(__file__).resolve().parent / "fixtures" / "executors" / "agent.sh"

# What task 1 runs before its work: {proxy}, {server}, {origin}, {evil} are filled in.
TAMPERING = {
    "http.proxy": "git config http.proxy {proxy} && git config http.sslVerify false",
    "http.<url>.proxy": (
        "git config http.{server}/.proxy {proxy} && git config http.{server}/.sslVerify false"
    ),
    "url.<evil>.insteadof": "git config url.{evil}.insteadOf {origin}",
    "remote.origin.pushurl": "git config remote.origin.pushurl {evil}",
    "include.path": (
        'printf \'[url "%s"]\\n\\tinsteadOf = %s\\n\' {evil} {origin} > "$HOME/evil.inc" '
        '&& git config --global include.path "$HOME/evil.inc"'
    ),
}
# The key each one is reported under (git lower-cases section and variable names).
REPORTED = {
    "http.proxy": "http.proxy",
    "http.<url>.proxy": "/.proxy",
    "url.<evil>.insteadof": ".insteadof",
    "remote.origin.pushurl": "remote.origin.pushurl",
    "include.path": "include.path",
}


def run_with(
    sandbox: Sandbox,
    server: GitHttpServer,
    first: str,
    isolation: str,
    inputs: dict[str, str] | None = None,
    **env: str,
) -> ActionRun:
    """A dispatched run of tasks 1-4 on main (agents that commit), task 1 running ``first``
    before its work, with origin behind ``server``."""
    executor = (
        f"if [ {{number}} = 1 ]; then {first}; fi && exec {shlex.quote(str(AGENT))} {{number}}"
    )
    return run_action(
        sandbox,
        "workflow_dispatch",
        dispatch_event("1-4", ref="refs/heads/main"),
        api_url=server.url,
        inputs={
            "executor": executor,
            "isolation": isolation,
            "max-parallel": "2" if isolation == "worktree" else "1",
            **(inputs or {}),
        },
        extra_env={"GITHUB_SERVER_URL": server.url, "AGENT_SLEEP": "0.05", **env},
    )


def evil_remote(sandbox: Sandbox) -> Path:
    evil = sandbox.root / "evil.git"
    sandbox.git("clone", "--quiet", "--bare", str(sandbox.remote), str(evil), cwd=sandbox.root)
    return evil


@pytest.mark.parametrize("isolation", ["worktree", "none"])
@pytest.mark.parametrize("kind", list(TAMPERING))
def test_a_task_cannot_redirect_the_push(sandbox: Sandbox, kind: str, isolation: str) -> None:
    """Task 1 writes the configuration; every task completes; nothing reaches the proxy or
    the other repository, origin is not pushed to, the run fails and says which key
    changed, and the job summary is still written."""
    evil = evil_remote(sandbox)
    evil_refs = sandbox.git("for-each-ref", cwd=evil)
    with (
        GitHttpServer(sandbox.root, username="x-access-token", password=TOKEN) as server,
        ProxyRecorder() as proxy,
    ):
        origin = f"{server.url}/remote.git"
        sandbox.git("remote", "set-url", "origin", origin, cwd=sandbox.workspace)
        first = TAMPERING[kind].format(
            proxy=proxy.url, server=server.url, origin=origin, evil=f"file://{evil}"
        )
        run = run_with(sandbox, server, first, isolation)
    assert proxy.received == []
    assert sandbox.git("for-each-ref", cwd=evil) == evil_refs
    assert sandbox.tip("main") == sandbox.main_sha
    assert run.code == 1, run.out + run.err
    summary = run.summary
    assert [t["outcome"] for t in summary["tasks"]] == ["completed"] * 4
    assert summary["commit"]["pushed"] is False
    assert "changed while the tasks ran" in summary["commit"]["error"]
    assert REPORTED[kind] in summary["commit"]["error"]
    errors = [line for line in run.out.splitlines() if line.startswith("::error::")]
    assert any("changed while the tasks ran" in e and REPORTED[kind] in e for e in errors)
    assert "**batchaction**" in run.step_summary  # published all the same


def test_kept_branches_are_not_pushed_through_a_changed_configuration(sandbox: Sandbox) -> None:
    """With ``push-failed-branches: true`` the branch kept for a failed task is not pushed
    either once a task added ``insteadOf``: the kept-branch step runs and says why."""
    evil = evil_remote(sandbox)
    with GitHttpServer(sandbox.root, username="x-access-token", password=TOKEN) as server:
        origin = f"{server.url}/remote.git"
        sandbox.git("remote", "set-url", "origin", origin, cwd=sandbox.workspace)
        first = f"git config url.file://{evil}.insteadOf {origin}"
        run = run_with(
            sandbox, server, first, "worktree", {"push-failed-branches": "true"}, AGENT_FAIL="4"
        )
    assert run.code == 1
    for repository in (evil, sandbox.remote):
        refs = sandbox.git("for-each-ref", "--format=%(refname)", cwd=repository).split()
        assert not [ref for ref in refs if "batchaction/" in ref]
    assert sandbox.tip("main") == sandbox.main_sha
    assert any(
        line.startswith("::error::could not push the kept branches")
        and "changed while the tasks ran" in line
        for line in run.out.splitlines()
    ), run.out


@pytest.mark.parametrize("isolation", ["worktree", "none"])
def test_configuration_that_does_not_steer_the_push_may_change(
    sandbox: Sandbox, isolation: str
) -> None:
    """A task that sets its own identity, adds another remote and a branch description
    (what builds and agents do) does not stop the push."""
    with GitHttpServer(sandbox.root, username="x-access-token", password=TOKEN) as server:
        origin = f"{server.url}/remote.git"
        sandbox.git("remote", "set-url", "origin", origin, cwd=sandbox.workspace)
        first = (
            "git config user.name 'Task One' && git remote add upstream https://example.invalid/x "
            "&& git config branch.main.description 'work in progress'"
        )
        run = run_with(sandbox, server, first, isolation)
    assert run.code == 0, run.out + run.err
    assert run.summary["commit"]["pushed"] is True
    assert sandbox.tip("main") != sandbox.main_sha
