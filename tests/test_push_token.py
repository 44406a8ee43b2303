"""``push-token``: the pushes to the pull request's branch use it, everything else the
github-token, end to end through ``batchaction action``.

A push made with the workflow's GITHUB_TOKEN starts no workflow, so the commit batchaction
pushes would get no CI; a GitHub App installation token or a fine-grained token given as
``push-token`` does. Against a real git server over HTTP (``git http-backend`` behind basic
auth) that accepts both tokens, every request is recorded with the credential it carried:
fetches carry the github-token, pushes of the PR's branch the push-token, pushes of the
kept branches (``push-failed-branches``) the github-token. The push-token is a secret like
the github-token: an executor that reads every ancestor's ``/proc/<pid>/environ`` and
``cmdline`` finds neither, no process's command line or environment holds it while git
pushes, it is masked and never printed. A push-token the server refuses (401, or 403 for a
token without contents: write) fails the run with an error that says so, and the statuses
are still in the job summary and the reply.
"""

from __future__ import annotations

import base64
import re
import shlex
from pathlib import Path

import pytest
from actionhelpers import (
    BOT,
    PR_NUMBER,
    TOKEN,
    ActionRun,
    ApiStub,
    Sandbox,
    comment_event,
    pull_answer,
    run_action,
    status_of,
)
from githttp import BackgroundProbe, GitHttpServer, ProcessProbe, Seen
from test_token_isolation import findings, spy_executor, the_action

from batchaction.inert import secret_forms

PUSH_TOKEN = "ghs_pushtoken456appinstallation"
WRONG_PUSH_TOKEN = "ghs_expiredtoken789"
FORMS = secret_forms(TOKEN) + secret_forms(PUSH_TOKEN) + secret_forms(WRONG_PUSH_TOKEN)
WHO = {TOKEN: "github-token", PUSH_TOKEN: "push-token", WRONG_PUSH_TOKEN: "wrong push-token"}
BRANCH_REF = re.compile(rb"refs/heads/[A-Za-z0-9/._-]+")


def credential(seen: Seen) -> str:
    """Which token a request carried: a name from ``WHO``, or "none"."""
    scheme, _, value = seen.authorization.partition(" ")
    if scheme.lower() != "basic":
        return "none"
    password = base64.b64decode(value).decode().partition(":")[2]
    return WHO.get(password, "unknown")


def used(server: GitHttpServer, service: str) -> set[str]:
    """The credentials of the authorized requests of ``service`` (git-upload-pack: fetches,
    git-receive-pack: pushes)."""
    return {credential(s) for s in server.seen if s.authorized and service in s.path}


def pushed_refs(server: GitHttpServer) -> list[tuple[str, str]]:
    """(branch, credential) of each ref update pushed (the commands a push POSTs first)."""
    updates = []
    for seen in server.seen:
        if seen.method == "POST" and seen.path.endswith("/git-receive-pack") and seen.authorized:
            for ref in BRANCH_REF.findall(seen.body):
                updates.append((ref.decode().removeprefix("refs/heads/"), credential(seen)))
    return updates


def printed_unmasked(run: ActionRun) -> list[str]:
    """Lines of the action's output, other than its ``::add-mask::`` commands, that hold a
    form of a token."""
    lines = (run.out + run.err + run.step_summary).splitlines()
    return [
        line for line in lines if "::add-mask::" not in line and any(form in line for form in FORMS)
    ]


def serve_git(
    sandbox: Sandbox,
    probe: ProcessProbe | None = None,
    *,
    passwords: tuple[str, ...] = (),
    no_push: tuple[str, ...] = (),
) -> GitHttpServer:
    """The git server for the sandbox's remote: the github-token always accepted, and
    ``passwords``; ``no_push`` may read but not push (403)."""
    return GitHttpServer(
        sandbox.root,
        username="x-access-token",
        password=TOKEN,
        on_authorized=(lambda method, path: probe.scan()) if probe is not None else None,
        passwords=passwords,
        no_push=no_push,
    )


