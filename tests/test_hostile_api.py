"""The action against a misbehaving API and hostile text, through the real entrypoint: a 2xx
answer that is not JSON, a reply stored before a 502, mentions and links in executor text,
a TODO path that is a FIFO."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from actionhelpers import (
    COMMENT_ID,
    COMMENTER,
    PR_NUMBER,
    REPOSITORY,
    TOKEN_FORMS,
    ApiStub,
    Sandbox,
    comment_event,
    marker_executor,
    permission_answer,
    pull_answer,
    run_action,
)
from werkzeug import Request, Response

from batchaction.publishing import output_summary
from batchaction.summary import schema

BASE = f"/repos/{REPOSITORY}"
HTML_PAGE = "<html><body>502 Bad Gateway (a proxy's page)</body></html>"


def comment_run(sandbox: Sandbox, api: ApiStub, body: str, **inputs: str) -> Any:
    return run_action(
        sandbox, "issue_comment", comment_event(body), api_url=api.url,
        inputs={"executor": marker_executor(sandbox), **inputs}, timeout=30,
    )  # fmt: skip


def test_a_2xx_answer_that_is_not_json_is_refused_not_a_traceback(
    sandbox: Sandbox, api: ApiStub
) -> None:
    api.server.expect_request(
        f"{BASE}/collaborators/{COMMENTER}/permission", method="GET"
    ).respond_with_data(HTML_PAGE, status=200, content_type="text/html")
    api.serve(role="write", pull=pull_answer("feature", sandbox.feature_sha))
    run = comment_run(sandbox, api, "/task 1")
    assert run.code == 0, run.err
    assert "Traceback" not in run.err
    assert sandbox.ran() == []
    (reply,) = api.comments()
    assert "could not verify the permission" in reply
    assert "not JSON (text/html)" in reply


def test_reactions_answered_with_html_are_warnings(sandbox: Sandbox, api: ApiStub) -> None:
    api.server.expect_request(
        f"{BASE}/issues/comments/{COMMENT_ID}/reactions", method="POST"
    ).respond_with_data(HTML_PAGE, status=200, content_type="text/html")
    api.serve(role="write", pull=pull_answer("feature", sandbox.feature_sha))
    run = comment_run(sandbox, api, "/task 1")
    assert run.code == 0, run.err
    assert "Traceback" not in run.err
    assert sandbox.ran() == ["ran-1"]
    assert "::warning::could not add a reaction" in run.out


def test_a_reply_stored_before_a_502_is_not_posted_again(sandbox: Sandbox, api: ApiStub) -> None:
    """GitHub stores the comment, then the proxy answers 502: the retry finds it and stops."""
    stored: list[dict[str, Any]] = []

    def post(request: Request) -> Response:
        stored.append({"id": len(stored) + 1, "body": request.get_json()["body"]})
        if len(stored) == 1:
            return Response("bad gateway", status=502)
        return Response(json.dumps(stored[-1]), status=201, content_type="application/json")

    def listing(request: Request) -> Response:
        return Response(json.dumps(stored), status=200, content_type="application/json")

    def edit(request: Request) -> Response:  # the progress comment's edits, the final one
        stored[0]["body"] = request.get_json()["body"]
        return Response(json.dumps(stored[0]), status=200, content_type="application/json")

    api.server.expect_request(
        f"{BASE}/collaborators/{COMMENTER}/permission", method="GET"
    ).respond_with_json(permission_answer("write"))
    api.server.expect_request(f"{BASE}/pulls/{PR_NUMBER}", method="GET").respond_with_json(
        pull_answer("feature", sandbox.feature_sha)
    )
    api.server.expect_request(
        f"{BASE}/issues/{PR_NUMBER}/timeline", method="GET"
    ).respond_with_json([])
    api.server.expect_request(
        f"{BASE}/issues/{PR_NUMBER}/comments", method="POST"
    ).respond_with_handler(post)
    api.server.expect_request(
        f"{BASE}/issues/{PR_NUMBER}/comments", method="GET"
    ).respond_with_handler(listing)
    api.server.expect_request(
        f"{BASE}/issues/comments/{COMMENT_ID}/reactions", method="POST"
    ).respond_with_json({"id": 1, "content": "eyes"}, status=201)
    api.server.expect_request(f"{BASE}/issues/comments/1", method="PATCH").respond_with_handler(
        edit
    )
    run = comment_run(sandbox, api, "/task 1")
    assert run.code == 0, run.err
    assert len(stored) == 1, [c["body"][:40] for c in stored]
    assert "**batchaction** success" in stored[0]["body"]


HOSTILE = (
    "ping @octocat and @org/team, see owner/repo#5 and #6, [click](https://evil.invalid) "
    "![](https://evil.invalid/p.png) \x1b[31mred\x1b[0m <b>bold</b> "
    "https://github.com/other/repo/issues/5 www.evil.invalid GH-12 \u202eevil"
)


def test_executor_text_cannot_mention_link_or_colour_in_the_reply(
    sandbox: Sandbox, api: ApiStub
) -> None:
    api.serve(role="write", pull=pull_answer("feature", sandbox.feature_sha))
    summary = json.dumps({"status": "failed", "summary": HOSTILE})
    (sandbox.root / "hostile.txt").write_text(HOSTILE + "\n", encoding="utf-8")
    (sandbox.root / "result.json").write_text(summary, encoding="utf-8")
    executor = (
        f"cat {sandbox.root / 'hostile.txt'} && "
        f'cp {sandbox.root / "result.json"} "$BATCH_RESULT_FILE"'
    )
    run = comment_run(sandbox, api, "/task 4", executor=executor, isolation="none")
    assert run.code == 1, run.err
    (reply,) = api.comments()
    for text in (reply, run.step_summary):
        assert "octocat" in text
        for live in (
            "@octocat",
            "@org/team",
            "owner/repo#5",
            " #6",
            "](https://evil",
            "\x1b",
            "<b>",
            "https://github.com/other",
            "www.evil",
            "GH-12",
            "\u202e",
        ):
            assert live not in text, (live, text)


def test_a_todo_path_that_is_a_fifo_is_refused_at_once(sandbox: Sandbox, api: ApiStub) -> None:
    api.serve(role="write", pull=pull_answer("feature", sandbox.feature_sha))
    os.mkfifo(sandbox.workspace / "pipe.md")
    run = comment_run(sandbox, api, "/task 1", **{"todo-path": "pipe.md"})
    assert run.code == 2, run.err
    assert sandbox.ran() == []
    (reply,) = api.comments()
    assert "is a FIFO, not a TODO file" in reply


def persist_credentials(sandbox: Sandbox) -> None:
    """What actions/checkout leaves by default: the token in .git/config."""
    sandbox.git(
        "config", "http.https://github.com/.extraheader", "AUTHORIZATION: basic eC1hY2Nlc3M=",
        cwd=sandbox.workspace,
    )  # fmt: skip


def test_persisted_checkout_credentials_are_a_loud_warning(sandbox: Sandbox, api: ApiStub) -> None:
    api.serve(role="write", pull=pull_answer("feature", sandbox.feature_sha))
    persist_credentials(sandbox)
    run = comment_run(sandbox, api, "/task 1")
    assert run.code == 0, run.err
    assert "::warning::the checkout left the token in .git/config" in run.out
    assert "persist-credentials: false" in run.out


def test_persisted_checkout_credentials_refuse_fork_runs(sandbox: Sandbox, api: ApiStub) -> None:
    api.serve(role="write", pull=pull_answer("feature", sandbox.feature_sha))
    persist_credentials(sandbox)
    run = comment_run(sandbox, api, "/task 1", **{"allow-forks": "true"})
    assert run.code == 2, run.err
    assert sandbox.ran() == []
    (reply,) = api.comments()
    assert "persist-credentials: false" in reply


def test_a_head_in_the_object_store_but_off_the_branch_runs_nothing(
    sandbox: Sandbox, api: ApiStub
) -> None:
    """A force push left the approved sha in the object store (fetch-depth: 0 keeps every
    commit fetched): being known is not being on the branch."""
    side = sandbox.clone(sandbox.root / "side", "main")
    (side / "side.txt").write_text("not on feature\n")
    sandbox.git("add", "side.txt", cwd=side)
    sandbox.git("commit", "-qm", "side", cwd=side)
    sandbox.git("push", "-q", "origin", "HEAD:refs/heads/side", cwd=side)
    off_branch = sandbox.git("rev-parse", "HEAD", cwd=side)
    sandbox.git("fetch", "-q", "origin", "side", cwd=sandbox.workspace)
    api.serve(role="write", pull=pull_answer("feature", off_branch))
    run = comment_run(sandbox, api, "/task 1")
    assert run.code == 1, run.err
    assert sandbox.ran() == []
    (reply,) = api.comments()
    assert "is no longer on the branch" in reply


def shared_tree_run(sandbox: Sandbox, api: ApiStub, executor: str) -> Any:
    api.serve(role="write", pull=pull_answer("feature", sandbox.feature_sha))
    return comment_run(sandbox, api, "/task 4", executor=executor, isolation="none")


def test_the_status_commit_holds_the_todo_file_only(sandbox: Sandbox, api: ApiStub) -> None:
    """A task that leaves a file staged (a .env): the bot's commit does not sweep it in."""
    run = shared_tree_run(sandbox, api, "echo SECRET=1 > .env && git add .env")
    assert run.code == 0, run.err
    tip = sandbox.tip("feature")
    assert sandbox.git("diff-tree", "--no-commit-id", "--name-only", "-r", tip) == "TODO.md"
    assert ".env" not in sandbox.git("ls-tree", "-r", "--name-only", tip).split()
    assert run.outputs["pushed"] == "true"


