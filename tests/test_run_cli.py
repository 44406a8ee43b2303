"""``batchaction status set`` and the ``run`` command line's own errors, as real processes."""

from __future__ import annotations

import resource
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from runhelpers import (
    Spec,
    Workspace,
    clean_env,
    field_lines,
    make_workspace,
    read_exact,
    status_lines,
    task_fields,
    todo_text,
    wait_for,
)

from batchaction.writeback import today


def batchaction(*args: str, cwd: Path, timeout: float = 60) -> tuple[int, str, str]:
    """Run ``python -m batchaction ARGS`` in ``cwd``: (exit code, stdout, stderr)."""
    proc = subprocess.run(
        [sys.executable, "-m", "batchaction", *args],
        cwd=cwd,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return proc.returncode, proc.stdout, proc.stderr


def assert_clean_error(result: tuple[int, str, str], *words: str) -> None:
    """Exit 2 with one ``batchaction: error:`` message naming ``words`` and no traceback."""
    code, out, err = result
    assert code == 2, (out, err)
    assert "Traceback" not in err
    assert "batchaction: error:" in err
    for word in words:
        assert word in err


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    """A workspace whose TODO.md holds tasks 1-3 in list-item style."""
    workspace = make_workspace(tmp_path)
    workspace.write([Spec(1), Spec(2, deps="Task 1"), Spec(3)])
    return workspace


class TestStatusSet:
    def test_sets_status_and_date_and_keeps_the_lock_file(self, ws: Workspace) -> None:
        """``status set 2 completed`` writes [COMPLETED] and a date; the lock file stays."""
        before = read_exact(ws.todo)
        code, _, err = batchaction("status", "set", "2", "completed", cwd=ws.repo)
        assert code == 0, err
        after = read_exact(ws.todo)
        assert task_fields(after, 2)["Status"] == "[COMPLETED]"
        assert task_fields(after, 2)["Completed"] == today()
        assert (ws.repo / "TODO.md.lock").exists()
        assert status_lines(after)[1] == status_lines(before)[1]
        assert status_lines(after)[3] == status_lines(before)[3]
        assert len(after.splitlines()) == len(before.splitlines()) + 1

    def test_failed_with_reason(self, ws: Workspace) -> None:
        """``--reason`` becomes the Failure Reason, folded to one line."""
        code, _, err = batchaction(
            "status", "set", "#3", "FAILED", "--reason", "flaky\nnetwork", cwd=ws.repo
        )
        assert code == 0, err
        fields = task_fields(read_exact(ws.todo), 3)
        assert fields["Status"] == "[FAILED]"
        assert fields["Failure Reason"] == "flaky network"

    def test_not_started_puts_the_marker_back(self, ws: Workspace) -> None:
        """``not-started`` after ``in-progress`` restores the file's not-started marker, and
        the Started line, no longer true, goes."""
        assert batchaction("status", "set", "1", "in-progress", cwd=ws.repo)[0] == 0
        assert task_fields(read_exact(ws.todo), 1)["Status"] == "[IN PROGRESS]"
        assert batchaction("status", "set", "1", "not-started", cwd=ws.repo)[0] == 0
        text = read_exact(ws.todo)
        assert task_fields(text, 1)["Status"] == "[NOT STARTED]"
        assert field_lines(text, 1, "Started") == []

    def test_configured_markers_are_used(self, ws: Workspace) -> None:
        """Status markers from the configuration file are written verbatim."""
        config = ws.repo / ".github" / "batchaction.yml"
        config.parent.mkdir()
        config.write_text("status-markers:\n  completed: '[DONE ✅]'\n", encoding="utf-8")
        code, _, err = batchaction("status", "set", "1", "done", cwd=ws.repo)
        assert code == 0, err
        assert task_fields(read_exact(ws.todo), 1)["Status"] == "[DONE ✅]"

    def test_crlf_file_stays_crlf(self, tmp_path: Path) -> None:
        """A CRLF file keeps CRLF on every line, new ones included."""
        todo = tmp_path / "TODO.md"
        todo.write_bytes(todo_text([Spec(1), Spec(2)], eol="\r\n", list_items=False).encode())
        code, _, err = batchaction("status", "set", "2", "blocked", "--reason", "x", cwd=tmp_path)
        assert code == 0, err
        data = todo.read_bytes()
        assert data.count(b"\n") == data.count(b"\r\n")
        assert b"\r\n**Blocking Reason**: x\r\n" in data

    def test_waits_for_the_lock(self, ws: Workspace) -> None:
        """While another process holds TODO.md.lock, ``status set`` waits and loses no edit."""
        held = ws.root / "held"
        todo = shlex.quote(str(ws.todo))
        # The holder opens TODO.md before pausing: a write that did not wait for the lock
        # would replace the file in between, and the holder's line would be lost with it.
        script = f"exec 3>>{todo}; touch {shlex.quote(str(held))}; sleep 1; echo held-edit >&3"
        holder = subprocess.Popen(["flock", str(ws.todo) + ".lock", "-c", script])
        try:
            assert wait_for(held.exists, timeout=30)
            code, _, err = batchaction("status", "set", "3", "completed", cwd=ws.repo)
            holder_code = holder.wait(timeout=30)
        finally:
            if holder.poll() is None:
                holder.kill()
                holder.wait()
        assert code == 0, err
        assert holder_code == 0
        text = read_exact(ws.todo)
        assert text.endswith("held-edit\n")
        assert task_fields(text, 3)["Status"] == "[COMPLETED]"

    def test_unknown_task(self, ws: Workspace) -> None:
        """An unknown task number exits 2 with a message and leaves the file alone."""
        before = read_exact(ws.todo)
        assert_clean_error(batchaction("status", "set", "99", "done", cwd=ws.repo), "task 99")
        assert read_exact(ws.todo) == before

    @pytest.mark.parametrize("word", ["", "a | b", "**done**"])
    def test_bad_status_word(self, ws: Workspace, word: str) -> None:
        """Text that cannot be one Status value exits 2 naming it (any word can)."""
        before = read_exact(ws.todo)
        assert_clean_error(
            batchaction("status", "set", "1", word, cwd=ws.repo), "invalid status", repr(word)
        )
        assert read_exact(ws.todo) == before

    def test_bad_number(self, ws: Workspace) -> None:
        """A task number that is not digits exits 2 naming it."""
        assert_clean_error(batchaction("status", "set", "one", "done", cwd=ws.repo), "'one'")

    def test_duplicate_task(self, tmp_path: Path) -> None:
        """A task defined twice is refused rather than guessed."""
        (tmp_path / "TODO.md").write_text(todo_text([Spec(1), Spec(1)]), encoding="utf-8")
        assert_clean_error(
            batchaction("status", "set", "1", "done", cwd=tmp_path), "more than once"
        )

    def test_write_failure_exits_one(self, tmp_path: Path) -> None:
        """A TODO file that cannot be rewritten exits 1 with the reason and leaves no temp file."""
        todo = tmp_path / "TODO.md"
        original = todo_text([Spec(1)], notes="x" * 8000).encode()
        todo.write_bytes(original)

        def limit() -> None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

        proc = subprocess.run(
            [sys.executable, "-m", "batchaction", "status", "set", "1", "done"],
            cwd=tmp_path,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            preexec_fn=limit,
        )
        assert proc.returncode == 1, proc.stderr
        assert "cannot write: File too large" in proc.stderr
        assert "Traceback" not in proc.stderr
        assert todo.read_bytes() == original
        assert sorted(p.name for p in tmp_path.iterdir()) == ["TODO.md", "TODO.md.lock"]

    def test_missing_todo(self, tmp_path: Path) -> None:
        """No TODO file exits 2 with the places it looked."""
        assert_clean_error(batchaction("status", "set", "1", "done", cwd=tmp_path), "TODO.md")


class TestRunErrors:
    def test_success_exits_zero(self, ws: Workspace) -> None:
        """A run whose tasks all complete exits 0 and marks them completed."""
        result = ws.run("1-3")
        assert result.code == 0, result.err
        assert set(result.outcomes().values()) == {"completed"}
        assert "This run was a success" in result.err
        assert (ws.repo / "TODO.md.lock").exists()

    def test_missing_executor(self, ws: Workspace) -> None:
        """``run`` without an executor exits 2 and starts nothing."""
        before = read_exact(ws.todo)
        assert_clean_error(batchaction("run", "1-3", cwd=ws.repo), "no executor")
        assert read_exact(ws.todo) == before

    @pytest.mark.parametrize(
        ("option", "value"),
        [("--timeout", "soon"), ("--max-parallel", "0"), ("--grace", "-1"), ("--retries", "x")],
    )
    def test_bad_option_values(self, ws: Workspace, option: str, value: str) -> None:
        """Bad option values exit 2 naming the value, before anything runs."""
        before = read_exact(ws.todo)
        result = batchaction("run", "1", "--executor", "true", f"{option}={value}", cwd=ws.repo)
        assert_clean_error(result, repr(value))
        assert read_exact(ws.todo) == before
        assert not ws.probe_log.exists()

    def test_cycle_is_refused(self, tmp_path: Path) -> None:
        """A dependency cycle exits 2 naming it, and nothing runs or changes."""
        ws = make_workspace(tmp_path)
        before = ws.write([Spec(1, deps="Task 3"), Spec(2, deps="Task 1"), Spec(3, deps="Task 2")])
        result = ws.run("1-3")
        assert result.code == 2
        assert "1 -> 2 -> 3 -> 1" in result.err
        assert result.todo == before
        assert not ws.probe_log.exists()