def run_with(
    sandbox: Sandbox,
    api: ApiStub,
    server: GitHttpServer,
    command: str,
    *,
    executor: str,
    inputs: dict[str, str],
    extra_env: dict[str, str] | None = None,
) -> ActionRun:
    """``command`` commented on the pull request (head: feature), the workspace's origin on
    the git server, GITHUB_SERVER_URL naming it."""
    sandbox.git("remote", "set-url", "origin", f"{server.url}/remote.git", cwd=sandbox.workspace)
    api.serve(role="write", pull=pull_answer("feature", sandbox.feature_sha))
    return run_action(
        sandbox,
        "issue_comment",
        comment_event(command),
        api_url=api.url,
        inputs={"executor": executor, **inputs},
        extra_env={"GITHUB_SERVER_URL": server.url, **(extra_env or {})},
    )


def agent() -> str:
    return shlex.quote(str(Path(__file__).resolve().parent / "fixtures" / "executors" / "agent.sh"))


def race_or_wait(sandbox: Sandbox, isolation: str) -> str:
    """Executor prefix. With worktrees, task 2 (after task 1) waits (up to 30 s) until the
    integrated work of task 1 was pushed during the run (``push-every: 1``). In one work
    tree, task 1 pushes someone else's commit to the remote first, so the final push loses
    the race: fetch, replay, push again."""
    plain = "env -u GIT_DIR -u GIT_WORK_TREE -u GIT_INDEX_FILE git"
    remote = shlex.quote(str(sandbox.remote))
    if isolation == "worktree":
        return (
            'if [ {number} = 2 ]; then i=0; while [ "$(' + plain + f" --git-dir={remote} "
            f'rev-parse refs/heads/feature)" = {sandbox.feature_sha} ] && [ $i -lt 300 ]; '
            "do sleep 0.1; i=$((i+1)); done; fi"
        )
    racer = sandbox.clone(sandbox.root / "racer", "feature")
    (racer / "racer.txt").write_text("pushed by someone else during the run\n", encoding="utf-8")
    sandbox.git("add", "racer.txt", cwd=racer)
    sandbox.git("commit", "--quiet", "-m", "someone else's commit", cwd=racer)
    return (
        f"if [ {{number}} = 1 ]; then {plain} -C {shlex.quote(str(racer))} push --quiet "
        f"{remote} HEAD:feature; fi"
    )


