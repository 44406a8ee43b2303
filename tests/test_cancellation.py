"""Interrupts (SPEC 5, 7, 8): SIGINT, SIGTERM and SIGHUP during a run, and during the action's push.

Whatever the moment, an interrupt leaves no process behind, no half-written file, the cancelled
tasks' Status lines as they were, a summary saying ``interrupted``, and exit code 128+N.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from actionhelpers import (
    GIT_IDENTITY,
    REPOSITORY,
    RUN_ID,
    SERVER_URL,
    TOKEN,
    ApiStub,
    Sandbox,
    dispatch_event,
    make_sandbox,
    marker_executor,
    parse_outputs,
    status_of,
)
from pytest_httpserver import HTTPServer
from runhelpers import (
    RunOutcome,
    Spec,
    Workspace,
    all_gone,
    kill_quietly,
    make_workspace,
    marked_processes,
    process_gone,
    read_pids,
    status_lines,
    wait_for,
)

from batchaction.todo import parse_todo

SIGNALS = [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)]
SIGNAL_IDS = ["SIGINT", "SIGTERM", "SIGHUP"]
LIFECYCLE_LINE = re.compile(
    r"[ \t]*(?:[-*+][ \t]+)?\*\*(?:Status|Started|Completed|Failed|Failure Reason|Blocked"
    r"|Blocking Reason)\*\*:"
)
# Each executor starts two background children (the second ignores SIGTERM), records their
# pids and its own ($$, its process group) in $PIDS, then waits.
EXECUTOR = (
    'sleep 60 & echo $! >> "$PIDS"; '
    '(trap "" TERM; exec sleep 60) & echo $! >> "$PIDS"; '
    'echo $$ >> "$PIDS"; wait'
)
PIDS_PER_TASK = 3
# Executors and their children that ignore SIGINT and SIGTERM: only SIGKILL ends them.
STUBBORN_EXECUTOR = (
    'trap "" INT TERM; (trap "" INT TERM; exec sleep 90) & echo $! >> "$PIDS"; '
    'echo $$ >> "$PIDS"; wait; wait'
)
# A leader that dies at SIGTERM, leaving behind a child that ignores it.
ORPHANING_EXECUTOR = (
    '(trap "" INT TERM; exec sleep 90) & echo $! >> "$PIDS"; echo $$ >> "$PIDS"; wait'
)
TASKS = [
    Spec(1),
    Spec(2, status="[FAILED]", extra=("**Failed**: 2026-01-02", "**Failure Reason**: flaky")),
    Spec(3, status="[PLANNED]  "),
    Spec(4, status="[BLOCKED] (waiting on review)", title="Réviser ✓"),
    Spec(5, deps="Task 1"),
]


def kept_lines(text: str) -> list[str]:
    return [line for line in text.splitlines(keepends=True) if not LIFECYCLE_LINE.match(line)]


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    workspace = make_workspace(tmp_path)
    workspace.env["PIDS"] = str(tmp_path / "pids")
    workspace.env["CANCEL_MARK"] = uuid.uuid4().hex
    return workspace


def mark_of(ws: Workspace) -> str:
    return f"CANCEL_MARK={ws.env['CANCEL_MARK']}"


def cleanup(ws: Workspace, proc: subprocess.Popen[str]) -> None:
    """After a failed assertion: nothing of this test may keep running."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    kill_quietly(p for p in read_pids(Path(ws.env["PIDS"])) if not process_gone(p))
    kill_quietly(marked_processes(mark_of(ws)))


def running(ws: Workspace, count: int, per_task: int) -> bool:
    """``count`` tasks are [IN PROGRESS] in TODO.md and their executors have recorded pids."""
    lines = status_lines(ws.todo.read_text(encoding="utf-8"))
    started = sum("[IN PROGRESS]" in line for line in lines.values())
    return started == count and len(read_pids(Path(ws.env["PIDS"]))) == count * per_task


