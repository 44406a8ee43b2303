"""The pull request as the run's control room: one progress comment, posted when the run is
accepted and edited as tasks start and finish, finalised on every way out (success, failure,
the run deadline, an interrupt, an error); the check run on the head and on the pushed commit;
the ``finalize`` step of a cancelled job. Through the real entrypoint, a bare remote and the
loopback API."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from actionhelpers import (
    BOT_NAME,
    CHECK_RUN_ID,
    COMMENTER,
    PR_NUMBER,
    REPLY_ID,
    REPOSITORY,
    RUN_ID,
    TOKEN,
    ApiStub,
    Sandbox,
    comment_event,
    pull_answer,
    run_action,
    start_action,
)
from summaryruns import mermaid_block, read_graph

from batchaction import planner
from batchaction.actioncontext import Context
from batchaction.checkrun import CheckRun
from batchaction.finalize import open_live
from batchaction.ghevent import Trigger
from batchaction.github import GitHub
from batchaction.liveview import MARK, Board, render_live
from batchaction.planner import Plan
from batchaction.settings import Settings
from batchaction.taskrun import Reporter
from batchaction.todo import parse_todo
from batchaction.workflow import Workflow

RUN_KEY = f"{RUN_ID}-0"


def state_of(body: str) -> str | None:
    found = MARK.search(body)
    return found["state"] if found else None


def serve(api: ApiStub, sandbox: Sandbox) -> None:
    api.serve(role="write", pull=pull_answer("feature", sandbox.feature_sha))


def act(sandbox: Sandbox, api: ApiStub, command: str, **inputs: str) -> Any:
    serve(api, sandbox)
    return run_action(
        sandbox, "issue_comment", comment_event(command), api_url=api.url,
        inputs={"progress-interval": "1s", **inputs}, timeout=90,
    )  # fmt: skip


def posted(api: ApiStub) -> list[str]:
    return [
        str(b["body"])
        for m, p, b in api.requests()
        if m == "POST" and p.endswith(f"/issues/{PR_NUMBER}/comments")
    ]


def test_one_comment_is_posted_then_edited_as_tasks_finish_and_finalised(
    sandbox: Sandbox, api: ApiStub
) -> None:
    run = act(sandbox, api, "/task 1-4", executor="sleep 1.5")
    assert run.code == 0, (run.err, run.out)
    (first,) = posted(api)  # created once
    assert state_of(first) == "running"
    assert "running `/task 1-4`: 0 of 4 finished" in first
    assert first.count("⌛ waiting") == 4  # the plan: every task, by wave
    edits = api.edits()
    assert len(edits) >= 2, edits  # at least one update while running, then the final one
    assert all(state_of(body) == "running" for body in edits[:-1])
    assert any("🏃 running" in body for body in edits[:-1])
    final = edits[-1]
    assert state_of(final) == "done"
    assert "**batchaction** success: 4 tasks" in final
    assert "🏃" not in final
    assert "⌛" not in final
    assert "[Run log](" in final
    # The dependency graph, well-formed, in the live edits, the final reply and the job summary.
    for text in (edits[0], final, run.step_summary):
        graph = read_graph(mermaid_block(text.split("\n", 1)[1]))
        assert set(graph["edges"]) == {(1, 2), (1, 3)}
        assert sorted(graph["labels"]) == [1, 2, 3, 4]
    assert sorted(read_graph(mermaid_block(final))["classes"]["completed"]) == [1, 2, 3, 4]
    # Throttled: at most one edit a second (progress-interval), over a run of a few seconds.
    summary = json.loads(run.outputs["summary-json"])
    assert len(edits) <= summary["duration_s"] / 1.0 + 3


def test_a_failed_run_finalises_the_comment_and_the_check_run(
    sandbox: Sandbox, api: ApiStub
) -> None:
    run = act(sandbox, api, "/task 1-3", executor="exit 3", **{"check-run": "true"})
    assert run.code == 1
    final = api.edits()[-1]
    assert state_of(final) == "done"
    assert "**batchaction** failure" in final
    assert "blocked by failed task 1" in final
    check = api.check()
    assert check["status"] == "completed"
    assert check["conclusion"] == "failure"
    assert "blocked by failed task 1" in check["output"]["summary"]


def test_the_check_run_goes_on_the_head_and_on_the_pushed_commit(
    sandbox: Sandbox, api: ApiStub
) -> None:
    run = act(sandbox, api, "/task 4", executor="true", **{"check-run": "true"})
    assert run.code == 0, (run.err, run.out)
    pushed = sandbox.tip("feature")
    assert pushed != sandbox.feature_sha
    calls = api.check_requests()
    assert [method for method, _ in calls] == ["POST", "PATCH", "POST"]
    (_, created), (_, completed), (_, on_pushed) = calls
    assert created["name"] == "/task 4"
    assert created["head_sha"] == sandbox.feature_sha
    assert created["status"] == "in_progress"
    assert created["external_id"] == RUN_KEY
    assert created["details_url"].endswith(f"/actions/runs/{RUN_ID}")
    assert completed["status"] == "completed"
    assert completed["conclusion"] == "success"
    assert "| **4** Independent chore |" in completed["output"]["summary"]
    assert on_pushed["head_sha"] == pushed
    assert on_pushed["conclusion"] == "success"
    assert on_pushed["name"] == "/task 4"
    assert on_pushed["status"] == "completed"
    # The live comment names the check run, for the finalize step.
    assert f"check={CHECK_RUN_ID}" in posted(api)[0]


def test_the_run_deadline_finalises_the_comment_and_times_out_the_check(
    sandbox: Sandbox, api: ApiStub
) -> None:
    run = act(
        sandbox, api, "/task 1-4", executor="sleep 30",
        **{"check-run": "true", "run-deadline": "2s", "grace": "1s"},
    )  # fmt: skip
    assert run.code == 1
    final = api.edits()[-1]
    assert state_of(final) == "done"
    assert "Run deadline reached" in final
    assert api.check()["conclusion"] == "timed_out"


def wait_for(condition: Any, proc: subprocess.Popen[str], what: str, limit: float = 60) -> None:
    end = time.monotonic() + limit
    while not condition():
        assert proc.poll() is None, f"the action ended before {what}"
        assert time.monotonic() < end, f"no {what}"
        time.sleep(0.1)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupt_finalises_both_before_the_grace_period_is_over(
    sandbox: Sandbox, api: ApiStub, signum: int
) -> None:
    serve(api, sandbox)
    # The executor ignores SIGTERM: the action waits the whole grace period for it.
    proc = start_action(
        sandbox, "issue_comment", comment_event("/task 1-4"), api_url=api.url,
        inputs={"executor": "trap '' TERM; sleep 60", "check-run": "true", "grace": "20s",
                "progress-interval": "1s"},
    )  # fmt: skip
    try:
        wait_for(lambda: any("🏃 running" in e for e in api.edits()), proc, "running edit")
        proc.send_signal(signum)

        def cancelled() -> bool:
            return api.check().get("conclusion") == "cancelled" and any(
                state_of(e) == "done" and "interrupted" in e for e in api.edits()
            )

        # Both are final while the task still has most of its 20 s grace period.
        wait_for(cancelled, proc, "cancelled comment and check run")
        assert proc.wait(timeout=60) == 128 + signum
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert len(posted(api)) == 1
    final = api.edits()[-1]
    assert state_of(final) == "done"
    assert "**batchaction** interrupted" in final
    assert api.check()["conclusion"] == "cancelled"


def test_an_error_after_acceptance_finalises_the_comment_and_the_check_run(
    api: ApiStub, tmp_path: Path
) -> None:
    """``Context.abandon`` (what the action calls when an error escapes a run it accepted)
    leaves neither the comment nor the check run saying "running"."""
    api.serve(role="write")
    trigger = Trigger("comment", owner="octo-org", repo="hello-tasks", pr_number=PR_NUMBER,
                      comment_id=4242, sender=COMMENTER)  # fmt: skip
    gh = GitHub(api.url, TOKEN)
    out = tmp_path / "log"
    with out.open("w", encoding="utf-8") as log:
        ctx = Context({"GITHUB_RUN_ID": RUN_ID}, Workflow({}, log), tmp_path, TOKEN, gh, trigger)

        plan = Plan((1,), ((1,),), (), (), (), {}, {}, {}, ())
        open_live(ctx, Settings(check_run=True), plan, Reporter(), "a" * 40)
        ctx.abandon("the disk is full")
        gh.close()
    final = api.edits()[-1]
    assert state_of(final) == "done"
    assert "stopped before it could report" in final
    assert "the disk is full" in final
    assert api.check()["conclusion"] == "failure"
    assert isinstance(ctx.check, CheckRun)
    assert ctx.check.completed == "failure"


def test_the_actions_own_comments_never_start_a_run(sandbox: Sandbox, api: ApiStub) -> None:
    act(sandbox, api, "/task 4", executor="true")
    bodies = [*posted(api), *api.edits()]
    assert bodies
    for body in bodies:
        for sender in ({"login": BOT_NAME, "type": "Bot"}, {"login": COMMENTER, "type": "User"}):
            api.server.clear_log()
            event = comment_event("/task 4")
            event["comment"]["body"] = body
            event["sender"] = sender
            again = run_action(
                sandbox, "issue_comment", event, api_url=api.url,
                inputs={"executor": "true"}, timeout=60,
            )  # fmt: skip
            assert again.code == 0
            assert "nothing to run" in again.out
            assert api.requests() == []


def comment_answer(comment_id: int, body: str, user: dict[str, str]) -> dict[str, Any]:
    return {
        "id": comment_id,
        "body": body,
        "user": user,
        "created_at": "2030-01-01T00:00:00Z",
        "updated_at": "2030-01-01T00:00:00Z",
        "html_url": f"https://github.com/{REPOSITORY}/pull/{PR_NUMBER}#issuecomment-{comment_id}",
    }


def test_the_finalize_step_cancels_only_this_runs_comment_and_check_run(
    sandbox: Sandbox, api: ApiStub
) -> None:
    bot = {"login": BOT_NAME, "type": "Bot"}
    human = {"login": "mallory", "type": "User"}
    ours = f"<!-- batchaction:progress run={RUN_KEY} state=running check={CHECK_RUN_ID} -->"
    live = f"{ours}\n🏃 **batchaction** running `/task 1-4`: 1 of 4 finished\n\n| table |\n"
    listed = [
        comment_answer(REPLY_ID, live, bot),
        # A commenter's copy of the mark, naming someone else's check run: left alone.
        comment_answer(8001, live.replace(str(CHECK_RUN_ID), "6002"), human),
        # Another run's comment, and one already final.
        comment_answer(8002, live.replace(RUN_KEY, "111-1"), bot),
        comment_answer(8003, live.replace("state=running", "state=done"), bot),
    ]
    base = f"/repos/{REPOSITORY}"
    api.server.expect_request(
        f"{base}/issues/{PR_NUMBER}/comments", method="GET"
    ).respond_with_json(listed)
    api.server.expect_request(f"{base}/check-runs/{CHECK_RUN_ID}", method="GET").respond_with_json(
        {"id": CHECK_RUN_ID, "external_id": RUN_KEY, "status": "in_progress", "name": "/task 1-4"}
    )
    api.serve(role="write")
    run = run_action(
        sandbox, "issue_comment", comment_event("/task 1-4"), api_url=api.url,
        inputs={"finalize": "true"}, timeout=60,
    )  # fmt: skip
    assert run.code == 0, (run.err, run.out)
    edited = [(p, b) for m, p, b in api.requests() if m == "PATCH"]
    paths = sorted(p for p, _ in edited)
    assert paths == [f"{base}/check-runs/{CHECK_RUN_ID}", f"{base}/issues/comments/{REPLY_ID}"]
    (body,) = api.edits()
    assert state_of(body) == "cancelled"
    assert "🚫 **batchaction** cancelled" in body
    assert "| table |" in body
    assert "🏃" not in body
    assert api.check()["conclusion"] == "cancelled"
    assert not re.search(r"POST .*/check-runs", str(api.requests()))
    assert sandbox.tip("feature") == sandbox.feature_sha  # nothing ran, nothing pushed


HOSTILE = """# TODO

### 1. @octo-org/admins <img src=x onerror=alert(1)> [click](https://evil.example) #7
- **Status**: [NOT STARTED]
- **Dependencies**: None

### 2. ```mermaid``` | pipe `code` ::error::x
- **Status**: [NOT STARTED]
- **Dependencies**: 1
"""


def test_titles_in_the_live_comment_are_inert() -> None:
    doc = parse_todo(HOSTILE)
    board = Board(planner.plan(doc.tasks, [1, 2]), "/task", "b" * 40, "https://run")
    text = render_live(board, 0.0)
    assert "<img" not in text
    assert "[click](" not in text
    assert "@octo-org/admins" not in text  # a mention would notify the team
    fences = [line for line in text.splitlines() if line.lstrip().startswith("```")]
    assert set(fences) <= {"```mermaid", "```"}  # a title opens no fence of its own
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert all(line.count(" | ") == 4 for line in rows[2:]), rows  # no cell split by a |