def test_a_commit_that_fails_still_publishes(sandbox: Sandbox, api: ApiStub) -> None:
    """A task leaves .git/index.lock: the commit fails, and the outputs, the job summary,
    the reply and the final reaction are all still produced, saying so."""
    run = shared_tree_run(sandbox, api, "touch .git/index.lock")
    assert run.code == 1, run.err
    assert "Traceback" not in run.err
    assert run.outputs["pushed"] == "false"
    assert run.outputs["commit-sha"] == ""
    assert run.outputs["result"] == "failure"  # the task completed; its status is not pushed
    assert "**batchaction**" in run.step_summary
    assert "::error::the status commit was not pushed: could not commit" in run.out
    assert api.reactions() == ["eyes", "confused"]
    assert len(api.comments()) == 1
    assert sandbox.tip("feature") == sandbox.feature_sha


@pytest.mark.parametrize("isolation", ["worktree", "none"])
@pytest.mark.parametrize(
    "driver",
    [
        pytest.param("filter.leak.clean", id="clean-filter"),
        pytest.param("filter.leak.process", id="process-filter"),
    ],
)
def test_a_filter_a_task_plants_never_runs_in_the_actions_git(
    sandbox: Sandbox, api: ApiStub, isolation: str, driver: str
) -> None:
    """A task defines a filter in the shared git config and assigns it to every file: the
    action's own git (committing what the task left, the status commit) never runs it (in
    the container it would run as root), says so, and publishes."""
    leak = sandbox.root / "leak.txt"
    api.serve(role="write", pull=pull_answer("feature", sandbox.feature_sha))
    executor = (
        f"git config {driver} 'id -u >> {leak}; cat' && "
        "echo '* filter=leak' > .gitattributes && echo left > left.txt"
    )
    run = comment_run(sandbox, api, "/task 4", executor=executor, isolation=isolation)
    assert "Traceback" not in run.err
    assert not leak.exists(), leak.read_text()
    assert "configured a filter, merge or diff driver" in run.out + json.dumps(run.summary)
    assert run.code == 1
    assert len(api.comments()) == 1