def survivors(ws: Workspace) -> list[int]:
    """Executor processes (recorded pids, or anything carrying the mark) still running.

    Checked before any clean-up, once the run has exited: it must have ended them all.
    """
    pids = read_pids(Path(ws.env["PIDS"]))
    all_gone(pids, timeout=5)
    return sorted({p for p in pids if not process_gone(p)} | set(marked_processes(mark_of(ws))))


def assert_clean_interrupt(
    ws: Workspace, original: str, outcome: RunOutcome, *, expected: int, signum: int
) -> None:
    """What every interrupted run must leave: see the module docstring."""
    assert outcome.code == expected, outcome.err
    assert read_pids(Path(ws.env["PIDS"]))
    assert sorted(p.name for p in ws.repo.iterdir()) == ["TODO.md", "TODO.md.lock"]
    text = outcome.todo
    assert [t.number for t in parse_todo(text).tasks] == [
        t.number for t in parse_todo(original).tasks
    ]
    assert status_lines(text) == status_lines(original)
    assert kept_lines(text) == kept_lines(original)
    assert outcome.summary is not None, outcome.err
    assert outcome.summary["result"] == "interrupted"
    assert outcome.summary["interrupted_by"] == signal.Signals(signum).name
    assert set(outcome.outcomes().values()) == {"cancelled"}
    assert f"interrupted by {signal.Signals(signum).name}" in outcome.err


@pytest.mark.parametrize(("signum", "expected"), SIGNALS, ids=SIGNAL_IDS)
def test_interrupt_leaves_nothing_behind(ws: Workspace, signum: int, expected: int) -> None:
    """Two of five tasks run (each with two children) when the signal comes: all end cleanly."""
    original = ws.write(TASKS)
    proc = ws.start("1-5", "--max-parallel", "2", "--grace", "1", executor=EXECUTOR)
    try:
        assert wait_for(lambda: running(ws, 2, PIDS_PER_TASK), timeout=30), ws.todo.read_text()
        proc.send_signal(signum)
        outcome = ws.finish(proc, timeout=60)
        left = survivors(ws)
    finally:
        cleanup(ws, proc)
    assert left == []
    assert_clean_interrupt(ws, original, outcome, expected=expected, signum=signum)
    tasks = outcome.tasks
    ran = [n for n, t in tasks.items() if t["attempts"]]
    assert len(ran) == 2
    for number in ran:
        assert tasks[number]["reason"] == "interrupted"
    for number in set(tasks) - set(ran):
        assert tasks[number]["reason"] == "not started: interrupted"
    summary_md = ws.summary_md.read_text(encoding="utf-8")
    assert "interrupted" in summary_md.lower()


@pytest.mark.parametrize(
    "executor", [STUBBORN_EXECUTOR, ORPHANING_EXECUTOR], ids=["stubborn", "orphaning"]
)
def test_second_sigint_kills_at_once(ws: Workspace, executor: str) -> None:
    """A second SIGINT ends a 90-second grace period at once, and still leaves a summary."""
    original = ws.write(TASKS)
    proc = ws.start("1-5", "--max-parallel", "2", "--grace", "90", executor=executor)
    try:
        assert wait_for(lambda: running(ws, 2, 2), timeout=30), ws.todo.read_text()
        proc.send_signal(signal.SIGINT)
        stopping = ws.root / "run.err"
        assert wait_for(lambda: "SIGINT: stopping" in stopping.read_text(), timeout=30)
        # The grace period holds: the run and the children that ignore SIGTERM are still there.
        time.sleep(0.5)
        assert proc.poll() is None
        children = read_pids(Path(ws.env["PIDS"]))[0::2]  # each task writes "$!" then "$$"
        assert not any(process_gone(p) for p in children)
        second = time.monotonic()
        proc.send_signal(signal.SIGINT)
        outcome = ws.finish(proc, timeout=80)
        took = time.monotonic() - second
        left = survivors(ws)
    finally:
        cleanup(ws, proc)
    assert left == []
    # "At once": far inside the 90 seconds the grace period would have lasted.
    assert took < 30, took
    assert_clean_interrupt(ws, original, outcome, expected=130, signum=signal.SIGINT)


