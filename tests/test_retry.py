"""``failed [--all]``: which tasks a retry selects (batchaction/retry.py), on the statuses and
Blocking Reasons batchaction really writes (a real ``batchaction run``) and on every real TODO
file of the fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import RunCli
from runhelpers import Spec, Workspace, make_workspace

from batchaction.errors import BatchError
from batchaction.loading import read_document, status_table
from batchaction.retry import (
    RetryRequest,
    own_reason,
    parse_request,
    parse_retry,
    pick_retry,
    retry_selection,
)
from batchaction.settings import Settings, resolve
from batchaction.status import marker_words, status_head
from batchaction.todo import parse_todo
from batchaction.writeback import MAX_REASON, one_line

FAILED = RetryRequest()
EVERY = RetryRequest(every_blocked=True)


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return make_workspace(tmp_path)


# What a run leaves: 1 fails, 4 times out, 6 reports in-progress, 9 is open and unselected;
# each of the others is blocked by one of them, in every way batchaction blocks a task.
RUN_DAG = [
    Spec(1),
    Spec(2, deps="Task 1"),  # blocked by failed task 1
    Spec(3, deps="Task 2"),  # blocked by failed task 1 (transitively)
    Spec(4),
    Spec(5, deps="Task 4"),  # blocked by timed-out task 4
    Spec(6),
    Spec(7, deps="Task 6"),  # waits for task 6, still in progress
    Spec(8, deps="Task 9"),  # depends on unselected open task 9 ([NOT STARTED])
    Spec(9),
    Spec(10, deps="Task 8"),  # blocked by task 8 (also blocked)
    Spec(11),  # completes
    Spec(12, status="[BLOCKED]", extra=("**Blocking Reason**: waiting for the vendor",)),
    Spec(13, status="[BLOCKED]"),  # no reason at all
    Spec(14, status="[BLOCKED]", extra=("**Blocking Reason**: Blocked by task 5 upstream",)),
]
RUN_ENV = {
    "PROBE_EXIT_1": "3",
    "PROBE_SLEEP_4": "30",
    "PROBE_RESULT_6": json.dumps({"status": "in-progress", "summary": "plan written"}),
}


def test_every_reason_a_run_writes_is_retried(ws: Workspace) -> None:
    """A real run writes every kind of failure and blocking into TODO.md; ``failed`` takes
    the failed tasks and each task the run blocked, ``--all`` adds the others' blocked tasks."""
    ws.write(RUN_DAG)
    result = ws.run("1-8, 10-11", "--timeout", "2", "--grace", "1", "--unselected-deps", "block",
                    env=RUN_ENV)  # fmt: skip
    assert result.code == 1, result.err
    reasons = {n: result.fields(n).get("Blocking Reason") for n in (2, 3, 5, 7, 8, 10)}
    assert reasons == {
        2: "blocked by failed task 1",
        3: "blocked by failed task 1",
        5: "blocked by timed-out task 4",
        7: "waits for task 6, still in progress",
        8: "depends on unselected open task 9 ([NOT STARTED])",
        10: "blocked by task 8 (also blocked)",
    }
    tasks = parse_todo(result.todo).tasks
    pick = pick_retry(tasks)
    assert pick.failed == (1, 4)
    assert pick.blocked_by_run == (2, 3, 5, 7, 8, 10)
    assert pick.blocked_other == (12, 13, 14)
    assert retry_selection(tasks, FAILED) == [1, 2, 3, 4, 5, 7, 8, 10]
    assert retry_selection(tasks, EVERY) == [1, 2, 3, 4, 5, 7, 8, 10, 12, 13, 14]


def test_configured_status_markers_are_read(ws: Workspace) -> None:
    """With ``status-markers`` the run writes its own words; ``failed`` reads them back."""
    config = ws.repo / ".github" / "batchaction.yml"
    config.parent.mkdir()
    config.write_text(
        "status-markers:\n  failed: 'Broke :('\n  blocked: 'On Hold (batch)'\n", encoding="utf-8"
    )
    ws.write([Spec(1), Spec(2, deps="Task 1"), Spec(3, status="On Hold")])
    result = ws.run("1-2", env={"PROBE_EXIT_1": "1"})
    assert result.code == 1, result.err
    assert result.fields(1)["Status"] == "Broke :("
    assert result.fields(2)["Status"] == "On Hold (batch)"
    settings = resolve({}, config, base=ws.repo)
    tasks = read_document(settings, ws.todo).tasks
    markers = dict(settings.status_markers)
    assert retry_selection(tasks, FAILED, markers) == [1, 2]
    # Without the configuration those words are nobody's failure.
    assert retry_selection(tasks, EVERY) == []


def test_a_cut_reason_is_still_batchaction_s() -> None:
    """A reason longer than the field's limit is cut with "…" (writeback.one_line)."""
    long_list = (
        "blocked by task " + ", ".join(str(n) for n in range(1000, 1100)) + " (also blocked)"
    )
    cut = one_line(long_list)
    assert len(cut) == MAX_REASON
    assert cut.endswith("…")
    assert own_reason(cut)
    statuses = ", ".join(f"task {n} (Not Started)" for n in range(1, 40))
    assert own_reason(one_line(f"depends on unselected open {statuses}"))
    assert not own_reason("blocked by task 5, upstream…")  # short: a person's text


@pytest.mark.parametrize(
    "reason",
    [
        "blocked by failed task 64",
        "blocked by timed-out task 64",
        "blocked by task 64 (also blocked)",
        "blocked by task 64, 65 (also blocked)",
        "depends on unselected open task 5 ([NOT STARTED])",
        "depends on unselected open task 5 (Not Started), task 6 (Planned)",
        "waits for task 64, still in progress",
        "  blocked by failed task 64  ",
    ],
)
def test_own_reasons(reason: str) -> None:
    assert own_reason(reason)


