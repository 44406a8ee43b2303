"""Status write-back (SPEC 6): field style, line endings, unicode, in-place updates, locking."""

from __future__ import annotations

import errno
import os
import re
import shlex
import stat
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given, note
from hypothesis import strategies as st
from runhelpers import (
    LIFECYCLE,
    Spec,
    Workspace,
    field_lines,
    make_workspace,
    read_exact,
    status_lines,
    task_fields,
    todo_text,
)

from batchaction.status import detect_style
from batchaction.todo import Task, TodoDocument, parse_todo
from batchaction.writeback import StatusChange, apply_changes, patch_status, write_changes

LIFECYCLE_KEYS = frozenset(["status", *(name.lower() for name in LIFECYCLE)])
DATE = "2031-02-03"


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    """A workspace with the probe executor and no TODO.md yet."""
    return make_workspace(tmp_path)


def patched_lines(doc: TodoDocument, numbers: set[int]) -> set[int]:
    """Indices of the Status and lifecycle field lines of the given tasks."""
    return {
        field.line
        for task in doc.tasks
        if task.number in numbers
        for field in task.fields
        if field.key in LIFECYCLE_KEYS
    }


def without(doc: TodoDocument, indices: set[int]) -> list[str]:
    return [line for index, line in enumerate(doc.lines) if index not in indices]


def assert_only_status_lines_changed(before: str, after: str, numbers: set[int]) -> None:
    """Apart from the tasks' Status and lifecycle lines, ``after`` is ``before`` line for line."""
    old, new = parse_todo(before), parse_todo(after)
    assert without(new, patched_lines(new, numbers)) == without(old, patched_lines(old, numbers))


class TestFieldStyle:
    def test_list_item_style(self, ws: Workspace) -> None:
        """Tasks written as list items get ``- **Started**:`` lines right after Status."""
        ws.write([Spec(1), Spec(2)], list_items=True)
        result = ws.run("1-2", env={"PROBE_EXIT_2": "1"})
        assert result.code == 1, result.err
        doc = parse_todo(result.todo)
        (task,) = [t for t in doc.tasks if t.number == 1]
        section = list(doc.lines[task.heading_line : task.end_line])
        assert section[:6] == [
            "### 1. Task number 1\n",
            "- **Effort**: 1 hour\n",
            "- **Status**: [COMPLETED]\n",
            f"- **Started**: {result.fields(1)['Started']}\n",
            f"- **Completed**: {result.fields(1)['Started']}\n",
            "- **Dependencies**: None\n",
        ]
        assert field_lines(result.todo, 2, "Failure Reason") == [
            "- **Failure Reason**: exit code 1\n"
        ]

    def test_plain_style(self, ws: Workspace) -> None:
        """Tasks written as plain lines get ``**Started**:`` lines without a bullet."""
        ws.write([Spec(1)], list_items=False)
        result = ws.run("1")
        assert result.code == 0, result.err
        started = field_lines(result.todo, 1, "Started")
        assert started == [f"**Started**: {result.fields(1)['Started']}\n"]
        assert field_lines(result.todo, 1, "Completed")[0].startswith("**Completed**: ")

    def test_each_task_keeps_its_own_style(self, ws: Workspace) -> None:
        """In a file mixing styles, new lines copy the style (and colon placement) of their task."""
        text = (
            "# TODO\n\n"
            "### 1. Listed\n- **Status**: [NOT STARTED]\n- **Dependencies**: None\n\n"
            "### 2. Plain\n**Status:** [NOT STARTED]\n**Dependencies:** None\n\n"
            "### 3. Indented\n  * **Status**: [NOT STARTED]\n  * **Dependencies**: None\n"
        )
        ws.todo.write_text(text, encoding="utf-8")
        result = ws.run("1-3")
        assert result.code == 0, result.err
        assert field_lines(result.todo, 1, "Started")[0].startswith("- **Started**: ")
        lines = parse_todo(result.todo).lines
        assert any(line.startswith("**Started:** ") for line in lines)
        assert any(line.startswith("  * **Started**: ") for line in lines)
        assert_only_status_lines_changed(text, result.todo, {1, 2, 3})

    def test_complete_spelling_is_followed(self, ws: Workspace) -> None:
        """A file that spells done as ``[COMPLETE]`` gets ``[COMPLETE]``."""
        ws.write([Spec(1, status="[COMPLETE]"), Spec(2, status="[COMPLETE] ✅"), Spec(3)])
        result = ws.run("3")
        assert result.code == 0, result.err
        assert result.fields(3)["Status"] == "[COMPLETE]"

    def test_plain_word_statuses_stay_plain(self, ws: Workspace) -> None:
        """A file without bracketed statuses gets plain words such as ``Completed``."""
        ws.write([Spec(1, status="Not Started"), Spec(2, status="Planned")])
        result = ws.run("1-2")
        assert result.code == 0, result.err
        assert result.fields(1)["Status"] == "Completed"
        assert result.fields(2)["Status"] == "Completed"