@pytest.mark.parametrize(("signum", "expected"), SIGNALS, ids=SIGNAL_IDS)
def test_signal_while_statuses_drain(ws: Workspace, signum: int, expected: int) -> None:
    """A signal after the tasks ended, while the status writes wait for a held TODO.md.lock:
    the writes still land when the lock is free, the summary is written, the exit is 128+N."""
    ws.write(TASKS[:3])
    lock_fd = os.open(ws.repo / "TODO.md.lock", os.O_RDWR | os.O_CREAT, 0o644)
    proc = None
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        proc = ws.start("1-3")
        # All three tasks have finished; the status writes wait for the lock.
        assert wait_for(lambda: "[3/3] done" in (ws.root / "run.err").read_text(), timeout=30)
        proc.send_signal(signum)
        time.sleep(1)
        assert proc.poll() is None, "the run must wait for the lock, not die"
        fcntl.flock(lock_fd, fcntl.LOCK_UN)
        outcome = ws.finish(proc, timeout=60)
    finally:
        os.close(lock_fd)
        if proc is not None:
            cleanup(ws, proc)
    assert outcome.code == expected, outcome.err
    assert "Traceback" not in outcome.err
    assert outcome.summary is not None, outcome.err
    assert outcome.summary["interrupted_by"] == signal.Signals(signum).name
    assert outcome.outcomes() == dict.fromkeys((1, 2, 3), "completed")
    assert {n: outcome.fields(n)["Status"] for n in (1, 2, 3)} == dict.fromkeys(
        (1, 2, 3), "[COMPLETED]"
    )
    assert sorted(p.name for p in ws.repo.iterdir()) == ["TODO.md", "TODO.md.lock"]


# -- the action, interrupted while it pushes ---------------------------------------------------

# A pre-receive hook that records its pid (and its parent's, git receive-pack), says it started,
# then takes two seconds before it lets the push through.
SLOW_HOOK = """#!/bin/sh
echo $$ >> {pids}
echo $PPID >> {pids}
cat > /dev/null
touch {started}
sleep 2
"""


@pytest.fixture
def sandbox(tmp_path: Path, template: Path) -> Sandbox:
    """A workspace on ``feature`` and a remote whose pushes take two seconds."""
    box = make_sandbox(tmp_path, template, checkout="feature")
    hook = box.remote / "hooks" / "pre-receive"
    hook.write_text(
        SLOW_HOOK.format(
            pids=shlex.quote(str(box.root / "hook-pids")),
            started=shlex.quote(str(box.root / "hook-started")),
        ),
        encoding="utf-8",
    )
    hook.chmod(0o755)
    return box


