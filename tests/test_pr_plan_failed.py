"""``/task plan SEL`` and ``/task failed [--all]`` on a pull request, through the real
entrypoint and the loopback API: the plan is a reply read from the head's TODO.md (nothing
runs, nothing is pushed); ``failed`` runs the failed tasks and those batchaction blocked
(``--all``: every blocked one); nothing to retry is a reply and exit 0; malformed forms get
the usage line."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import pytest
from actionhelpers import (
    PR_NUMBER,
    ApiStub,
    Sandbox,
    comment_event,
    dispatch_event,
    make_sandbox,
    marker_executor,
    pull_answer,
    run_action,
    status_of,
)

PLAN_TODO = """\
# TODO

### 1. Lay the foundation
- **Status**: [NOT STARTED]
- **Dependencies**: None

### 2. Build on the foundation
- **Status**: [NOT STARTED]
- **Dependencies**: Task 1, Task 99

### 3. Decorate after the outside work
- **Status**: [NOT STARTED]
- **Dependencies**: Task 1, Task 6

### 4. Chore for @octocat, see [this](https://evil.example/x) <b>now</b>
- **Status**: [NOT STARTED]
- **Dependencies**: None

### 5. Already shipped
- **Status**: [COMPLETED]

### 6. Outside the selection
- **Status**: [NOT STARTED]

### 7. Waits for the decoration
- **Status**: [NOT STARTED]
- **Dependencies**: Task 3
"""

RETRY_TODO = """\
# TODO

### 1. Failed last time
- **Status**: [FAILED]
- **Failed**: 2026-01-02
- **Failure Reason**: exit code 1

### 2. Blocked by the failure
- **Status**: [BLOCKED]
- **Blocked**: 2026-01-02
- **Blocking Reason**: blocked by failed task 1
- **Dependencies**: Task 1

### 3. Waiting for the vendor
- **Status**: [BLOCKED]
- **Blocked**: 2026-01-01
- **Blocking Reason**: the vendor's API key has not arrived

### 4. Not started
- **Status**: [NOT STARTED]

### 5. Shipped
- **Status**: [COMPLETED]
"""

ONLY_EXTERNAL_TODO = """\
# TODO

### 1. Waiting for the vendor
- **Status**: [BLOCKED]
- **Blocking Reason**: the vendor's API key has not arrived

### 2. Not started
- **Status**: [NOT STARTED]
"""


def push_todo(sandbox: Sandbox, text: str) -> str:
    """Commit ``text`` as TODO.md on the remote's feature branch; the new tip."""
    author = sandbox.clone(sandbox.root / f"author-{len(list(sandbox.root.glob('author-*')))}",
                           "feature")  # fmt: skip
    (author / "TODO.md").write_text(text, encoding="utf-8")
    sandbox.git("commit", "--quiet", "-am", "Tasks", cwd=author)
    sandbox.git("push", "--quiet", "origin", "feature", cwd=author)
    return sandbox.tip("feature")


def comment_run(sandbox: Sandbox, api: ApiStub, body: str, **inputs: str) -> Any:
    return run_action(
        sandbox, "issue_comment", comment_event(body), api_url=api.url,
        inputs={"executor": marker_executor(sandbox), **inputs}, timeout=120,
    )  # fmt: skip


def mermaid_blocks(text: str) -> list[str]:
    return re.findall(r"^```mermaid\n(.*?)^```$", text, re.MULTILINE | re.DOTALL)


INIT = re.compile(r"%%\{init: (\{.*\})\}%%")
NODE = re.compile(r'    t(\d+)\["([^"\n]*)"\]')
EDGE = re.compile(r"    t(\d+) --> t(\d+)")
CLASSDEF = re.compile(
    r"    classDef (wave\d+|blocked) [a-z-]+:[#a-z0-9 ]+(?:,[a-z-]+:[#a-z0-9 ]+)*"
)
CLASS = re.compile(r"    class (t\d+(?:,t\d+)*) (wave\d+|blocked)")