@pytest.mark.parametrize("isolation", ["worktree", "none"])
def test_pushes_use_the_push_token_and_fetches_the_github_token(
    sandbox: Sandbox, api: ApiStub, isolation: str
) -> None:
    """``/task 1, 2, 4`` with a push-token: the head is fetched with the github-token; with
    worktrees the integrated work is pushed during the run and again at the end, in one work
    tree the final push races, fetches and pushes again: every push carries the
    push-token, every fetch the github-token, the API only ever the github-token. An
    executor that reads every ancestor's environment and command line finds no form of
    either token, no process shows one while git talks to the server, and the action's
    output holds them only in its ``::add-mask::`` commands."""
    probe = ProcessProbe(FORMS, exempt=(b"INPUT_GITHUB-TOKEN=", b"INPUT_PUSH-TOKEN="))
    with serve_git(sandbox, probe, passwords=(PUSH_TOKEN,)) as server:
        executor = f"{race_or_wait(sandbox, isolation)}; {spy_executor(sandbox)}"
        with BackgroundProbe(probe):
            run = run_with(
                sandbox,
                api,
                server,
                "/task 1, 2, 4",
                executor=executor,
                inputs={
                    "push-token": PUSH_TOKEN,
                    "isolation": isolation,
                    "max-parallel": "2" if isolation == "worktree" else "1",
                    "push-every": "1",
                },
                extra_env={"SPY_OUT": str(sandbox.markers), "AGENT_SLEEP": "0.05"},
            )
    assert run.code == 0, run.out + run.err
    tip = sandbox.tip("feature")
    todo = sandbox.show(tip, "TODO.md")
    assert [status_of(todo, n) for n in (1, 2, 4)] == ["[COMPLETED]"] * 3
    assert sandbox.people(tip) == (BOT, BOT)
    # Who carried what.
    assert used(server, "git-upload-pack") == {"github-token"}
    assert used(server, "git-receive-pack") == {"push-token"}
    pushes = pushed_refs(server)
    assert {cred for _, cred in pushes} == {"push-token"}
    assert {branch for branch, _ in pushes} == {"feature"}
    if isolation == "worktree":
        assert len(pushes) >= 2, pushes  # during the run, then at the end
    else:
        assert "someone else's commit" in sandbox.subjects(f"{sandbox.feature_sha}..{tip}")
        fetches = [s for s in server.seen if s.authorized and s.path.endswith("git-upload-pack")]
        assert len(fetches) >= 2, [s.path for s in server.seen]  # the head, then the race
    bearer = {h.get("Authorization") for h in api.headers()}
    assert bearer == {f"Bearer {TOKEN}"}, bearer
    # Nowhere to be read.
    tasks = findings(sandbox)
    assert sorted(tasks) == [1, 2, 4]
    assert the_action(tasks)["environ"] == "ok"  # read (as root), and searched below
    leaks = [
        str(path.relative_to(sandbox.markers))
        for path in sandbox.markers.rglob("*")
        if path.is_file() and any(form.encode() in path.read_bytes() for form in FORMS)
    ]
    assert leaks == []
    assert probe.found == []
    assert probe.saw("send-pack"), sorted(probe.commands)  # it looked while git pushed
    assert printed_unmasked(run) == []
    masked = {
        line.split("::add-mask::", 1)[1] for line in run.out.splitlines() if "::add-mask::" in line
    }
    assert set(secret_forms(PUSH_TOKEN)) <= masked
    stored = (sandbox.workspace / ".git" / "config").read_text(encoding="utf-8")
    assert not any(form in stored for form in FORMS)


def test_the_push_token_wins_over_credentials_the_checkout_left(
    sandbox: Sandbox, api: ApiStub
) -> None:
    """actions/checkout left the github-token in ``.git/config`` (``persist-credentials``
    on): fetches go on with it, as without a push-token, and the push carries the
    push-token all the same (the checkout's header is emptied for that push only)."""
    with serve_git(sandbox, passwords=(PUSH_TOKEN,)) as server:
        header = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
        sandbox.git(
            "config", f"http.{server.url}/.extraheader", f"AUTHORIZATION: basic {header}",
            cwd=sandbox.workspace,
        )  # fmt: skip
        run = run_with(
            sandbox, api, server, "/task 1, 4", executor=f"exec {agent()} {{number}}",
            inputs={"push-token": PUSH_TOKEN, "isolation": "none", "max-parallel": "1"},
        )  # fmt: skip
    assert run.code == 0, run.out + run.err
    assert "persist-credentials: false" in run.out  # the warning stands
    todo = sandbox.show(sandbox.tip("feature"), "TODO.md")
    assert [status_of(todo, n) for n in (1, 4)] == ["[COMPLETED]"] * 2
    assert used(server, "git-upload-pack") == {"github-token"}
    assert used(server, "git-receive-pack") == {"push-token"}
    # The checkout's own credentials stay as they were.
    stored = sandbox.git("config", f"http.{server.url}/.extraheader", cwd=sandbox.workspace)
    assert stored == f"AUTHORIZATION: basic {header}"


def test_kept_branches_are_pushed_with_the_github_token(sandbox: Sandbox, api: ApiStub) -> None:
    """``push-failed-branches: true``: the work of a failed task goes to
    ``batchaction/pr-<N>/task-<n>`` with the github-token (no workflow runs on failed work),
    the PR's branch with the push-token."""
    with serve_git(sandbox, passwords=(PUSH_TOKEN,)) as server:
        run = run_with(
            sandbox, api, server, "/task 1, 4", executor=f"exec {agent()} {{number}}",
            inputs={
                "push-token": PUSH_TOKEN, "isolation": "worktree", "push-failed-branches": "true"
            },
            extra_env={"AGENT_FAIL": "1", "AGENT_SLEEP": "0.05"},
        )  # fmt: skip
    assert run.code == 1, run.out + run.err
    kept = f"batchaction/pr-{PR_NUMBER}/task-1"
    assert sandbox.tip(kept)
    assert set(pushed_refs(server)) == {("feature", "push-token"), (kept, "github-token")}


