"""A held TODO lock costs one announced, bounded wait per run (``lock-timeout``).

Another process holds ``TODO.md.lock`` with filelock, as a second tool sharing the file would.
The run says which lock it waits for and who holds it, waits at most ``lock-timeout`` in all
(not once per write, and not 60 s per attempt of every retry), then reports the wait and that
TODO.md was not written: the result is not ``success`` and the exit code is 1.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from actionhelpers import Sandbox, dispatch_event, make_sandbox, marker_executor, run_action
from pytest_httpserver import HTTPServer
from runhelpers import Spec, Workspace, make_workspace, wait_for

# Holds the lock (filelock, as another tool would) until the file named by argv[2] exists.
HOLDER = r"""
import pathlib, sys, time
from filelock import FileLock
lock = FileLock(sys.argv[1])
lock.acquire()
print("held", flush=True)
release = pathlib.Path(sys.argv[2])
while not release.exists():
    time.sleep(0.05)
lock.release()
"""
LOCK_TIMEOUT = 3.0
MARGIN = 30.0  # far below the ~600 s a held lock used to cost


class Holder:
    """A process that holds ``lock`` until ``release()`` (or the test ends)."""

    def __init__(self, lock: Path, root: Path) -> None:
        self.release_file = root / "release-lock"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(lock), str(self.release_file)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == "held"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def release(self) -> None:
        self.release_file.touch()
        self.proc.wait(timeout=10)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture
def sandbox(tmp_path: Path, template: Path) -> Sandbox:
    """A remote with ``main`` and ``feature``, and a workspace checked out on ``feature``."""
    return make_sandbox(tmp_path, template, checkout="feature")


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    ws = make_workspace(tmp_path, git=True)
    ws.write([Spec(1), Spec(2), Spec(3, deps="Task 1")])
    for args in (["add", "TODO.md"], ["commit", "--quiet", "-m", "tasks"]):
        subprocess.run(["git", *args], cwd=ws.repo, check=True, capture_output=True)
    return ws


@pytest.mark.parametrize("isolation", ["worktree", "none"])
def test_held_lock_is_one_announced_bounded_wait(ws: Workspace, isolation: str) -> None:
    """Held for the whole run: one wait of lock-timeout, announced with the lock's path and
    the holder's pid; then no write waits again; the summary reports the wait and the
    statuses that did not reach TODO.md; the result is failure (exit 1)."""
    before = ws.todo.read_bytes()
    holder = Holder(ws.repo / "TODO.md.lock", ws.root)
    try:
        began = time.monotonic()
        result = ws.run(
            "1-3", "--lock-timeout", f"{LOCK_TIMEOUT:g}", "--isolation", isolation,
            timeout=LOCK_TIMEOUT + MARGIN,
        )  # fmt: skip
        took = time.monotonic() - began
    finally:
        holder.close()
    assert result.code == 1, result.err
    assert took < LOCK_TIMEOUT + MARGIN
    # The log says what it waits for, and who holds it, once (no second full wait).
    assert f"TODO.md.lock is held by pid {holder.pid}" in result.err
    assert result.err.count("waiting up to") == 1, result.err
    assert "gave up waiting" in result.err
    assert result.outcomes() == {1: "completed", 2: "completed", 3: "completed"}
    summary = result.summary
    assert summary is not None
    lock = summary["todo_lock"]
    assert LOCK_TIMEOUT - 0.5 <= lock["waited_s"] < LOCK_TIMEOUT + 5
    assert lock["gave_up"] is True
    assert lock["holder"].startswith(f"pid {holder.pid}")
    assert summary["result"] == "failure"
    unwritten = {(u["number"], u["status"]) for u in summary["status_updates_failed"]}
    assert {(1, "completed"), (2, "completed"), (3, "completed")} <= unwritten
    assert ws.todo.read_bytes() == before
    markdown = ws.summary_md.read_text(encoding="utf-8")
    assert "TODO.md was not written" in markdown
    assert "Waited " in markdown


def test_lock_released_during_the_wait(ws: Workspace) -> None:
    """Released after about a second: the run waited (and says how long), then every status
    was written; nothing was given up and the result is success."""
    holder = Holder(ws.repo / "TODO.md.lock", ws.root)
    try:
        proc = ws.start("1-3", "--lock-timeout", "60")
        assert wait_for(
            lambda: "waiting up to" in (ws.root / "run.err").read_text(encoding="utf-8"),
            timeout=30,
        )
        time.sleep(1.0)
        holder.release()
        result = ws.finish(proc, timeout=60)
    finally:
        holder.close()
    assert result.code == 0, result.err
    assert result.summary is not None
    lock = result.summary["todo_lock"]
    assert lock["gave_up"] is False
    assert 0.9 <= lock["waited_s"] < 30
    assert result.summary["status_updates_failed"] == []
    assert result.summary["result"] == "success"
    assert [result.fields(n)["Status"] for n in (1, 2, 3)] == ["[COMPLETED]"] * 3


def test_action_reports_the_held_lock(sandbox: Sandbox, httpserver: HTTPServer) -> None:
    """Through the action: the log names the lock and its holder's pid, the run ends within
    about lock-timeout, and the outputs and job summary say TODO.md was not written."""
    holder = Holder(sandbox.workspace / "TODO.md.lock", sandbox.root)
    try:
        began = time.monotonic()
        run = run_action(
            sandbox,
            "workflow_dispatch",
            dispatch_event("1-3"),
            api_url=httpserver.url_for("").rstrip("/"),
            inputs={"executor": marker_executor(sandbox), "lock-timeout": f"{LOCK_TIMEOUT:g}"},
            timeout=LOCK_TIMEOUT + MARGIN,
        )
        took = time.monotonic() - began
    finally:
        holder.close()
    assert took < LOCK_TIMEOUT + MARGIN
    assert run.code == 1, run.err + run.out
    assert f"TODO.md.lock is held by pid {holder.pid}" in run.err
    assert run.err.count("waiting up to") == 1
    assert sandbox.ran() == ["ran-1", "ran-2", "ran-3"]
    assert run.outputs["result"] == "failure"
    summary = json.loads(run.outputs["summary-json"])
    assert summary["todo_lock"]["gave_up"] is True
    assert summary["todo_lock"]["waited_s"] >= LOCK_TIMEOUT - 0.5
    assert "TODO.md was not written" in run.step_summary
    # No status reached TODO.md, so none was committed in the bot's name.
    tip = sandbox.tip("feature")
    assert "[COMPLETED]" not in sandbox.show(tip, "TODO.md")


def test_an_empty_lock_file_names_no_holder_and_raises_nothing(tmp_path: Path) -> None:
    """``flock TODO.md.lock -c ...`` (a shell script's lock) writes nothing into the file:
    naming the holder must not fail (it killed the status writer, and the run hung)."""
    from batchaction.lockwait import holder_of

    lock = tmp_path / "TODO.md.lock"
    lock.write_text("")
    assert holder_of(lock) == "another process"
    lock.write_text("not-a-pid\n")
    assert holder_of(lock) == "another process"