def test_a_filter_configured_before_the_run_keeps_working(sandbox: Sandbox, api: ApiStub) -> None:
    """Drivers the repository had before the tasks started (Git LFS, say) are not a task's:
    a task may assign them to its files, and the action's git runs them."""
    ran = sandbox.root / "filter-ran"
    sandbox.git("config", "filter.keep.clean", f"touch {ran}; cat", cwd=sandbox.workspace)
    api.serve(role="write", pull=pull_answer("feature", sandbox.feature_sha))
    executor = "echo '*.txt filter=keep' > .gitattributes && echo left > left.txt"
    run = comment_run(sandbox, api, "/task 4", executor=executor, isolation="worktree")
    assert run.code == 0, run.err
    assert ran.exists()
    assert "left.txt" in sandbox.git("ls-tree", "-r", "--name-only", sandbox.tip("feature"))


def test_the_summary_output_stays_within_githubs_limits(sandbox: Sandbox, api: ApiStub) -> None:
    """The whole summary goes to the file ``summary-path`` names (out of git); the output
    is trimmed past its budget, still valid against the schema."""
    api.serve(role="write", pull=pull_answer("feature", sandbox.feature_sha))
    noisy = 'i=0; while [ $i -lt 200 ]; do echo "line $i of a long log"; i=$((i+1)); done; exit 1'
    run = comment_run(sandbox, api, "/task 1, 4, 5", executor=noisy, isolation="none")
    assert run.code == 1, run.err
    whole = json.loads(Path(run.outputs["summary-path"]).read_text())
    assert whole == run.summary
    assert any(t["log_tail"] for t in whole["tasks"])
    assert ".batchaction" not in sandbox.git("status", "--porcelain", cwd=sandbox.workspace)
    for budget in (len(json.dumps(whole)) - 1, 3000):
        trimmed = json.loads(output_summary(whole, budget))
        jsonschema.validate(trimmed, schema())
        assert trimmed["counts"] == whole["counts"]
        assert all(not t["log_tail"] for t in trimmed["tasks"])
    least = json.loads(output_summary(whole, 100))
    assert (least["counts"], least["result"]) == (whole["counts"], whole["result"])