CRLF_SPECS = [
    Spec(1, title="Ünïcode tïtle ✅ with emoji 🚀", body="Body with trailing spaces   "),
    Spec(2, title="Second — “quoted” 日本語", deps="Task 1"),
    Spec(3, title="Fails  ", body="\t tab-indented text\t"),
    Spec(4, title="Not selected ☃", body="**Note**: untouched   "),
]


class TestBytesPreserved:
    def test_crlf_unicode_and_trailing_spaces(self, ws: Workspace) -> None:
        """A CRLF file stays all-CRLF and every line outside the status lines is unchanged."""
        text = todo_text(CRLF_SPECS, eol="\r\n", notes="Trailing   \r\n\r\nEnd ✨  ")
        text = text.replace("**Status**: [NOT STARTED]\r\n", "**Status**: [NOT STARTED]  \r\n", 1)
        ws.todo.write_bytes(text.encode("utf-8"))
        result = ws.run("1-3", env={"PROBE_EXIT_3": "5"})
        assert result.code == 1, result.err
        data = ws.todo.read_bytes()
        assert data.count(b"\n") == data.count(b"\r\n")
        assert data.count(b"\r") == data.count(b"\r\n")
        assert_only_status_lines_changed(text, result.todo, {1, 2, 3})
        assert status_lines(result.todo)[1] == "- **Status**: [COMPLETED]  \r\n"
        assert status_lines(result.todo)[4] == status_lines(text)[4]
        assert len(field_lines(result.todo, 1, "Started")) == 1
        assert field_lines(result.todo, 3, "Failure Reason") == [
            "- **Failure Reason**: exit code 5\r\n"
        ]

    def test_file_without_final_newline(self, ws: Workspace) -> None:
        """A last task without a final newline gets its new lines and keeps the file shape."""
        text = "# TODO\r\n\r\n### 1. Last\r\n**Dependencies**: None\r\n**Status**: [NOT STARTED]"
        ws.todo.write_bytes(text.encode("utf-8"))
        result = ws.run("1")
        assert result.code == 0, result.err
        assert result.todo.startswith("# TODO\r\n\r\n### 1. Last\r\n**Dependencies**: None\r\n")
        assert result.todo.count("\n") == result.todo.count("\r\n")
        assert not result.todo.endswith("\n")
        assert result.fields(1)["Status"] == "[COMPLETED]"
        assert "Completed" in result.fields(1)

    def test_rerun_updates_lines_in_place(self, ws: Workspace) -> None:
        """Re-running a task rewrites its Started line where it is and never duplicates fields."""
        ws.write(
            [
                Spec(
                    1,
                    status="[FAILED]",
                    extra=(
                        "**Started**: 2020-01-01",
                        "**Failed**: 2020-01-02",
                        "**Failure Reason**: exit code 1",
                    ),
                )
            ]
        )
        before = parse_todo(read_exact(ws.todo)).tasks[0]
        first = ws.run("1")
        assert first.code == 0, first.err
        after = parse_todo(first.todo).tasks[0]
        started_before = before.field("started")
        started_after = after.field("started")
        assert started_before is not None
        assert started_after is not None
        assert started_after.line == started_before.line
        assert started_after.value != "2020-01-01"
        second = ws.run("1")
        assert second.code == 0, second.err
        assert len(second.todo.splitlines()) == len(first.todo.splitlines())
        for name in ("Status", "Started", "Completed"):
            assert len(field_lines(second.todo, 1, name)) == 1, name
        assert second.fields(1)["Status"] == "[COMPLETED]"


