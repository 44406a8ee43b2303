"""The live progress comment and the check run when things go wrong: a huge executor summary,
a refused or slow edit, an interrupt while the comment is being posted, a check run stored
behind a 502. Through the real entrypoint, a bare remote and the loopback API (threaded where
a request must hang while others are answered)."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from actionhelpers import (
    CHECK_RUN_ID,
    REPLY_ID,
    REPOSITORY,
    ApiStub,
    Sandbox,
    _edited_comment,
    comment_event,
    pull_answer,
    start_action,
)
from pytest_httpserver import HTTPServer
from test_live_progress import act, posted, state_of
from werkzeug import Request, Response

from batchaction.summary import truncate_markdown

BASE = f"/repos/{REPOSITORY}"


def test_one_huge_executor_summary_does_not_hide_the_other_tasks(
    sandbox: Sandbox, api: ApiStub
) -> None:
    """A task may report a summary up to 1 MiB: its reason cell is cut, so the reply, the
    job summary and the check run still hold every task's row."""
    huge = json.dumps({"status": "completed", "summary": "@a " * 20000})
    executor = (
        f"if [ {{number}} = 4 ]; then printf '%s' '{huge}' > \"$BATCH_RESULT_FILE\"; fi; sleep 0.5"
    )
    run = act(sandbox, api, "/task 1-4", executor=executor, **{"check-run": "true"})
    assert run.code == 0, (run.err, run.out)
    (reply,) = api.comments()
    for text in (reply, run.step_summary, api.check()["output"]["summary"]):
        for row in ("**1** Lay the", "**2** Build on", "**3** Decorate", "**4** Independent"):
            assert row in text
        assert "truncated" not in text
    assert all(len(body) < 65_536 for body in api.edits())


def test_a_refused_final_edit_leaves_no_comment_saying_running(
    sandbox: Sandbox, api: ApiStub
) -> None:
    """The final edit is refused (403: GitHub's secondary rate limit answers so): the summary
    goes to a new comment, and the progress comment is edited once more, to point at it."""
    answers: list[int] = []

    def patch(request: Request) -> Response:
        body = (request.get_json(silent=True) or {}).get("body", "")
        if state_of(body) == "done" and 403 not in answers:
            answers.append(403)
            return Response(json.dumps({"message": "secondary rate limit"}), 403)
        answers.append(200)
        response: Response = _edited_comment(request)
        return response

    api.server.expect_request(
        f"{BASE}/issues/comments/{REPLY_ID}", method="PATCH"
    ).respond_with_handler(patch)
    run = act(sandbox, api, "/task 4", executor="true")
    assert run.code == 0, (run.err, run.out)
    first, summary = posted(api)
    assert state_of(first) == "running"
    assert "**batchaction** success" in summary
    last = api.edits()[-1]
    assert state_of(last) == "done"
    assert "summary is in a later comment" in last


@pytest.fixture
def threaded() -> Iterator[ApiStub]:
    server = HTTPServer(threaded=True)
    server.start()
    yield ApiStub(server)
    server.clear()
    server.stop()


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_a_slow_edit_does_not_hold_back_the_final_one_on_cancel(
    sandbox: Sandbox, threaded: ApiStub
) -> None:
    """A progress edit hangs (a slow API) when the job is cancelled: the final edit goes out
    without waiting for it, and once the slow one ends the final body is put back."""
    api = threaded
    seen: list[str] = []
    slow = threading.Event()
    release = threading.Event()

    def patch(request: Request) -> Response:
        body = (request.get_json(silent=True) or {}).get("body", "")
        if state_of(body) == "running" and "🏃 running" in body and not slow.is_set():
            slow.set()
            seen.append("slow edit")
            release.wait(30)  # answered only after the final edit arrived
            seen.append("slow edit answered")
        elif state_of(body) == "done":
            seen.append("final edit")
            release.set()
        else:
            seen.append(f"{state_of(body)} edit")
        response: Response = _edited_comment(request)
        return response

    api.server.expect_request(
        f"{BASE}/issues/comments/{REPLY_ID}", method="PATCH"
    ).respond_with_handler(patch)
    api.serve(role="write", pull=pull_answer("feature", sandbox.feature_sha))
    proc = start_action(
        sandbox, "issue_comment", comment_event("/task 1-4"), api_url=api.url,
        inputs={"executor": "trap '' TERM; sleep 60", "grace": "20s",
                "progress-interval": "1s"},
    )  # fmt: skip
    try:
        assert slow.wait(60), "no progress edit"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=90) == 130
    finally:
        stop(proc)
    # The final edit came while the slow one hung, before its client gave up and tried again
    # (a "running" edit after it would be that retry, 20 s later: the job would be killed).
    assert seen[: seen.index("final edit") + 1] == ["slow edit", "final edit"], seen
    assert seen.index("final edit") < seen.index("slow edit answered")
    assert state_of(api.edits()[-1]) == "done"