def test_a_huge_log_costs_the_job_log_an_excerpt(sandbox: Sandbox, api: ApiStub) -> None:
    """A task prints 3 MB on one line (a progress bar redrawn with \\r, no line break): the
    job log gets its head and tail, a line saying what was left out and where the whole log
    is; the whole log is in the log-dir output's folder, out of git."""
    api.serve(role="write", pull=pull_answer("feature", sandbox.feature_sha))
    executor = "head -c 3000000 /dev/zero | tr '\\\\0' '\\\\r'; echo; echo THE-END"
    run = comment_run(sandbox, api, "/task 4", executor=executor)
    assert run.code == 0, run.err
    assert len(run.out) < 200_000
    assert "bytes of this log left out here; the whole log (3,000,009 bytes) is" in run.out
    assert "THE-END" in run.out  # the tail
    log_dir = Path(run.outputs["log-dir"])
    assert log_dir.is_relative_to(sandbox.workspace)
    assert (log_dir / "task-4.log").stat().st_size == 3_000_009
    assert ".batchaction" not in sandbox.git("status", "--porcelain", cwd=sandbox.workspace)


def test_a_task_that_prints_the_token_cannot_post_it(sandbox: Sandbox, api: ApiStub) -> None:
    """The action's own environment holds the token, and a task can read it from
    /proc/$PPID/environ: whatever it prints, no form of the token reaches the reply, the job
    summary, the outputs or the summary file."""
    api.serve(role="write", pull=pull_answer("feature", sandbox.feature_sha))
    forms = " ".join(TOKEN_FORMS)
    executor = f"tr '\\0' '\\n' < /proc/$PPID/environ | grep -i token; echo {forms}; exit 1"
    run = comment_run(sandbox, api, "/task 4", executor=executor)
    assert run.code == 1, run.err
    (reply,) = api.comments()
    published = [reply, run.step_summary, *run.outputs.values()]
    published.append(Path(run.outputs["summary-path"]).read_text())
    for text in published:
        for form in TOKEN_FORMS:
            assert form not in text
    assert "***" in reply