@pytest.mark.parametrize(
    "reason",
    [
        "Blocked by failed task 64",
        "blocked by failed task 64 and the vendor",
        "blocked by task 64",
        "blocked by the vendor",
        "waiting for task 64",
        "Proof requires structural induction on formulas",
        "no reason given",  # what `status set N blocked` writes without --reason
        "",
    ],
)
def test_other_reasons(reason: str) -> None:
    assert not own_reason(reason)


def test_statuses_are_read_like_the_status_table_reads_them() -> None:
    text = "\n".join(
        [
            "### 1. Plain word",
            "**Status**: Failed",
            "### 2. Hidden failure",
            "**Status**: [NOT STARTED] <!-- [FAILED] -->",
            "### 3. Struck out",
            "**Status**: ~~[FAILED]~~ [PLANNED]",
            "### 4. Note after the marker",
            "**Status**: [FAILED] (see the log)",
            "### 5. Failed is closed here",
            "**Status**: [FAILED]",
            "### 6. Blocked by batchaction, bold reason with colon inside",
            "- **Status**: [BLOCKED]",
            "- **Blocking Reason:** blocked by failed task 5",
            "",
        ]
    )
    tasks = parse_todo(text).tasks
    assert pick_retry(tasks).failed == (1, 4, 5)
    assert pick_retry(tasks).blocked_by_run == (6,)
    closed = Settings(closed_markers=("FAILED",))
    tasks = parse_todo(text, status_table(closed)).tasks
    assert pick_retry(tasks).failed == ()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("failed", FAILED),
        ("FAILED", FAILED),
        ("failed --all", EVERY),
        ("Failed   --ALL", EVERY),
        ("63-65", None),
        ("", None),
        ("failedx", None),
    ],
)
def test_parse_retry(text: str, expected: RetryRequest | None) -> None:
    assert parse_retry(text) == expected


@pytest.mark.parametrize("text", ["failed --bogus", "failed 63", "failed --all --all", "failed -a"])
def test_parse_retry_refuses_anything_else(text: str) -> None:
    with pytest.raises(BatchError) as caught:
        parse_retry(text)
    assert caught.value.exit_code == 2
    assert "`failed --all`" in str(caught.value)


def test_parse_request() -> None:
    assert parse_request("63, 65-67") == [63, 65, 66, 67]
    assert parse_request("failed --all") == EVERY
    with pytest.raises(BatchError):
        parse_request("--all")


def test_the_cap_holds() -> None:
    text = "".join(f"### {n}. T\n**Status**: [FAILED]\n" for n in range(1, 6))
    tasks = parse_todo(text).tasks
    assert retry_selection(tasks, FAILED, max_tasks=5) == [1, 2, 3, 4, 5]
    with pytest.raises(BatchError, match="over the cap of 4"):
        retry_selection(tasks, FAILED, max_tasks=4)


def test_real_todo_files(todo_fixture: Path) -> None:
    """On every real TODO file: no crash; a blocked task whose reason is a person's (these
    files block tasks for external reasons) is selected only with ``--all``."""
    settings = Settings()
    doc = read_document(settings, todo_fixture)
    pick = pick_retry(doc.tasks)
    failed = set(retry_selection(doc.tasks, FAILED))
    every = set(retry_selection(doc.tasks, EVERY))
    blocked = {
        t.number
        for t in doc.tasks
        if t.state == "open" and marker_words(status_head(t.status))[:1] == ("BLOCKED",)
    }
    assert failed <= every
    assert every - failed == blocked - failed
    assert set(pick.blocked_other) == blocked - set(pick.blocked_by_run)
    for number in pick.blocked_other:
        task = next(t for t in doc.tasks if t.number == number)
        reason = task.field("blocking reason")
        assert reason is None or not own_reason(reason.value)
        assert number not in failed


# --- the command line: `batchaction plan|run failed [--all]` --------------------------------------

CLI_TODO = """\
### 1. Failed last time
- **Status**: [FAILED]
### 2. Blocked by the failure
- **Status**: [BLOCKED]
- **Blocking Reason**: blocked by failed task 1
- **Dependencies**: Task 1
### 3. Waiting for the vendor
- **Status**: [BLOCKED]
- **Blocking Reason**: the vendor's key
### 4. Not started
- **Status**: [NOT STARTED]
"""


def test_cli_plan_and_run_failed(tmp_path: Path, cli: RunCli) -> None:
    (tmp_path / "TODO.md").write_text(CLI_TODO, encoding="utf-8")
    code, out, err = cli("plan", "failed", "--json", cwd=tmp_path)
    assert code == 0, err
    assert json.loads(out)["waves"] == [[1], [2]]
    code, out, err = cli("plan", "failed", "--all", "--json", cwd=tmp_path)
    assert code == 0, err
    assert json.loads(out)["waves"] == [[1, 3], [2]]
    code, out, err = cli("run", "failed", "--executor", "true", cwd=tmp_path)
    assert code == 0, err
    code, out, err = cli("run", "failed", "--executor", "true", cwd=tmp_path)
    assert code == 0, err
    assert "nothing to retry in TODO.md" in err
    assert "'batchaction run failed --all' retries it too" in err
    assert "error" not in err


@pytest.mark.parametrize(
    "args", [("plan", "failed", "--bogus"), ("plan", "failed", "3"), ("plan", "--all", "3")]
)
def test_cli_refuses_other_forms(tmp_path: Path, cli: RunCli, args: tuple[str, ...]) -> None:
    (tmp_path / "TODO.md").write_text(CLI_TODO, encoding="utf-8")
    code, _, err = cli(*args, cwd=tmp_path)
    assert code == 2
    assert "error:" in err