def parse_flowchart(text: str) -> tuple[set[int], set[tuple[int, int]], dict[str, set[int]]]:
    """A Mermaid flowchart by its grammar (nodes, edges, class members); anything else fails."""
    lines = text.rstrip("\n").split("\n")
    if init := INIT.fullmatch(lines[0]):  # an optional directive first: JSON configuration
        assert isinstance(json.loads(init[1]), dict)
        lines = lines[1:]
    assert lines[0] == "flowchart TD"
    nodes: set[int] = set()
    edges: set[tuple[int, int]] = set()
    classes: dict[str, set[int]] = {}
    for line in lines[1:]:
        if node := NODE.fullmatch(line):
            nodes.add(int(node[1]))
            assert re.fullmatch(r"[A-Za-z0-9 .,\-_/()'?!+#;]*", node[2]), line
        elif edge := EDGE.fullmatch(line):
            edges.add((int(edge[1]), int(edge[2])))
        elif CLASSDEF.fullmatch(line):
            pass
        elif klass := CLASS.fullmatch(line):
            classes.setdefault(klass[2], set()).update(int(n[1:]) for n in klass[1].split(","))
        else:
            pytest.fail(f"line outside the Mermaid grammar: {line!r}")
    assert all(a in nodes and b in nodes for a, b in edges)
    return nodes, edges, classes


# --- /task plan ---------------------------------------------------------------------------------


def test_plan_replies_with_waves_blocked_and_graph_and_runs_nothing(
    sandbox: Sandbox, api: ApiStub
) -> None:
    head = push_todo(sandbox, PLAN_TODO)
    api.serve(role="write", pull=pull_answer("feature", head))
    before = sandbox.refs()
    run = comment_run(sandbox, api, "/task plan 1-5, 7", **{"unselected-deps": "block"})
    assert run.code == 0, run.err
    (reply,) = api.comments()
    shown = html.unescape(reply)  # what GitHub shows of the entities
    headline = f"**Plan for 1-5, 7** from `TODO.md` on `{head[:12]}`: 3 tasks to run in 2 waves"
    assert f"{headline}, 2 blocked, 1 skipped.\n" in reply
    assert "**Wave 1**\n\n- **1** Lay the foundation\n- **4** Chore" in reply
    assert "**Wave 2**\n\n- **2** Build on the foundation (after 1)" in reply
    assert "**Skipped**\n\n- **5**: already done (status is [COMPLETED])" in shown
    blocked = (
        "**Blocked**\n\n"
        "- **3** Decorate after the outside work: depends on unselected open task 6 "
        "([NOT STARTED])\n"
        "- **7** Waits for the decoration: blocked by task 3 (also blocked)\n"
    )
    assert blocked in shown
    # The file is named as in the repository, not by the runner's path.
    assert "**Warnings**\n\n- task 2 depends on 99, which is not in TODO.md (archived?)" in reply
    assert reply.rstrip().endswith("To run it, comment `/task 1-5, 7`.")
    # The hostile title is inert: no mention, link or HTML of it survives.
    assert "Chore for @&#8203;octocat, see &#91;this&#93;(https:&#8203;//evil" in reply
    assert "@octocat" not in reply
    assert "](https://evil" not in reply
    assert "<b>" not in reply
    (graph,) = mermaid_blocks(reply)
    nodes, edges, classes = parse_flowchart(graph)
    assert nodes == {1, 2, 3, 4, 7}
    assert edges == {(1, 2), (1, 3), (3, 7)}
    assert classes == {"wave1": {1, 4}, "wave2": {2}, "blocked": {3, 7}}
    # Nothing ran, nothing was pushed, TODO.md is as it was on the head.
    assert sandbox.ran() == []
    assert sandbox.refs() == before
    assert sandbox.show("feature", "TODO.md") == PLAN_TODO.strip()
    assert (sandbox.workspace / "TODO.md").read_text(encoding="utf-8") == PLAN_TODO
    assert api.reactions() == []
    assert run.outputs.get("result") is None


def test_plan_of_failed_plans_the_retry(sandbox: Sandbox, api: ApiStub) -> None:
    head = push_todo(sandbox, RETRY_TODO)
    api.serve(role="write", pull=pull_answer("feature", head))
    run = comment_run(sandbox, api, "/task PLAN failed")
    assert run.code == 0, run.err
    (reply,) = api.comments()
    assert f"**Plan for 1-2** from `TODO.md` on `{head[:12]}`" in reply
    assert reply.rstrip().endswith("To run it, comment `/task 1-2`.")
    assert sandbox.ran() == []


