"""Long batches finish inside the job: ``run-deadline``, ``push-every`` and publishing at the
first interrupt.

A GitHub-hosted job is stopped after 6 hours; a cancelled one gets SIGINT, SIGTERM 7.5 s later
and SIGKILL 2.5 s after that. Past the deadline no task starts and the run still commits, pushes
and publishes; integrated work reaches the branch while later tasks run; on the first SIGINT the
action pushes and publishes before it waits out the grace period of the tasks.
"""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import time
from pathlib import Path

import pytest
from actionhelpers import (
    ApiStub,
    Sandbox,
    comment_event,
    dispatch_event,
    make_sandbox,
    parse_outputs,
    pull_answer,
    run_action,
    start_action,
    status_of,
)
from pytest_httpserver import HTTPServer
from runhelpers import Spec, Workspace, make_workspace, wait_for

# The executor of the action tests: leaves ran-N; task 1 commits a file in its worktree;
# the task named by $HOLD_TASK waits until the file $RELEASE exists; the task named by
# $STUBBORN_TASK ignores SIGINT and SIGTERM and sleeps (only SIGKILL ends it).
EXECUTOR = r"""
n="$BATCH_TASK_NUMBER"
touch "$MARKERS/ran-$n"
if [ "$n" = 1 ]; then
  echo "made by task 1" > task-1.txt
  git add task-1.txt && git commit --quiet -m "task 1: its work"
fi
if [ "$n" = "$HOLD_TASK" ]; then
  while [ ! -e "$RELEASE" ]; do sleep 0.1; done
fi
if [ "$n" = "$STUBBORN_TASK" ]; then
  trap "" INT TERM
  sleep 60 & wait; wait
fi
exit 0
"""


@pytest.fixture
def sandbox(tmp_path: Path, template: Path) -> Sandbox:
    """A remote with ``main`` and ``feature``, and a workspace checked out on ``feature``."""
    return make_sandbox(tmp_path, template, checkout="feature")


def executor(sandbox: Sandbox, *, hold: int = 0, stubborn: int = 0) -> str:
    script = sandbox.root / "executor.sh"
    script.write_text(EXECUTOR, encoding="utf-8")
    env = {
        "MARKERS": str(sandbox.markers),
        "RELEASE": str(sandbox.root / "release"),
        "HOLD_TASK": str(hold),
        "STUBBORN_TASK": str(stubborn),
    }
    assigned = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    return f"env {assigned} sh {shlex.quote(str(script))}"


def remote_has(sandbox: Sandbox, path: str) -> bool:
    """Whether the remote's ``feature`` holds ``path``."""
    tip = sandbox.tip("feature")
    return bool(sandbox.git("ls-tree", "--name-only", tip, "--", path, check=False))


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()


# -- run-deadline -----------------------------------------------------------------------------


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    ws = make_workspace(tmp_path, git=True)
    ws.write([Spec(1), Spec(2, deps="Task 1"), Spec(3, deps="Task 2"), Spec(4, deps="Task 3")])
    for args in (["add", "TODO.md"], ["commit", "--quiet", "-m", "tasks"]):
        subprocess.run(["git", *args], cwd=ws.repo, check=True, capture_output=True)
    return ws


@pytest.mark.parametrize("isolation", ["worktree", "none"])
def test_no_task_starts_after_the_deadline(ws: Workspace, isolation: str) -> None:
    """A chain 1 <- 2 <- 3 <- 4; task 2 still runs at the deadline: it is stopped with the
    grace period (cancelled, its status put back), the two never started are skipped with
    the reason, TODO.md keeps their lines, and the run is not a success."""
    began = time.monotonic()
    result = ws.run(
        "1-4", "--run-deadline", "3", "--max-parallel", "1", "--grace", "1",
        "--isolation", isolation,
        env={"PROBE_SLEEP": "60", "PROBE_SLEEP_1": "0.1"},
        timeout=40,
    )  # fmt: skip
    took = time.monotonic() - began
    assert result.code == 1, result.err
    assert took < 30
    assert sorted(ws.timeline().started()) == [1, 2]
    assert result.outcomes() == {1: "completed", 2: "cancelled", 3: "skipped", 4: "skipped"}
    assert {result.tasks[n]["reason"] for n in (2, 3, 4)} == {"run deadline reached"}
    assert "run deadline reached" in result.err
    summary = result.summary
    assert summary is not None
    assert summary["deadline"] == {"seconds": 3.0, "reached": True, "not_started": [3, 4]}
    assert summary["result"] == "failure"
    assert result.fields(1)["Status"] == "[COMPLETED]"
    for number in (2, 3, 4):
        assert result.fields(number)["Status"] == "[NOT STARTED]"
        assert "Started" not in result.fields(number)
    assert "Run deadline reached" in ws.summary_md.read_text(encoding="utf-8")