def test_a_task_that_turns_its_log_into_a_fifo_does_not_hang_the_action(
    sandbox: Sandbox, api: ApiStub
) -> None:
    api.serve(role="write", pull=pull_answer("feature", sandbox.feature_sha))
    executor = (
        'L=$(ls -d "$GITHUB_WORKSPACE"/.batchaction/logs/run-*/task-4.log); '
        'rm "$L"; mkfifo "$L"; exit 1'
    )
    run = comment_run(sandbox, api, "/task 4", executor=executor, isolation="none")
    assert run.code == 1, run.err
    assert run.outputs["result"] == "failure"
    assert len(api.comments()) == 1


def test_a_tracked_batchaction_symlink_sends_no_write_elsewhere(
    sandbox: Sandbox, api: ApiStub
) -> None:
    """The pull request commits .batchaction/summary.json -> a file outside: the summary
    and logs go to a folder of batchaction's own instead, and the outside file is intact."""
    outside = sandbox.root / "victim.txt"
    outside.write_text("untouched\n")
    feature = sandbox.clone(sandbox.root / "pr", "feature")
    (feature / ".batchaction").mkdir()
    (feature / ".batchaction" / "summary.json").symlink_to(outside)
    sandbox.git("add", ".batchaction", cwd=feature)
    sandbox.git("commit", "-qm", "plant", cwd=feature)
    sandbox.git("push", "-q", "origin", "HEAD:feature", cwd=feature)
    head = sandbox.git("rev-parse", "HEAD", cwd=feature)
    api.serve(role="write", pull=pull_answer("feature", head))
    run = comment_run(sandbox, api, "/task 4")
    assert run.code == 0, run.err
    assert outside.read_text() == "untouched\n"
    assert not Path(run.outputs["summary-path"]).is_relative_to(sandbox.workspace)
    assert not Path(run.outputs["log-dir"]).is_relative_to(sandbox.workspace)


def test_skipped_details_and_titles_are_cut_from_a_large_summary() -> None:
    detail = "x" * 60_000
    summary = {
        "tasks": [{"number": 1, "title": "t" * 60_000, "reason": None, "log_tail": []}],
        "skipped": [{"number": n, "reason": "not-a-task", "detail": detail} for n in range(30)],
        "warnings": [], "status_updates_failed": [], "counts": {}, "result": "success",
    }  # fmt: skip
    text = output_summary(summary, 100_000)
    assert len(text) <= 100_000
    assert json.loads(text)["skipped"][0]["detail"] is None


def test_a_branch_deleted_during_the_run_is_not_created_again(
    sandbox: Sandbox, api: ApiStub
) -> None:
    """The PR branch is deleted while the task runs: the status commit is not pushed (that
    would re-create the branch), the run says so, and pushed is false."""
    api.serve(role="write", pull=pull_answer("feature", sandbox.feature_sha))
    remote = shlex.quote(str(sandbox.remote))
    executor = f"git --git-dir={remote} update-ref -d refs/heads/feature"
    run = comment_run(sandbox, api, "/task 4", executor=executor, isolation="none")
    assert run.code == 1, run.err
    assert "refs/heads/feature" not in sandbox.refs()
    assert run.outputs["pushed"] == "false"
    assert "::error::the status commit was not pushed" in run.out