def test_plan_of_a_fork_needs_allow_forks_but_no_pin(sandbox: Sandbox, api: ApiStub) -> None:
    fork = sandbox.clone(sandbox.root / "fork", "feature")
    (fork / "TODO.md").write_text(PLAN_TODO, encoding="utf-8")
    sandbox.git("commit", "--quiet", "-am", "Fork tasks", cwd=fork)
    fork_sha = sandbox.git("rev-parse", "HEAD", cwd=fork)
    sandbox.git("push", "--quiet", "origin", f"HEAD:refs/pull/{PR_NUMBER}/head", cwd=fork)
    api.serve(role="write", pull=pull_answer("feature", fork_sha, head_repo="stranger/hello-tasks"))
    refused = comment_run(sandbox, api, "/task plan 1-2")
    assert refused.code == 0, refused.err
    assert "allow-forks" in api.comments()[-1]
    before = sandbox.refs()
    run = comment_run(sandbox, api, "/task plan 1-2", **{"allow-forks": "true"})
    assert run.code == 0, run.err
    reply = api.comments()[-1]
    assert f"on `{fork_sha[:12]}`" in reply
    # A run on a fork's head needs the pin: the command to copy has it.
    assert f"To run it, comment `/task 1-2 @{fork_sha[:12]}`." in reply
    assert f"pins the fork's head, `{fork_sha[:12]}`: comment it only after reviewing" in reply
    assert sandbox.ran() == []
    assert sandbox.refs() == before
    # The maintainer pinned the commit reviewed; the fork moved on since: said, first thing
    # after the plan, so that the pin offered is not copied unread.
    reviewed = sandbox.feature_sha[:7]
    moved = comment_run(sandbox, api, f"/task plan 1-2 @{reviewed}", **{"allow-forks": "true"})
    assert moved.code == 0, moved.err
    reply = api.comments()[-1]
    assert f"⚠️ The head is `{fork_sha[:12]}`, not the commit you pinned (`{reviewed}`)" in reply


def test_plan_accepts_and_ignores_a_pin(sandbox: Sandbox, api: ApiStub) -> None:
    api.serve(role="write", pull=pull_answer("feature", sandbox.feature_sha))
    run = comment_run(sandbox, api, f"/task plan 1-3 @{sandbox.feature_sha[:7]}")
    assert run.code == 0, run.err
    (reply,) = api.comments()
    assert f"**Plan for 1-3** from `TODO.md` on `{sandbox.feature_sha[:12]}`" in reply
    assert "does not use a pin" in reply
    assert sandbox.ran() == []


def test_plan_is_for_people_who_may_run_tasks(sandbox: Sandbox, api: ApiStub) -> None:
    api.serve(role="read", pull=pull_answer("feature", sandbox.feature_sha))
    run = comment_run(sandbox, api, "/task plan 1-3")
    assert run.code == 0, run.err
    (reply,) = api.comments()
    assert "did not run" in reply
    assert "permission" in reply
    assert "Plan for" not in reply


# --- /task failed -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [("/task failed", ["ran-1", "ran-2"]), ("/task failed --all", ["ran-1", "ran-2", "ran-3"])],
)
def test_failed_runs_the_failed_and_what_batchaction_blocked(
    sandbox: Sandbox, api: ApiStub, body: str, expected: list[str]
) -> None:
    head = push_todo(sandbox, RETRY_TODO)
    api.serve(role="write", pull=pull_answer("feature", head))
    run = comment_run(sandbox, api, body)
    assert run.code == 0, run.err
    assert sandbox.ran() == expected
    pushed = sandbox.show("feature", "TODO.md")
    for number in (1, 2, 3):
        done = f"ran-{number}" in expected
        assert (status_of(pushed, number) == "[COMPLETED]") is done, pushed
    assert status_of(pushed, 4) == "[NOT STARTED]"
    assert sandbox.is_ancestor(head, sandbox.tip("feature"))


def test_failed_takes_a_pin(sandbox: Sandbox, api: ApiStub) -> None:
    head = push_todo(sandbox, RETRY_TODO)
    api.serve(role="write", pull=pull_answer("feature", head))
    run = comment_run(sandbox, api, f"/task failed @{head[:7]}")
    assert run.code == 0, run.err
    assert sandbox.ran() == ["ran-1", "ran-2"]


def test_failed_reads_the_statuses_the_comment_approved(sandbox: Sandbox, api: ApiStub) -> None:
    """A status commit pushed after the pinned head (accepted: it changes statuses only)
    that marks task 4 failed does not add task 4 to the retry: ``failed`` reads the TODO.md
    the maintainer approved, and the run goes on on the head."""
    approved = push_todo(sandbox, RETRY_TODO)
    marked = RETRY_TODO.replace(
        "### 4. Not started\n- **Status**: [NOT STARTED]\n",
        "### 4. Not started\n- **Status**: [FAILED]\n- **Failed**: 2026-01-03\n"
        "- **Failure Reason**: exit code 1\n",
    )
    head = push_todo(sandbox, marked)
    api.serve(role="write", pull=pull_answer("feature", head))
    run = comment_run(sandbox, api, f"/task failed @{approved[:7]}")
    assert run.code == 0, run.err
    assert sandbox.ran() == ["ran-1", "ran-2"]
    assert "plus 1 status commit" in api.comments()[-1]
    assert status_of(sandbox.show("feature", "TODO.md"), 4) == "[FAILED]"


