"""The ``/task`` command's own words on a pull request: ``help`` and the usage line of a
malformed command. Through the real entrypoint and the loopback API."""

from __future__ import annotations

from typing import Any

from actionhelpers import (
    ApiStub,
    Sandbox,
    comment_event,
    marker_executor,
    pull_answer,
    run_action,
)


def comment_run(sandbox: Sandbox, api: ApiStub, body: str, **inputs: str) -> Any:
    return run_action(
        sandbox, "issue_comment", comment_event(body), api_url=api.url,
        inputs={"executor": marker_executor(sandbox), **inputs}, timeout=60,
    )  # fmt: skip


def test_help_replies_with_the_grammar_and_runs_nothing(sandbox: Sandbox, api: ApiStub) -> None:
    api.serve(role="write", pull=pull_answer("feature", sandbox.feature_sha))
    before = sandbox.refs()
    run = comment_run(sandbox, api, "/task help")
    assert run.code == 0, run.err
    (reply,) = api.comments()
    assert "how to use `/task`" in reply
    assert "`/task 63, 65-67`" in reply
    assert "`/task 63-65 @1a2b3c4`" in reply
    assert sandbox.ran() == []
    assert sandbox.refs() == before
    # Nothing but the permission was read: no pull request, no checkout.
    paths = [path for method, path, _ in api.requests() if method == "GET"]
    assert all(path.endswith("/permission") for path in paths), paths


def test_help_is_for_people_who_may_run_tasks(sandbox: Sandbox, api: ApiStub) -> None:
    api.serve(role="read", pull=pull_answer("feature", sandbox.feature_sha))
    run = comment_run(sandbox, api, "/task HELP")
    assert run.code == 0, run.err
    (reply,) = api.comments()
    assert "did not run" in reply
    assert "permission" in reply
    assert "how to use" not in reply


def test_help_speaks_the_configured_command_word(sandbox: Sandbox, api: ApiStub) -> None:
    api.serve(role="write", pull=pull_answer("feature", sandbox.feature_sha))
    run = comment_run(sandbox, api, "/run help", command="/run")
    assert run.code == 0, run.err
    (reply,) = api.comments()
    assert "`/run 63, 65-67`" in reply
    assert "/task" not in reply


def test_a_malformed_command_gets_the_error_and_the_usage(sandbox: Sandbox, api: ApiStub) -> None:
    api.serve(role="write", pull=pull_answer("feature", sandbox.feature_sha))
    run = comment_run(sandbox, api, "/task 1; rm -rf /")
    assert run.code == 2
    (reply,) = api.comments()
    assert "did not run" in reply
    assert "Usage: `/task 63, 65-67`" in reply
    assert sandbox.ran() == []