def test_action_past_deadline_commits_pushes_publishes(
    sandbox: Sandbox, httpserver: HTTPServer
) -> None:
    """The action's run ends at the deadline and still commits, pushes and publishes."""
    run = run_action(
        sandbox,
        "workflow_dispatch",
        dispatch_event("1,4,5"),
        api_url=httpserver.url_for("").rstrip("/"),
        inputs={
            "executor": executor(sandbox, stubborn=4),
            "run-deadline": "4",
            "max-parallel": "1",
            "grace": "1",
        },
        timeout=60,
    )
    assert run.code == 1, run.err + run.out
    assert sandbox.ran() == ["ran-1", "ran-4"]
    summary = run.summary
    assert summary["deadline"]["reached"] is True
    assert summary["deadline"]["not_started"] == [5]
    outcomes = {t["number"]: t["outcome"] for t in summary["tasks"]}
    assert outcomes == {1: "completed", 4: "cancelled", 5: "skipped"}
    assert run.outputs["result"] == "failure"
    assert run.outputs["skipped"] == "5"  # not started: the output lists it with the summary
    assert run.outputs["pushed"] == "true"
    assert "Run deadline reached" in run.step_summary
    tip = sandbox.tip("feature")
    assert tip == run.outputs["commit-sha"]
    todo = sandbox.show(tip, "TODO.md")
    assert [status_of(todo, n) for n in (1, 4, 5)] == ["[COMPLETED]"] + ["[NOT STARTED]"] * 2
    assert sandbox.show(tip, "task-1.txt") == "made by task 1"


# -- push-every -------------------------------------------------------------------------------


def test_integrated_work_is_pushed_while_a_later_task_runs(
    sandbox: Sandbox, httpserver: HTTPServer
) -> None:
    """With push-every 1s, task 1's integrated commit and its status reach the branch while
    task 2 (which depends on it) still runs; the final push lands on top of that tip."""
    proc = start_action(
        sandbox,
        "workflow_dispatch",
        dispatch_event("1-2"),
        api_url=httpserver.url_for("").rstrip("/"),
        inputs={"executor": executor(sandbox, hold=2), "push-every": "1"},
    )
    try:
        assert wait_for((sandbox.markers / "ran-2").exists, timeout=30)
        pushed = wait_for(lambda: remote_has(sandbox, "task-1.txt"), timeout=20, interval=0.2)
        err = (sandbox.root / "action.err").read_text(encoding="utf-8")
        assert pushed, err
        assert proc.poll() is None  # task 2 still runs
        middle = sandbox.tip("feature")
        todo = sandbox.show(middle, "TODO.md")
        assert status_of(todo, 1) == "[COMPLETED]"
        assert status_of(todo, 2) == "[IN PROGRESS]"
        (sandbox.root / "release").touch()
        code = proc.wait(timeout=60)
    finally:
        stop(proc)
    assert code == 0, (sandbox.root / "action.err").read_text(encoding="utf-8")
    final = sandbox.tip("feature")
    assert final != middle
    assert sandbox.is_ancestor(middle, final)
    todo = sandbox.show(final, "TODO.md")
    assert [status_of(todo, n) for n in (1, 2)] == ["[COMPLETED]"] * 2
    for old, new in sandbox.ref_log("feature"):  # fast-forwards only
        assert set(old) == {"0"} or sandbox.is_ancestor(old, new)
    outputs = parse_outputs((sandbox.root / "github_output").read_text(encoding="utf-8"))
    assert outputs["pushed"] == "true"
    assert outputs["commit-sha"] == final


# -- the first interrupt ----------------------------------------------------------------------


def test_first_sigint_pushes_and_publishes_before_the_grace(
    sandbox: Sandbox, httpserver: HTTPServer
) -> None:
    """SIGINT while a task that ignores it runs (30 s of grace): the reply, the job summary
    and the integrated work on the remote all exist while the action still waits for that
    task; the final job summary replaces the early one, and there is one reply."""
    api = ApiStub(httpserver)
    api.serve(role="write", pull=pull_answer("feature", sandbox.feature_sha))
    proc = start_action(
        sandbox,
        "issue_comment",
        comment_event("/task 1,4"),
        api_url=api.url,
        inputs={"executor": executor(sandbox, stubborn=4), "grace": "30"},
    )
    step_summary = sandbox.root / "step_summary.md"
    try:
        err = sandbox.root / "action.err"
        assert wait_for(lambda: "done 1" in err.read_text(encoding="utf-8"), timeout=30)
        assert wait_for((sandbox.markers / "ran-4").exists, timeout=30)
        time.sleep(0.5)  # task 4 has set its traps
        proc.send_signal(signal.SIGINT)
        published = wait_for(
            lambda: bool(api.comments()) and remote_has(sandbox, "task-1.txt"),
            timeout=15,
            interval=0.1,
        )
        assert published, err.read_text(encoding="utf-8")
        assert proc.poll() is None  # still in task 4's grace period
        assert "**batchaction** interrupted" in step_summary.read_text(encoding="utf-8")
        early = sandbox.tip("feature")
        assert status_of(sandbox.show(early, "TODO.md"), 1) == "[COMPLETED]"
        proc.send_signal(signal.SIGINT)  # a second one: no more grace
        code = proc.wait(timeout=30)
    finally:
        stop(proc)
    assert code == 130, err.read_text(encoding="utf-8")
    comments = api.comments()
    assert len(comments) == 1
    assert "**batchaction** interrupted" in comments[0]
    final_summary = step_summary.read_text(encoding="utf-8")
    assert final_summary.count("**batchaction** interrupted") == 1
    outputs = parse_outputs((sandbox.root / "github_output").read_text(encoding="utf-8"))
    assert outputs["result"] == "interrupted"
    summary = json.loads(outputs["summary-json"])
    assert summary["deadline"]["seconds"] == 330 * 60  # the default under GitHub Actions
    final = sandbox.tip("feature")
    assert sandbox.is_ancestor(early, final)
    todo = sandbox.show(final, "TODO.md")
    assert [status_of(todo, n) for n in (1, 4)] == ["[COMPLETED]", "[NOT STARTED]"]