def test_a_slow_edit_answered_after_the_final_one_does_not_have_the_last_word(
    sandbox: Sandbox, threaded: ApiStub
) -> None:
    """A progress edit is applied after the final edit (GitHub applies a PATCH when it
    answers): the action waits for it at its end and puts the final body back."""
    api = threaded
    applied: list[str] = []  # the state of each body, in the order the edits took effect
    slow = threading.Event()
    release = threading.Event()

    def patch(request: Request) -> Response:
        body = (request.get_json(silent=True) or {}).get("body", "")
        if state_of(body) == "running" and "🏃 running" in body and not slow.is_set():
            slow.set()
            release.wait(15)  # held until the final edit was applied, and some more: an
            time.sleep(2)  # action that did not wait for it would have exited by then
        elif state_of(body) == "done":
            release.set()
        applied.append(str(state_of(body)))
        response: Response = _edited_comment(request)
        return response

    api.server.expect_request(
        f"{BASE}/issues/comments/{REPLY_ID}", method="PATCH"
    ).respond_with_handler(patch)
    api.serve(role="write", pull=pull_answer("feature", sandbox.feature_sha))
    proc = start_action(
        sandbox, "issue_comment", comment_event("/task 1"), api_url=api.url,
        inputs={"executor": "sleep 3", "progress-interval": "1s"},
    )  # fmt: skip
    try:
        assert proc.wait(timeout=90) == 0
    finally:
        stop(proc)
    assert slow.is_set()
    assert "done" in applied
    assert applied.index("done") < len(applied) - 1  # the slow edit came after it ...
    assert applied[-1] == "done"  # ... and the final body was put back


def test_an_interrupt_while_the_comment_is_posted_cancels_the_check_run(
    sandbox: Sandbox, api: ApiStub
) -> None:
    """SIGINT arrives before the scheduler handles signals (while the progress comment is
    being posted): the check run is completed ``cancelled``, not left in progress."""
    procs: list[subprocess.Popen[str]] = []

    def post(request: Request) -> Response:
        procs[0].send_signal(signal.SIGINT)
        time.sleep(0.5)
        return Response(json.dumps({"message": "gone"}), 502)

    api.server.expect_request(f"{BASE}/issues/7/comments", method="POST").respond_with_handler(post)
    api.serve(role="write", pull=pull_answer("feature", sandbox.feature_sha))
    procs.append(start_action(
        sandbox, "issue_comment", comment_event("/task 4"), api_url=api.url,
        inputs={"executor": "true", "check-run": "true"},
    ))  # fmt: skip
    try:
        procs[0].wait(timeout=60)
    finally:
        stop(procs[0])
    assert api.check()["conclusion"] == "cancelled"


def test_a_check_run_stored_behind_a_502_is_found_and_completed(
    sandbox: Sandbox, api: ApiStub
) -> None:
    """GitHub stored the check run and a proxy answered 502: the action finds it by name and
    ``external_id`` on the head, and completes it (no orphan left ``in_progress``)."""
    created: list[dict[str, Any]] = []

    def create(request: Request) -> Response:
        created.append(request.get_json())
        if len(created) == 1:
            return Response("bad gateway", 502)
        return Response(json.dumps({"id": 6001}), 201, content_type="application/json")

    def listing(request: Request) -> Response:
        stored = [{"id": CHECK_RUN_ID, "name": created[0]["name"],
                   "external_id": created[0]["external_id"], "status": "in_progress"}]  # fmt: skip
        answer = {"total_count": 1, "check_runs": stored}
        return Response(json.dumps(answer), 200, content_type="application/json")

    api.server.expect_request(f"{BASE}/check-runs", method="POST").respond_with_handler(create)
    api.server.expect_request(
        f"{BASE}/commits/{sandbox.feature_sha}/check-runs", method="GET"
    ).respond_with_handler(listing)
    run = act(sandbox, api, "/task 4", executor="true", **{"check-run": "true"})
    assert run.code == 0, (run.err, run.out)
    patched = [b for m, b in api.check_requests() if m == "PATCH"]
    assert patched
    assert patched[-1]["conclusion"] == "success"
    assert "checks: write" not in run.out  # a 502 is not a missing permission


def test_a_cut_inside_a_code_fence_drops_the_fenced_block() -> None:
    """The plan reply's graph is a bare fence: a cut inside it leaves no fence open."""
    text = "**Plan**\n\n| a |\n\n```mermaid\n" + "    t1 --> t2\n" * 5000 + "```\n\nTo run it\n"
    cut = truncate_markdown(text, 10_000, "…(truncated)")
    assert "```" not in cut
    assert cut.endswith("…(truncated)\n")
    assert "| a |" in cut