@pytest.mark.parametrize(
    ("status", "isolation"), [(401, "none"), (403, "worktree")], ids=["401-none", "403-worktree"]
)
def test_a_refused_push_token_loses_nothing_and_says_so(
    sandbox: Sandbox, api: ApiStub, status: int, isolation: str
) -> None:
    """401: the server does not know the push-token (expired, as an App token is after an
    hour, revoked, mistyped); 403: it knows it, but it may not write (GitHub's "Permission to
    ... denied"). Nothing is lost: the push is made again with github-token (which starts no
    workflow), and a warning says the push-token was refused and why; the refused token is
    printed nowhere."""
    token = WRONG_PUSH_TOKEN if status == 401 else PUSH_TOKEN
    refusing = (PUSH_TOKEN,) if status == 403 else ()
    with serve_git(sandbox, passwords=refusing, no_push=refusing) as server:
        run = run_with(
            sandbox, api, server, "/task 1, 4", executor=f"exec {agent()} {{number}}",
            inputs={"push-token": token, "isolation": isolation, "max-parallel": "1"},
            extra_env={"AGENT_SLEEP": "0.05"},
        )  # fmt: skip
    assert run.code == 0, run.out + run.err
    summary = run.summary
    assert summary["result"] == "success"
    assert summary["commit"]["pushed"] is True
    assert sandbox.tip("feature") == summary["commit"]["sha"]
    warnings = [line for line in run.out.splitlines() if line.startswith("::warning::")]
    said = [line for line in warnings if f"the push-token was refused (HTTP {status})" in line]
    assert said, run.out
    assert "Pushed with github-token instead" in said[0]
    assert "contents: write" in said[0]
    # Said where the maintainer looks, too: no CI will run on the pushed head.
    assert summary["commit"]["push_token_refused"] is True
    assert any("the push-token was refused" in w for w in summary["warnings"])
    (reply,) = api.comments()
    for text in (run.step_summary, reply):
        assert "push-token refused: pushed with github-token, no CI on it" in text
    pushes = [credential(s) for s in server.seen if "receive-pack" in s.path]
    assert WHO[token] in pushes
    assert pushes[-1] == "github-token"
    assert used(server, "git-upload-pack") == {"github-token"}
    assert printed_unmasked(run) == []


def test_a_push_neither_token_may_make_fails_the_run_and_says_why(
    sandbox: Sandbox, api: ApiStub
) -> None:
    """Both tokens refused: the run fails (exit 1, result failure), the error names the
    push-token's refusal, the branch is untouched, and the statuses are still in the job
    summary and the reply (which say "not pushed")."""
    with serve_git(sandbox, passwords=(PUSH_TOKEN,), no_push=(PUSH_TOKEN, TOKEN)) as server:
        run = run_with(
            sandbox, api, server, "/task 1, 4", executor=f"exec {agent()} {{number}}",
            inputs={"push-token": PUSH_TOKEN, "isolation": "none", "max-parallel": "1"},
            extra_env={"AGENT_SLEEP": "0.05"},
        )  # fmt: skip
    assert run.code == 1, run.out + run.err
    summary = run.summary
    assert summary["result"] == "failure"
    assert summary["commit"]["pushed"] is False
    assert "the push-token was refused (HTTP 403)" in summary["commit"]["error"]
    assert sandbox.tip("feature") == sandbox.feature_sha
    (reply,) = api.comments()
    for text in (run.step_summary, reply):
        assert "not pushed" in text
        assert "Lay the foundation" in text
    assert printed_unmasked(run) == []