class TestFilePermissions:
    def test_mode_0640_is_kept(self, ws: Workspace) -> None:
        """A TODO.md with mode 0640 still has mode 0640 after a run's status writes."""
        original = ws.write([Spec(1), Spec(2, deps="Task 1")])
        ws.todo.chmod(0o640)
        result = ws.run("1-2")
        assert result.code == 0, result.err
        assert result.todo != original
        assert result.fields(2)["Status"] == "[COMPLETED]"
        assert stat.S_IMODE(ws.todo.stat().st_mode) == 0o640
        assert result.summary is not None
        assert result.summary["status_updates_failed"] == []

    def test_read_only_file_is_refused(self, tmp_path: Path) -> None:
        """A 0444 file is not replaced, not even by root: PermissionError, bytes and mode kept."""
        todo = tmp_path / "TODO.md"
        data = todo_text([Spec(1)]).encode()
        todo.write_bytes(data)
        todo.chmod(0o444)
        with pytest.raises(PermissionError) as caught:
            write_changes(todo, [StatusChange(1, "completed", DATE)])
        assert caught.value.errno == errno.EACCES
        assert caught.value.filename == str(todo.resolve())
        assert "read-only" in (caught.value.strerror or "")
        assert todo.read_bytes() == data
        assert stat.S_IMODE(todo.stat().st_mode) == 0o444
        assert sorted(p.name for p in tmp_path.iterdir()) == ["TODO.md", "TODO.md.lock"]

    def test_file_the_user_may_not_write_is_refused(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A file with write bits that access(2) still refuses (another owner) is not replaced."""
        todo = tmp_path / "TODO.md"
        data = todo_text([Spec(1)]).encode()
        todo.write_bytes(data)
        todo.chmod(0o644)
        real_access = os.access
        asked: list[str] = []

        def access(path: str | os.PathLike[str], mode: int, **kwargs: bool) -> bool:
            if Path(path) == todo.resolve() and mode == os.W_OK:
                asked.append(str(path))
                return False
            return real_access(path, mode, **kwargs)

        monkeypatch.setattr(os, "access", access)
        with pytest.raises(PermissionError) as caught:
            write_changes(todo, [StatusChange(1, "completed", DATE)])
        assert asked
        assert caught.value.errno == errno.EACCES
        assert todo.read_bytes() == data

    def test_unchanged_read_only_file_is_not_an_error(self, tmp_path: Path) -> None:
        """A write that changes nothing does not replace the file, so a read-only one is fine."""
        todo = tmp_path / "TODO.md"
        todo.write_bytes(todo_text([Spec(1, status="[COMPLETED]")]).encode())
        todo.chmod(0o444)
        change = StatusChange(1, "restore", DATE, previous="[COMPLETED]")
        assert write_changes(todo, [change]).applied == (change,)


# --- patch_status and apply_changes as functions ------------------------------------------------

FIELD_NAMES = ("Started", "Completed", "Failed", "Failure Reason", "Blocked", "Blocking Reason")
TITLES = ("Plain title", "Ünïcode ✅ 🚀", "Trailing  ", "Title with **stars**", "日本語のタスク")
BODIES = (
    "",
    "Some description.   ",
    "**Note**: a field that is not a status",
    "```\n### 999. not a task\n- **Status**: [COMPLETED]\n```",
    "#### Details\nSub-heading text",
    "Line with\u2028separator and \x0c form feed",
)
REASONS = st.one_of(
    st.none(),
    st.text(st.characters(exclude_characters="\x00"), max_size=40),
    st.just("x " * 400),
)
PREVIOUS = st.one_of(
    st.sampled_from(["[NOT STARTED]", "[PLANNED]", "Not Started", "[BLOCKED] (waiting)"]),
    st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=10),
)


@st.composite
def todo_documents(draw: st.DrawFn) -> tuple[str, list[int]]:
    """A TODO text of tasks in random styles (some with lifecycle fields), and the task numbers."""
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    trailing = st.sampled_from(["", "", " ", "  ", "\t"])
    numbers = draw(st.lists(st.integers(1, 300), min_size=1, max_size=6, unique=True))
    lines = ["# TODO" + draw(trailing), ""]
    for number in numbers:
        level = draw(st.integers(2, 4))
        bullet = draw(st.sampled_from(["", "- ", "* ", "  - "]))
        colon_inside = draw(st.booleans())

        def field(name: str, value: str, bullet: str = bullet, inside: bool = colon_inside) -> str:
            label = f"**{name}:**" if inside else f"**{name}**:"
            return f"{bullet}{label} {value}"

        lines.append(f"{'#' * level} {number}. {draw(st.sampled_from(TITLES))}")
        extra = draw(st.lists(st.sampled_from(FIELD_NAMES), unique=True, max_size=4))
        split = draw(st.integers(0, len(extra)))
        lines += [field(name, "2001-01-01" + draw(trailing)) for name in extra[:split]]
        lines.append(field("Status", draw(st.sampled_from(["[NOT STARTED]", "Planned", ""]))))
        lines[-1] += draw(trailing)
        lines += [field(name, "old value" + draw(trailing)) for name in extra[split:]]
        if draw(st.booleans()):
            lines.append(field("Dependencies", "None"))
        body = draw(st.sampled_from(BODIES))
        if body:
            lines += ["", *body.split("\n")]
        lines.append("")
    if lines[-1] == "" and draw(st.booleans()):
        lines.pop()  # the last task ends the file
    text = eol.join(lines) + (eol if draw(st.booleans()) else "")
    return text, numbers


@st.composite
def documents_and_changes(draw: st.DrawFn) -> tuple[str, list[StatusChange]]:
    text, numbers = draw(todo_documents())
    changes = draw(
        st.lists(
            st.builds(
                StatusChange,
                number=st.sampled_from(numbers),
                outcome=st.sampled_from(
                    ["in-progress", "completed", "failed", "blocked", "restore"]
                ),
                date=st.sampled_from(["2030-01-01", "2031-12-31"]),
                reason=REASONS,
                previous=PREVIOUS,
            ),
            min_size=1,
            max_size=8,
        )
    )
    return text, changes


OLD_LIFECYCLE = (
    "**Started**: 2020-01-01",
    "**Failed**: 2020-01-02",
    "**Failure Reason**: exit code 1",
)


def restore_change(task: Task, lines: Sequence[str] = ()) -> StatusChange:
    """The restore the scheduler submits for a cancelled task: its Status and Started as read,
    and its section's lines (``lines`` is the whole file as read)."""
    started = task.field("started")
    return StatusChange(
        task.number,
        "restore",
        DATE,
        previous=task.status,
        previous_fields=(("Started", started.value if started is not None else None),),
        previous_lines=tuple(lines[task.heading_line : task.end_line]),
    )


def fold(text: str | None) -> str:
    """A reason as written: one line, at most 300 characters, never opening or closing an
    HTML comment (which would hide the fields after it)."""
    if text:
        text = text.replace("<!--", "<!- -").replace("-->", "- ->")
    folded = " ".join(text.split()) if text else "no reason given"
    return folded if len(folded) <= 300 else folded[:299] + "…"


DATED = {
    "in-progress": ("Started", None),
    "completed": ("Completed", None),
    "failed": ("Failed", "Failure Reason"),
    "blocked": ("Blocked", "Blocking Reason"),
}
# What each outcome makes untrue (the generated dated values are all dates).
STALE = {
    "in-progress": {"completed", "blocked", "blocking reason"},
    "completed": {"failed", "failure reason", "blocked", "blocking reason"},
    "failed": {"completed", "blocked", "blocking reason"},
    "blocked": {"completed", "failed", "failure reason"},
}


def expected_fields(
    changes: Sequence[StatusChange], style_render: dict[str, str], before: TodoDocument
) -> dict[int, dict[str, str | None]]:
    """What each changed task's Status and lifecycle fields must read after the changes
    (None: the field must be gone). A dated field goes only when it holds a date."""
    initial = {t.number: {f.key: f.value for f in t.fields} for t in before.tasks}
    expected: dict[int, dict[str, str | None]] = {}
    current: dict[int, dict[str, str | None]] = {}
    for change in changes:
        fields = expected.setdefault(change.number, {})
        now = current.setdefault(change.number, dict(initial[change.number]))
        if change.outcome == "restore":
            fields["status"] = (change.previous or "").strip(" \t")
            continue
        fields["status"] = style_render[change.outcome]
        for key in STALE[change.outcome]:
            value = now.get(key)
            if value is not None and (
                key.endswith("reason") or re.match(r"\d{4}-\d\d-\d\d", value)
            ):
                fields[key] = now[key] = None
        dated, reason = DATED[change.outcome]
        fields[dated.lower()] = now[dated.lower()] = change.date
        if reason is not None:
            fields[reason.lower()] = now[reason.lower()] = fold(change.reason)
    return expected


class TestApplyChanges:
    @given(documents_and_changes())
    def test_only_the_changed_tasks_status_lines_change(
        self, case: tuple[str, list[StatusChange]]
    ) -> None:
        """Random changes on random documents touch only the changed tasks' status lines."""
        text, changes = case
        old = parse_todo(text)
        result = apply_changes(text, changes)
        assert result.missing == ()
        assert result.applied == tuple(changes)
        assert_only_status_lines_changed(text, result.text, {c.number for c in changes})
        if "\r\n" in text:  # the generated documents use one line ending throughout
            assert result.text.count("\r\n") == result.text.count("\n")

        new = parse_todo(result.text)
        assert [t.number for t in new.tasks] == [t.number for t in old.tasks]
        style = detect_style(t.status for t in old.tasks)
        render = {o: style.render(o) for o in DATED}
        wanted = expected_fields(changes, render, old)
        for before, after in zip(old.tasks, new.tasks, strict=True):
            fields = {f.key: f.value for f in after.fields}
            if before.number not in wanted:
                assert after.status == before.status
                continue
            for key, value in wanted[before.number].items():
                assert fields.get(key) == value, (before.number, key)

    @given(todo_documents())
    def test_restoring_the_old_status_only_touches_the_status_value(
        self, case: tuple[str, list[int]]
    ) -> None:
        """Restoring each task's own status gives back the file byte for byte."""
        text, _ = case
        doc = parse_todo(text)
        changes = [StatusChange(t.number, "restore", DATE, previous=t.status) for t in doc.tasks]
        assert apply_changes(text, changes).text == text

    @given(todo_documents())
    def test_start_then_restore_gives_back_the_file(self, case: tuple[str, list[int]]) -> None:
        """Starting tasks, then restoring them as an interrupt does, gives back the file exactly.

        The Started line a start added is removed again, one it overwrote gets its old value,
        whether the two changes land in separate writes or in one.
        """
        text, _ = case
        doc = parse_todo(text)
        # An empty Status value loses its trailing blanks when set (an old limitation).
        tasks = [t for t in doc.tasks if t.status]
        started = [StatusChange(t.number, "in-progress", DATE) for t in tasks]
        restored = [restore_change(t, doc.lines) for t in tasks]
        middle = apply_changes(text, started).text
        note(middle)
        for task in parse_todo(middle).tasks:
            if task.number in {t.number for t in tasks}:
                assert task.field("started") is not None
        assert apply_changes(middle, restored).text == text
        assert apply_changes(text, started + restored).text == text

    def test_start_then_restore_with_a_nested_task(self) -> None:
        """A task nested in another's section: restoring the inner one changes its line count,
        and the outer one's restore must not see (or cut) the inner lines."""
        text = (
            "# TODO\n\n## 2. Outer\n**Started**: 2001-01-01\n**Completed**: 2001-01-01\n"
            "**Status**: [NOT STARTED]\n**Failed**: old value\n\n### 3. Inner\n"
            "**Started**: 2001-01-01\n**Completed**: 2001-01-01\n**Status**: [NOT STARTED]\n"
        )
        doc = parse_todo(text)
        started = [StatusChange(t.number, "in-progress", DATE) for t in doc.tasks]
        restored = [restore_change(t, doc.lines) for t in doc.tasks]
        middle = apply_changes(text, started).text
        assert "Completed" not in middle
        assert apply_changes(middle, restored).text == text
        assert apply_changes(text, started + restored).text == text

    def test_restore_in_a_crlf_file_of_several_tasks(self) -> None:
        """Restoring, in one write, a task without and one with an older Started line."""
        specs = [
            Spec(1, body="Body   "),
            Spec(2, status="[FAILED]", extra=OLD_LIFECYCLE),
            Spec(3, body="Not touched"),
        ]
        text = todo_text(specs, eol="\r\n")
        doc = parse_todo(text)
        tasks = {t.number: t for t in doc.tasks}
        started = [StatusChange(n, "in-progress", DATE) for n in (1, 2)]
        middle = apply_changes(text, started).text
        assert field_lines(middle, 1, "Started") == [f"- **Started**: {DATE}\r\n"]
        assert field_lines(middle, 2, "Started") == [f"- **Started**: {DATE}\r\n"]
        restored = [restore_change(tasks[1], doc.lines), restore_change(tasks[2], doc.lines)]
        assert restored[0].previous_fields == (("Started", None),)
        assert restored[1].previous_fields == (("Started", "2020-01-01"),)
        result = apply_changes(middle, restored)
        assert result.applied == tuple(restored)
        assert result.text == text
        assert apply_changes(text, started + restored).text == text

    def test_missing_and_duplicate_tasks_are_reported(self) -> None:
        """Changes for absent or duplicated task numbers are reported missing, not applied."""
        text = todo_text([Spec(1), Spec(2), Spec(2)])
        changes = [
            StatusChange(1, "completed", DATE),
            StatusChange(2, "completed", DATE),
            StatusChange(9, "failed", DATE, "x"),
        ]
        result = apply_changes(text, changes)
        assert result.applied == (changes[0],)
        assert result.missing == (changes[1], changes[2])
        assert_only_status_lines_changed(text, result.text, {1})


class TestPatchStatus:
    def _task(self, text: str) -> tuple[list[str], Task]:
        doc = parse_todo(text)
        return list(doc.lines), doc.tasks[0]

    def test_failed_writes_date_and_one_line_reason(self) -> None:
        """A failure sets the marker and writes Failed and a single-line Failure Reason."""
        lines, task = self._task("### 5. T\n- **Status**: [NOT STARTED]\n- **Dependencies**: 4\n")
        style = detect_style([task.status])
        change = StatusChange(5, "failed", DATE, "line one\nline two\n\n  ## not a heading")
        assert patch_status(lines, task, change, style) == [
            "### 5. T\n",
            "- **Status**: [FAILED]\n",
            f"- **Failed**: {DATE}\n",
            "- **Failure Reason**: line one line two ## not a heading\n",
            "- **Dependencies**: 4\n",
        ]

    def test_new_fields_go_after_existing_lifecycle_fields(self) -> None:
        """New lifecycle lines follow those already after Status; existing ones change in place."""
        text = "### 5. T\n**Status**: [IN PROGRESS] \n**Started**: 2020-01-01\n**Notes**: n\n"
        lines, task = self._task(text)
        change = StatusChange(5, "completed", DATE)
        assert patch_status(lines, task, change, detect_style([task.status])) == [
            "### 5. T\n",
            "**Status**: [COMPLETED] \n",
            "**Started**: 2020-01-01\n",
            f"**Completed**: {DATE}\n",
            "**Notes**: n\n",
        ]

    @pytest.mark.parametrize("eol", ["\n", "\r\n"], ids=["LF", "CRLF"])
    def test_restore_removes_the_started_line_the_start_added(self, eol: str) -> None:
        """A task that had no Started line has none again after the restore, bytes as before."""
        text = eol.join(
            ["### 5. T", "- **Status**: [NOT STARTED]  ", "- **Dependencies**: 4", "", "Body", ""]
        )
        lines, task = self._task(text)
        style = detect_style([task.status])
        started = patch_status(lines, task, StatusChange(5, "in-progress", DATE), style)
        assert started[1:4] == [
            f"- **Status**: [IN PROGRESS]  {eol}",
            f"- **Started**: {DATE}{eol}",
            f"- **Dependencies**: 4{eol}",
        ]
        middle, task_now = self._task("".join(started))
        change = restore_change(task, lines)
        assert change.previous_fields == (("Started", None),)
        assert patch_status(middle, task_now, change, style) == lines

    @pytest.mark.parametrize("eol", ["\n", "\r\n"], ids=["LF", "CRLF"])
    def test_restore_puts_back_the_older_started_value(self, eol: str) -> None:
        """A task that had an older Started line gets that value back; its other lines stay."""
        text = eol.join(
            [
                "### 5. T",
                "**Status**: [FAILED] ",
                "**Started**: 2020-01-01  ",
                "**Failed**: 2020-01-02",
                "**Failure Reason**: exit code 1",
                "",
            ]
        )
        lines, task = self._task(text)
        style = detect_style([task.status])
        started = patch_status(lines, task, StatusChange(5, "in-progress", DATE), style)
        assert started[2] == f"**Started**: {DATE}  {eol}"
        assert started[3:] == lines[3:]
        middle, task_now = self._task("".join(started))
        change = restore_change(task, lines)
        assert change.previous_fields == (("Started", "2020-01-01"),)
        assert patch_status(middle, task_now, change, style) == lines

    @pytest.mark.parametrize("eol", ["\n", "\r\n"], ids=["LF", "CRLF"])
    def test_restore_at_the_end_of_a_file_without_final_newline(self, eol: str) -> None:
        """The Started line added after a last Status line without newline goes; so does the
        newline the start gave the Status line."""
        text = f"# TODO{eol}{eol}### 5. Last{eol}**Dependencies**: None{eol}**Status**: [PLANNED]"
        doc = parse_todo(text)
        middle = apply_changes(text, [StatusChange(5, "in-progress", DATE)]).text
        assert middle.endswith(f"**Status**: [IN PROGRESS]{eol}**Started**: {DATE}")
        assert apply_changes(middle, [restore_change(doc.tasks[0], doc.lines)]).text == text

    @pytest.mark.parametrize("eol", ["\n", "\r\n"], ids=["LF", "CRLF"])
    def test_start_drops_the_blocking_reason_and_restore_brings_it_back(self, eol: str) -> None:
        """A blocked task that runs again loses Blocked and Blocking Reason; cancelled, it gets
        them back where they were, byte for byte."""
        text = eol.join(
            [
                "### 5. T",
                "- **Status**: [BLOCKED]",
                "- **Effort**: 1 hour",
                "- **Blocked**: 2026-01-02",
                "- **Blocking Reason**: blocked by failed task 4",
                "",
                "Body",
                "",
            ]
        )
        lines, task = self._task(text)
        style = detect_style([task.status])
        started = patch_status(lines, task, StatusChange(5, "in-progress", DATE), style)
        assert not any("Block" in line for line in started)
        middle, task_now = self._task("".join(started))
        assert patch_status(middle, task_now, restore_change(task, lines), style) == lines

    def test_restore_after_an_edit_still_brings_back_removed_lines(self) -> None:
        """Someone edited the section meanwhile: their edit stays, and the lifecycle lines the
        start removed come back after Status."""
        text = "### 5. T\n- **Status**: [BLOCKED]\n- **Blocking Reason**: waiting\n- **Notes**: a\n"
        lines, task = self._task(text)
        style = detect_style([task.status])
        started = patch_status(lines, task, StatusChange(5, "in-progress", DATE), style)
        edited = [line.replace("a\n", "b\n") for line in started]
        edited_lines, edited_task = self._task("".join(edited))
        restored = patch_status(edited_lines, edited_task, restore_change(task, lines), style)
        assert restored == [
            "### 5. T\n",
            "- **Status**: [BLOCKED]\n",
            "- **Blocking Reason**: waiting\n",
            "- **Notes**: b\n",
        ]

    def test_restore_touches_only_the_started_line(self) -> None:
        """Edits made while the task ran stay; fields other than lifecycle ones are never
        restored; a Started line removed meanwhile is not written again."""
        text = "### 5. T\n**Status**: [NOT STARTED]\n**Notes**: old\n**Dependencies**: 4\n"
        lines, task = self._task(text)
        style = detect_style([task.status])
        middle = patch_status(lines, task, StatusChange(5, "in-progress", DATE), style)
        edited = [line.replace("old", "edited") for line in middle]
        edited_lines, edited_task = self._task("".join(edited))
        change = restore_change(task)._replace(
            previous_fields=(("Started", None), ("Notes", "old"), ("Dependencies", None))
        )
        assert patch_status(edited_lines, edited_task, change, style) == [
            line.replace("old", "edited") for line in lines
        ]
        gone = [line for line in middle if "Started" not in line]
        gone_lines, gone_task = self._task("".join(gone))
        change = change._replace(previous_fields=(("Started", "2020-01-01"),))
        assert patch_status(gone_lines, gone_task, change, style) == lines

    def test_restore_without_previous_changes_nothing(self) -> None:
        """A restore that carries no previous status leaves the lines as they are."""
        lines, task = self._task("### 5. T\n**Status**: [IN PROGRESS]\n")
        change = StatusChange(5, "restore", DATE)
        assert patch_status(lines, task, change, detect_style([])) == lines


class TestConcurrentEditor:
    @pytest.mark.slow
    def test_locked_edits_are_never_lost(self, ws: Workspace) -> None:
        """Edits made under ``flock TODO.md.lock`` while a run writes statuses all survive."""
        flock = "flock"
        specs = [Spec(n) for n in range(1, 41)]
        specs.append(Spec(99, title="Not selected", extra=("**Edits**: none",)))
        ws.write(specs)
        lock = shlex.quote(str(ws.todo) + ".lock")
        todo = shlex.quote(str(ws.todo))
        proc = ws.start("1-40", "--max-parallel", "4", env={"PROBE_SLEEP": "0.2"})
        done = during = 0
        try:
            # Each edit holds the file open across a short pause, so an unlocked rename by the
            # run in that window would drop the appended line.
            while done < 40 or proc.poll() is None:
                script = (
                    f"exec 3>>{todo}; sleep 0.01; echo 'editor line {done}' >&3; exec 3>&-; "
                    f"sed -i 's/^- \\*\\*Edits\\*\\*: .*/- **Edits**: {done}/' {todo}"
                )
                subprocess.run([flock, lock, "-c", script], check=True, timeout=60)
                running = proc.poll() is None
                current = read_exact(ws.todo)
                if running and ("[COMPLETED]" in current or "[IN PROGRESS]" in current):
                    during += 1
                done += 1
                time.sleep(0.005)
            result = ws.finish(proc)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert result.code == 0, result.err
        assert during >= 3, "the edits did not overlap the run's status writes"
        lines = result.todo.splitlines()
        assert [line for line in lines if line.startswith("editor line")] == [
            f"editor line {n}" for n in range(done)
        ]
        assert task_fields(result.todo, 99)["Edits"] == str(done - 1)
        assert task_fields(result.todo, 99)["Status"] == "[NOT STARTED]"
        for number in range(1, 41):
            fields = task_fields(result.todo, number)
            assert fields["Status"] == "[COMPLETED]", number
            assert "Completed" in fields
            assert len(field_lines(result.todo, number, "Started")) == 1