def test_failed_on_a_fork_asks_for_the_pin_with_the_words(sandbox: Sandbox, api: ApiStub) -> None:
    fork = sandbox.clone(sandbox.root / "fork", "feature")
    (fork / "TODO.md").write_text(RETRY_TODO, encoding="utf-8")
    sandbox.git("commit", "--quiet", "-am", "Fork tasks", cwd=fork)
    fork_sha = sandbox.git("rev-parse", "HEAD", cwd=fork)
    sandbox.git("push", "--quiet", "origin", f"HEAD:refs/pull/{PR_NUMBER}/head", cwd=fork)
    api.serve(role="write", pull=pull_answer("feature", fork_sha, head_repo="stranger/hello-tasks"))
    run = comment_run(sandbox, api, "/task failed --all", **{"allow-forks": "true"})
    assert run.code == 0, run.err
    (reply,) = api.comments()
    assert f"`/task failed --all @{fork_sha[:12]}`" in reply
    assert sandbox.ran() == []
    pinned = comment_run(
        sandbox, api, f"/task failed --all @{fork_sha[:12]}", **{"allow-forks": "true"}
    )
    assert pinned.code == 0, pinned.err
    assert sandbox.ran() == ["ran-1", "ran-2", "ran-3"]


def test_nothing_to_retry_is_a_reply_and_exit_0(sandbox: Sandbox, api: ApiStub) -> None:
    head = push_todo(sandbox, ONLY_EXTERNAL_TODO)
    api.serve(role="write", pull=pull_answer("feature", head))
    before = sandbox.refs()
    run = comment_run(sandbox, api, "/task failed")
    assert run.code == 0, run.err
    (reply,) = api.comments()
    assert f"nothing to retry in `TODO.md` on `{head[:12]}`" in reply
    assert "`/task failed --all` retries it too" in reply
    assert "`/task 63, 65-67`" in reply
    assert "did not run" not in reply
    assert sandbox.ran() == []
    assert sandbox.refs() == before


def test_nothing_to_retry_in_a_fresh_file(sandbox: Sandbox, api: ApiStub) -> None:
    api.serve(role="write", pull=pull_answer("feature", sandbox.feature_sha))
    run = comment_run(sandbox, api, "/task failed --all")
    assert run.code == 0, run.err
    (reply,) = api.comments()
    assert "nothing to retry" in reply
    assert "no task is failed or blocked" in reply
    assert "--all` retries" not in reply
    assert sandbox.ran() == []


def test_failed_in_a_dispatch(tmp_path: Path, template: Path, api: ApiStub) -> None:
    """``tasks: failed`` in a workflow_dispatch reads the checked-out branch's TODO.md."""
    sandbox = make_sandbox(tmp_path, template, checkout="feature")
    (sandbox.workspace / "TODO.md").write_text(RETRY_TODO, encoding="utf-8")
    sandbox.git("commit", "--quiet", "-am", "Tasks", cwd=sandbox.workspace)
    sandbox.git("push", "--quiet", "origin", "feature", cwd=sandbox.workspace)
    run = run_action(
        sandbox, "workflow_dispatch", dispatch_event("failed --all"), api_url=api.url,
        inputs={"executor": marker_executor(sandbox)},
    )  # fmt: skip
    assert run.code == 0, run.err
    assert sandbox.ran() == ["ran-1", "ran-2", "ran-3"]
    assert run.outputs["completed"] == "1-3"


# --- malformed forms ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("/task plan", "empty selection"),
        ("/task plan 1; rm -rf /", "invalid selection item"),
        ("/task plan help", "invalid selection item"),
        ("/task failed --bogus", "unexpected '--bogus' after 'failed'"),
        ("/task failed 3", "unexpected '3' after 'failed'"),
        ("/task plan failed --everything", "unexpected '--everything'"),
        ("/task --all", "invalid selection item"),
    ],
)
def test_malformed_plan_and_failed_get_the_usage(
    sandbox: Sandbox, api: ApiStub, body: str, error: str
) -> None:
    api.serve(role="write", pull=pull_answer("feature", sandbox.feature_sha))
    before = sandbox.refs()
    run = comment_run(sandbox, api, body)
    assert run.code == 2, run.err
    (reply,) = api.comments()
    assert "did not run" in reply
    assert error in html.unescape(reply)
    assert "Usage: `/task 63, 65-67`" in reply
    assert "`/task plan 63-67`" in reply
    assert "`/task failed`" in reply
    assert sandbox.ran() == []
    assert sandbox.refs() == before
