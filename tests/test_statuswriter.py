"""The status writer (SPEC 6): coalesced writes, and writes that keep failing become warnings."""

from __future__ import annotations

import resource
import signal
import stat
from pathlib import Path
from typing import Any

import pytest
from conftest import RunCli
from runhelpers import Spec, Workspace, make_workspace, read_exact, task_fields, todo_text

from batchaction import statuswriter
from batchaction.statuswriter import StatusWriter
from batchaction.writeback import PatchResult, StatusChange

DATE = "2032-03-04"
FILE_LIMIT = 48 * 1024  # bytes: below the TODO file's size, above the summaries' size
PADDING = "\n".join(f"Padding line {n:05d} of the notes section." for n in range(2500))


def limit_file_size() -> None:
    """In the child: files may not grow past FILE_LIMIT, and growing them fails with EFBIG."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_LIMIT, FILE_LIMIT))


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    """A workspace with the probe executor and no TODO.md yet."""
    return make_workspace(tmp_path)


class TestUnwritableTodo:
    @pytest.mark.parametrize("failing", ["", "2"], ids=["pass", "fail"])
    def test_failed_writes_are_reported_not_fatal(self, ws: Workspace, failing: str) -> None:
        """When TODO.md cannot be rewritten, tasks still run and the summary lists lost
        updates; the run is not a success (exit 1), even when every task completed."""
        original = ws.write([Spec(1), Spec(2), Spec(3, deps="Task 1")], notes=PADDING)
        assert len(original.encode()) > FILE_LIMIT
        env = {f"PROBE_EXIT_{failing}": "1"} if failing else {}
        result = ws.run("1-3", env=env, preexec_fn=limit_file_size)
        assert result.code == 1, result.err
        assert result.summary is not None
        outcomes = result.outcomes()
        assert outcomes[1] == "completed"
        assert outcomes[3] == "completed"
        assert outcomes[2] == ("failed" if failing else "completed")
        assert result.todo == original
        failed = result.summary["status_updates_failed"]
        landed = {(u["number"], u["status"]) for u in failed}
        final = "failed" if failing else "completed"
        assert {(1, "in-progress"), (1, "completed"), (2, final), (3, "completed")} <= landed
        assert all("too large" in u["error"].lower() for u in failed), failed
        assert "did not reach the TODO file" in ws.summary_md.read_text(encoding="utf-8")
        assert not [p.name for p in ws.repo.iterdir() if p.name not in ("TODO.md", "TODO.md.lock")]

    def test_read_only_todo_keeps_its_bytes(self, ws: Workspace) -> None:
        """A 0444 TODO.md is never replaced (not even by root): the tasks run, and every status
        update is reported as not written, in the summary JSON, the Markdown and on stderr."""
        original = ws.write([Spec(1), Spec(2, deps="Task 1"), Spec(3)])
        ws.todo.chmod(0o444)
        result = ws.run("1-3", env={"PROBE_EXIT_3": "1"})
        assert result.code == 1, result.err
        assert result.outcomes() == {1: "completed", 2: "completed", 3: "failed"}
        assert sorted(ws.timeline().started()) == [1, 2, 3]
        assert ws.todo.read_bytes() == original.encode()
        assert stat.S_IMODE(ws.todo.stat().st_mode) == 0o444
        assert result.summary is not None
        failed = result.summary["status_updates_failed"]
        assert sorted((u["number"], u["status"]) for u in failed) == [
            (1, "completed"),
            (1, "in-progress"),
            (2, "completed"),
            (2, "in-progress"),
            (3, "failed"),
            (3, "in-progress"),
        ]
        assert {u["error"] for u in failed} == {"Permission denied (read-only file)"}
        assert (
            "! status completed of 1 not written: Permission denied (read-only file)" in result.err
        )
        assert "did not reach the TODO file" in ws.summary_md.read_text(encoding="utf-8")
        assert sorted(p.name for p in ws.repo.iterdir()) == ["TODO.md", "TODO.md.lock"]

    def test_status_set_on_a_read_only_todo_is_a_clean_error(
        self, ws: Workspace, cli: RunCli
    ) -> None:
        """``status set`` on a 0444 TODO.md exits 1 with one error line; the file is unchanged."""
        original = ws.write([Spec(1)])
        ws.todo.chmod(0o444)
        code, out, err = cli("status", "set", "1", "completed", "--todo", "TODO.md", cwd=ws.repo)
        assert code == 1, (out, err)
        assert "Traceback" not in err
        assert err.strip() == (
            "batchaction: error: TODO.md: cannot write: Permission denied (read-only file)"
        )
        assert read_exact(ws.todo) == original
        assert stat.S_IMODE(ws.todo.stat().st_mode) == 0o444


class TestStatusWriter:
    def test_burst_is_coalesced_and_lands(self, tmp_path: Path) -> None:
        """Many changes submitted at once land in fewer writes, all of them applied in order."""
        todo = tmp_path / "TODO.md"
        todo.write_text(todo_text([Spec(n) for n in range(1, 31)]), encoding="utf-8")
        writer = StatusWriter(todo)
        try:
            for number in range(1, 31):
                writer.submit(StatusChange(number, "in-progress", DATE))
            for number in range(1, 31):
                writer.submit(StatusChange(number, "completed", DATE))
            writer.flush()
            text = todo.read_text(encoding="utf-8")
            assert writer.writes < 60
        finally:
            writer.close()
        assert writer.failed == []
        for number in range(1, 31):
            fields = task_fields(text, number)
            assert fields["Status"] == "[COMPLETED]"
            assert fields["Started"] == DATE
            assert fields["Completed"] == DATE

    def test_io_errors_are_recorded_not_raised(self, tmp_path: Path) -> None:
        """A write that keeps failing is retried, then recorded in ``failed``, never raised."""
        todo = tmp_path / "gone" / "TODO.md"
        writer = StatusWriter(todo, attempts=3, backoff=0.001)
        changes = [StatusChange(1, "in-progress", DATE), StatusChange(2, "failed", DATE, "x")]
        for change in changes:
            writer.submit(change)
        writer.close()
        assert [f.change for f in writer.failed] == changes
        assert all(f.error for f in writer.failed)
        assert writer.writes == 0

    def test_read_only_todo_is_retried_then_recorded(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A refused write to a 0444 file is retried, then recorded in ``failed``."""
        todo = tmp_path / "TODO.md"
        data = todo_text([Spec(1), Spec(2)]).encode()
        todo.write_bytes(data)
        todo.chmod(0o444)
        calls: list[int] = []
        real = statuswriter.write_changes

        def counting(*args: Any, **kwargs: Any) -> PatchResult:
            calls.append(1)
            return real(*args, **kwargs)

        monkeypatch.setattr(statuswriter, "write_changes", counting)
        writer = StatusWriter(todo, attempts=3, backoff=0.001)
        changes = [StatusChange(1, "in-progress", DATE), StatusChange(2, "failed", DATE, "x")]
        for change in changes:
            writer.submit(change)
        writer.close()
        assert [f.change for f in writer.failed] == changes
        assert {f.error for f in writer.failed} == {"Permission denied (read-only file)"}
        assert writer.writes == 0
        assert len(calls) == 3
        assert todo.read_bytes() == data

    def test_unreadable_text_is_recorded(self, tmp_path: Path) -> None:
        """A TODO file that became binary is not written; the change is recorded as failed."""
        todo = tmp_path / "TODO.md"
        todo.write_bytes(b"### 1. T\n**Status**: [NOT STARTED]\n\x00\n")
        writer = StatusWriter(todo, attempts=2, backoff=0.001)
        writer.submit(StatusChange(1, "completed", DATE))
        writer.close()
        assert len(writer.failed) == 1
        assert "NUL" in writer.failed[0].error
        assert todo.read_bytes() == b"### 1. T\n**Status**: [NOT STARTED]\n\x00\n"

    def test_vanished_task_is_reported_missing(self, tmp_path: Path) -> None:
        """A change for a task no longer in the file is listed in ``missing``, others still land."""
        todo = tmp_path / "TODO.md"
        todo.write_text(todo_text([Spec(1)]), encoding="utf-8")
        seen: list[int] = []
        writer = StatusWriter(todo, on_write=lambda r: seen.extend(c.number for c in r.applied))
        writer.submit(StatusChange(1, "completed", DATE))
        writer.submit(StatusChange(7, "completed", DATE))
        writer.close()
        assert [c.number for c in writer.missing] == [7]
        assert seen == [1]
        assert task_fields(todo.read_text(encoding="utf-8"), 1)["Status"] == "[COMPLETED]"