def start_action(
    sandbox: Sandbox, api_url: str, mark: str, *, own_group: bool
) -> subprocess.Popen[str]:
    """``python -m batchaction action`` for a dispatch of tasks 1-3, in the background (leading
    a process group of its own when ``own_group``)."""
    files = {
        "event": sandbox.root / "event.json",
        "output": sandbox.root / "github_output",
        "summary": sandbox.root / "step_summary.md",
    }
    files["output"].touch()
    files["summary"].touch()
    files["event"].write_text(json.dumps(dispatch_event("1-3")), encoding="utf-8")
    name, value = mark.split("=", 1)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(sandbox.home),
        "TMPDIR": str(sandbox.tmp),
        "LANG": "C.UTF-8",
        "GIT_CONFIG_NOSYSTEM": "1",
        **GIT_IDENTITY,
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": "workflow_dispatch",
        "GITHUB_EVENT_PATH": str(files["event"]),
        "GITHUB_WORKSPACE": str(sandbox.workspace),
        "GITHUB_OUTPUT": str(files["output"]),
        "GITHUB_STEP_SUMMARY": str(files["summary"]),
        "GITHUB_API_URL": api_url,
        "GITHUB_REPOSITORY": REPOSITORY,
        "GITHUB_SERVER_URL": SERVER_URL,
        "GITHUB_RUN_ID": RUN_ID,
        "INPUT_GITHUB-TOKEN": TOKEN,
        "INPUT_MAX-PARALLEL": "2",
        "INPUT_EXECUTOR": marker_executor(sandbox),
        name: value,
    }
    out = (sandbox.root / "action.out").open("w", encoding="utf-8")
    err = (sandbox.root / "action.err").open("w", encoding="utf-8")
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "batchaction", "action"],
            cwd=sandbox.root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            text=True,
            start_new_session=own_group,
        )
    finally:
        out.close()
        err.close()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("signum", "to_group", "expected"),
    [
        (signal.SIGTERM, False, 143),
        (signal.SIGTERM, True, 143),
        (signal.SIGINT, True, 130),
        (signal.SIGHUP, False, 129),
    ],
    ids=["SIGTERM-process", "SIGTERM-process-group", "SIGINT-process-group", "SIGHUP-process"],
)
def test_interrupt_during_push(
    sandbox: Sandbox, httpserver: HTTPServer, signum: int, to_group: bool, expected: int
) -> None:
    """An interrupt while the status commit is being pushed: the push is whole or absent,
    nothing is left running, outputs and the job summary are written, and the exit code is
    128+N.

    Sent to the process alone (``docker stop``, a runner hanging up), the push is let finish;
    sent to the whole process group (Ctrl-C or a signal to a terminal's job), git itself is
    stopped and the remote keeps its old tip.
    """
    api = ApiStub(httpserver)
    mark = f"CANCEL_MARK={uuid.uuid4().hex}"
    started = sandbox.root / "hook-started"
    proc = start_action(sandbox, api.url, mark, own_group=to_group)
    try:
        assert wait_for(started.exists, timeout=60), (sandbox.root / "action.err").read_text()
        if to_group:
            os.killpg(proc.pid, signum)
        else:
            proc.send_signal(signum)
        code = proc.wait(timeout=60)
        # Checked before any clean-up: no git (nor hook) process outlives the step.
        hook_pids = read_pids(sandbox.root / "hook-pids")
        all_gone(hook_pids, timeout=5)
        left = {p for p in hook_pids if not process_gone(p)} | set(marked_processes(mark))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        kill_quietly(marked_processes(mark))
    err = (sandbox.root / "action.err").read_text(encoding="utf-8")
    assert code == expected, err
    assert "Traceback" not in err
    assert len(hook_pids) == 2
    assert sorted(left) == []
    # The remote holds the whole status commit, or none of it.
    fsck = subprocess.run(
        ["git", "fsck", "--full", "--strict"],
        cwd=sandbox.remote,
        env=sandbox.env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert fsck.returncode == 0, fsck.stderr + fsck.stdout
    assert "error" not in (fsck.stderr + fsck.stdout).lower()
    tip = sandbox.tip("feature")
    outputs = parse_outputs((sandbox.root / "github_output").read_text(encoding="utf-8"))
    step_summary = (sandbox.root / "step_summary.md").read_text(encoding="utf-8")
    # The tasks finished; the step did not: the summary says so, as the exit code does.
    assert outputs["result"] == "interrupted"
    assert outputs["completed"] == "1-3"
    assert "**batchaction** interrupted" in step_summary
    summary = json.loads(outputs["summary-json"])
    assert summary["interrupted_by"] == signal.Signals(signum).name
    if tip == sandbox.feature_sha:
        assert to_group, "a push let finish must reach the remote"
        assert outputs["commit-sha"] == ""
        assert summary["commit"]["pushed"] is False
    else:
        assert not to_group or summary["commit"]["pushed"]
        assert sandbox.git("rev-parse", f"{tip}^") == sandbox.feature_sha
        todo = sandbox.show(tip, "TODO.md")
        assert [status_of(todo, n) for n in (1, 2, 3, 4)] == ["[COMPLETED]"] * 3 + ["[NOT STARTED]"]
        assert outputs["commit-sha"] == tip
        assert summary["commit"]["pushed"] is True
    # The workspace is not left mid-operation.
    status = sandbox.git("status", "--porcelain", cwd=sandbox.workspace)
    assert status.splitlines() == []  # the lock is in info/exclude
    assert not (sandbox.workspace / ".git" / "index.lock").exists()
    assert api.requests() == []
