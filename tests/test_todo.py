"""The TODO.md model (SPEC 3): real files, parser edge cases and robustness properties."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import TaskSpec, markdownish_texts, render_todo, text_without_nul

from batchaction.errors import BatchError
from batchaction.textlines import decode_todo, read_todo_text, split_lines
from batchaction.todo import Task, TodoDocument, parse_todo

FIXTURE_FACTS: dict[str, dict[str, Any]] = {
    "proofchecker-6172a67.md": {
        "count": 15,
        "states": {64: ("[IN PROGRESS]", "open"), 72: ("Not Started", "open")},
        "deps": {
            72: (),
            73: (72,),
            74: (73, 72),  # 72: "- **Blocks**: Tasks 73, 74, ..."
            76: (72, 73, 74, 75),
            77: (72, 73, 74, 75, 76),
            78: (72, 73, 74, 75, 76, 77),
            10: (9,),
        },
        "dep_warnings": {9, 11},
    },
    "proofchecker-b8aee1a.md": {
        "count": 9,
        "states": {73: ("Not Started", "open")},
        "deps": {73: (72,), 76: (72, 73, 74, 75), 10: (9,)},
        "absent": {72},
        "dep_warnings": {9, 11},
    },
    "modelchecker-9402af1.md": {
        "count": 44,
        "states": {
            349: ("[PLANNED]", "open"),
            342: ("[IN PROGRESS]", "open"),
            260: ("[BLOCKED]", "open"),
            318: ("[IMPLEMENTING]", "open"),
        },
        "deps": {218: (212,), 291: (290,), 264: (263,), 135: (132, 133, 134), 339: (338,)},
        "dep_warnings": {257, 260},  # 260: "- **Blocking**: Axiom refactor (Prop → Type) ..."
    },
    "proofchecker-43ce1ce.md": {
        "count": 35,
        "states": {
            184: ("[BLOCKED]", "open"),
            173: ("[BLOCKED]", "open"),
            169: ("[COMPLETED]", "done"),
            182: ("[COMPLETED]", "done"),
            170: ("[RESEARCHED]", "open"),
        },
        "deps": {194: (183, 184), 185: (183, 184), 177: (126, 127), 188: (187,)},
        "dep_warnings": set(),
    },
    "proofchecker-b9a45da.md": {
        "count": 20,
        "states": {151: ("[COMPLETED]", "done"), 129: ("[NOT STARTED]", "open")},
        # 154 "(supports Tasks 129 & 130)": "- **Blocking**: 129, 130".
        "deps": {128: (126, 127), 129: (154,), 130: (129, 154), 138: (136, 137)},
        "dep_warnings": set(),
    },
    "proofchecker-84be697.md": {
        "count": 19,
        "states": {911: ("[NOT STARTED]", "open"), 907: ("[COMPLETED]", "done")},
        "deps": {911: (910,), 910: (909,), 909: (908,), 908: (907,), 843: (856,), 399: (398,)},
        # 868 and 619: "- **Blocked on**: lean-lsp-mcp issue #115 ...", "GitHub owner/repo #N".
        "dep_warnings": {619, 868},
    },
    "nvim-91ca30b.md": {
        "count": 57,
        "states": {670: ("[IMPLEMENTED]", "done"), 683: ("[NOT STARTED]", "open")},
        "deps": {683: (682,), 670: ()},
        "dep_warnings": set(),
    },
    "proofchecker-e430f09.md": {
        "count": 15,
        "states": {62: ("[COMPLETE] ✅", "done"), 63: ("Not Started", "open")},
        "deps": {10: (9,), 63: ()},
        "dep_warnings": {9, 11},
    },
}


def read_exact(path: Path) -> str:
    with path.open(encoding="utf-8", newline="") as handle:
        return handle.read()


def parse_fixture(name: str, fixtures_dir: Path) -> TodoDocument:
    return parse_todo(read_exact(fixtures_dir / "todo" / name))


def task_map(doc: TodoDocument) -> dict[int, Task]:
    return {task.number: task for task in doc.tasks}


def shallow_view(doc: TodoDocument) -> list[tuple[object, ...]]:
    """What a status writer needs: each task's place and its Status field."""
    views: list[tuple[object, ...]] = []
    for task in doc.tasks:
        status = task.field("status")
        assert status is not None
        views.append((task.number, task.heading_line, task.end_line, status, task.status))
    return views


class TestFixtures:
    def test_every_fixture_has_facts(self, todo_fixture: Path) -> None:
        """Each real file in fixtures/todo/ is covered by the fact table below."""
        assert todo_fixture.name in FIXTURE_FACTS

    def test_byte_round_trip(self, todo_fixture: Path) -> None:
        """The parsed lines re-join to the exact original text."""
        text = read_exact(todo_fixture)
        doc = parse_todo(text)
        assert doc.text == text
        assert "".join(doc.lines).encode() == todo_fixture.read_bytes()

    def test_task_count_states_and_deps(self, todo_fixture: Path) -> None:
        """Task count, selected statuses, states and dependency lists match the file."""
        facts = FIXTURE_FACTS[todo_fixture.name]
        doc = parse_todo(read_exact(todo_fixture))
        tasks = {task.number: task for task in doc.tasks}
        assert len(doc.tasks) == facts["count"]
        for number, (status, state) in facts["states"].items():
            assert (tasks[number].status, tasks[number].state) == (status, state)
        for number, deps in facts["deps"].items():
            assert tasks[number].dependencies == deps
        warned = {task.number for task in doc.tasks if task.dependency_warning}
        assert warned == facts["dep_warnings"]
        for number in facts.get("absent", set()):
            assert number not in tasks

    def test_field_lines_point_at_fields(self, todo_fixture: Path) -> None:
        """Every field's line index points at a line holding that field's name and value."""
        doc = parse_todo(read_exact(todo_fixture))
        for task in doc.tasks:
            heading = doc.lines[task.heading_line]
            assert heading.lstrip().startswith("#")
            assert f"{task.number}." in heading
            for field in task.fields:
                assert task.heading_line < field.line < task.end_line
                line = doc.lines[field.line]
                assert f"**{field.name}" in line
                assert field.value in line

    def test_6172a67_chain_lines(self, fixtures_dir: Path) -> None:
        """Task 73's heading and fields sit on the lines an editor shows (1-based 205, 207, 210)."""
        task = task_map(parse_fixture("proofchecker-6172a67.md", fixtures_dir))[73]
        assert task.heading_line + 1 == 205
        assert task.field("status").line + 1 == 207
        assert task.field("dependencies").line + 1 == 210

    def test_modelchecker_front_matter_and_field_styles(self, fixtures_dir: Path) -> None:
        """YAML front matter is skipped; list-item, bare and indented fields all parse."""
        doc = parse_fixture("modelchecker-9402af1.md", fixtures_dir)
        assert doc.lines[0] == "---\n"
        tasks = task_map(doc)
        first = doc.tasks[0]
        assert (first.number, first.heading_line + 1) == (349, 33)
        listed = tasks[349].field("status")
        assert (listed.bullet, listed.indent) == ("- ", "")
        bare = tasks[218].field("status")
        assert (bare.bullet, bare.indent, bare.line + 1) == ("", "", 434)
        indented = tasks[317].field("status")
        assert (indented.bullet, indented.indent, indented.value) == ("", " ", "[PLANNING]")

    def test_b9a45da_indented_heading_ends_section(self, fixtures_dir: Path) -> None:
        """The indented `` ## Low Priority`` heading ends the task before it."""
        doc = parse_fixture("proofchecker-b9a45da.md", fixtures_dir)
        task = task_map(doc)[153]
        assert doc.lines[task.end_line] == " ## Low Priority\n"
        assert all(f.bullet == "- " for t in doc.tasks for f in t.fields)

    def test_43ce1ce_heading_checkmark_is_title(self, fixtures_dir: Path) -> None:
        """A ✅ on a heading stays in the title; the Status field decides the state."""
        task = task_map(parse_fixture("proofchecker-43ce1ce.md", fixtures_dir))[172]
        assert task.title.endswith("✅")
        assert task.state == "done"

    def test_e430f09_category_headings_at_task_level(self, fixtures_dir: Path) -> None:
        """A category heading at the task level ends the task before it."""
        doc = parse_fixture("proofchecker-e430f09.md", fixtures_dir)
        tasks = task_map(doc)
        end = tasks[71].end_line
        assert doc.lines[end].startswith("### Proof System Enhancements")


class TestParserHeadings:
    def test_levels_two_to_four_only(self) -> None:
        """Numbered headings at levels 1, 5 and 6 are not tasks."""
        text = (
            "# 1. Top\n**Status**: open\n"
            "## 2. Two\n**Status**: open\n"
            "### 3. Three\n**Status**: open\n"
            "#### 4. Four\n**Status**: open\n"
            "##### 5. Five\n**Status**: open\n"
            "###### 6. Six\n**Status**: open\n"
        )
        assert [t.number for t in parse_todo(text).tasks] == [2, 3, 4]

    def test_numbered_heading_without_status_is_not_a_task(self) -> None:
        """``### 0. Overview`` in a Task Order section has no Status and is not a task."""
        text = "## Task Order\n### 0. Overview\nRun 1 first.\n### 1. Real\n**Status**: open\n"
        assert [t.number for t in parse_todo(text).tasks] == [1]

    def test_section_ends_at_same_level_heading(self) -> None:
        """A Status after a following ``### Category`` heading belongs to no task."""
        text = "### 1. A\n**Status**: open\n### Category\n**Status**: [DONE]\n"
        (task,) = parse_todo(text).tasks
        assert (task.status, task.end_line) == ("open", 2)
        text = "### 1. A\nno status here\n### Category\n**Status**: [DONE]\n"
        assert parse_todo(text).tasks == ()

    def test_section_ends_at_higher_level_heading(self) -> None:
        """A ``##`` heading ends a ``###`` task; a ``####`` heading does not."""
        text = "### 1. A\n#### Notes\n**Status**: open\n## Later\n**Dependencies**: 5\n"
        (task,) = parse_todo(text).tasks
        assert (task.status, task.end_line, task.dependencies) == ("open", 3, ())

    def test_nested_numbered_headings(self) -> None:
        """A numbered sub-heading is its own task; fields go to the innermost task."""
        text = (
            "## 1. Parent\n**Status**: [NOT STARTED]\n"
            "#### 2. Child\n**Status**: [DONE]\n**Dependencies**: 1\n"
            "### 3. Sibling\n- **Status**: open\n"
        )
        tasks = {t.number: t for t in parse_todo(text).tasks}
        assert (tasks[1].state, tasks[1].dependencies) == ("open", ())
        assert (tasks[2].state, tasks[2].dependencies, tasks[2].end_line) == ("done", (1,), 5)
        assert (tasks[3].state, tasks[3].heading_line, tasks[3].end_line) == ("open", 5, 7)
        assert tasks[1].end_line == 7

    def test_title_and_trailing_hashes(self) -> None:
        """The title is the heading text after the number, closing hashes removed."""
        (task,) = parse_todo("###   12.  Write the parser  ###\n**Status**: open\n").tasks
        assert (task.number, task.title, task.level) == (12, "Write the parser", 3)

    def test_indented_heading(self) -> None:
        """Up to three spaces of indentation still make a heading; four do not."""
        assert [t.number for t in parse_todo("   ### 1. A\n**Status**: open\n").tasks] == [1]
        assert parse_todo("    ### 1. A\n**Status**: open\n").tasks == ()


class TestParserFences:
    @pytest.mark.parametrize("fence", ["```", "~~~", "````", "   ```", "\t~~~"])
    def test_fenced_lines_are_never_headings_or_fields(self, fence: str) -> None:
        """Headings and fields inside fenced code blocks are ignored."""
        text = (
            "### 1. A\n"
            f"{fence}lean\n"
            "**Status**: [DONE]\n"
            "### 2. Inside\n"
            "**Status**: open\n"
            "# View all task completions\n"
            f"{fence.strip()}\n"
            "**Status**: open\n"
        )
        (task,) = parse_todo(text).tasks
        assert (task.number, task.status, task.field("status").line) == (1, "open", 7)
        assert task.end_line == 8

    def test_shorter_or_other_fence_does_not_close(self) -> None:
        """A shorter fence, or one of the other character, does not close a block."""
        text = "### 1. A\n````\n```\n~~~\n**Status**: x\n````\n**Status**: open\n"
        (task,) = parse_todo(text).tasks
        assert task.status == "open"

    def test_unclosed_fence_runs_to_end(self) -> None:
        """An unclosed fence hides everything after it."""
        text = "### 1. A\n```\n**Status**: open\n### 2. B\n**Status**: open\n"
        assert parse_todo(text).tasks == ()


class TestParserFrontMatter:
    def test_front_matter_is_skipped(self) -> None:
        """Headings and fields inside YAML front matter are ignored."""
        text = "---\ntitle: x\n### 1. A\n**Status**: open\n---\n### 2. B\n**Status**: open\n"
        assert [t.number for t in parse_todo(text).tasks] == [2]

    def test_malformed_yaml_front_matter_is_skipped(self) -> None:
        """Front matter is skipped even when it is not valid YAML."""
        text = "---\nkey: [unclosed: {\n  - ::\n### 1. A\n**Status**: open\n---\n"
        text += "### 2. B\n**Status**: open\n"
        assert [t.number for t in parse_todo(text).tasks] == [2]

    def test_unclosed_front_matter_is_a_thematic_break(self) -> None:
        """An opening ``---`` that is never closed is not front matter."""
        text = "---\n### 1. A\n**Status**: open\n"
        (task,) = parse_todo(text).tasks
        assert (task.number, task.heading_line) == (1, 1)

    def test_dash_line_later_is_not_front_matter(self) -> None:
        """A ``---`` that is not on the first line starts no front matter."""
        text = "# TODO\n---\n### 1. A\n**Status**: open\n---\n"
        assert [t.number for t in parse_todo(text).tasks] == [1]

    def test_byte_order_mark(self) -> None:
        """A UTF-8 byte order mark before the front matter or first heading is tolerated."""
        assert [t.number for t in parse_todo("\ufeff### 1. A\n**Status**: open\n").tasks] == [1]
        text = "\ufeff---\na: b\n---\n### 2. B\n**Status**: open\n"
        assert [t.number for t in parse_todo(text).tasks] == [2]


class TestParserFields:
    def test_field_styles_and_lines(self) -> None:
        """Bare, list-item, indented and colon-inside fields are read with their line index."""
        text = (
            "### 1. A\n"
            "**Effort**: 2 hours\n"
            "  - **Status**: [NOT STARTED]\n"
            "\t**Dependencies**: Task 3\n"
            "* **Priority:** High\n"
        )
        (task,) = parse_todo(text).tasks
        fields = {f.key: f for f in task.fields}
        assert {k: f.line for k, f in fields.items()} == {
            "effort": 1,
            "status": 2,
            "dependencies": 3,
            "priority": 4,
        }
        assert (fields["status"].indent, fields["status"].bullet) == ("  ", "- ")
        assert fields["dependencies"].indent == "\t"
        assert (fields["priority"].value, fields["priority"].colon_inside) == ("High", True)
        assert (task.dependencies, task.effort_hours) == ((3,), 2.0)

    def test_crlf_values_have_no_carriage_return(self) -> None:
        """With CRLF line endings, values and titles carry no ``\\r``."""
        text = "### 1. A\r\n**Status**: [NOT STARTED]  \r\n**Dependencies**: 2\r\n"
        (task,) = parse_todo(text).tasks
        assert (task.title, task.status, task.dependencies) == ("A", "[NOT STARTED]", (2,))
        assert parse_todo(text).text == text

    def test_first_field_wins_and_repeats_are_kept(self) -> None:
        """A repeated field name keeps the first value and records the repeat."""
        text = "### 1. A\n**Status**: open\n**Status**: [DONE]\n"
        (task,) = parse_todo(text).tasks
        assert task.state == "open"
        assert [f.line for f in task.repeated] == [2]

    def test_blocking_field_is_ignored(self) -> None:
        """The ``Blocking`` field never creates dependencies."""
        text = "### 1. A\n- **Status**: open\n- **Blocking**: Task 2\n- **Dependencies**: None\n"
        (task,) = parse_todo(text).tasks
        assert task.dependencies == ()

    def test_render_copies_style(self) -> None:
        """A new field line copies the indentation, bullet and colon style of its sibling."""
        (task,) = parse_todo("### 1. A\n  - **Status:** open\n").tasks
        status = task.field("status")
        assert status is not None
        assert status.render("Started", "2026-01-04", "\n") == "  - **Started:** 2026-01-04\n"

    @pytest.mark.parametrize("eol", ["\n", "\r\n"])
    @pytest.mark.parametrize("list_items", [True, False])
    def test_rendered_document(self, eol: str, list_items: bool) -> None:
        """Built documents parse in both field styles and both line endings."""
        specs = [TaskSpec(5, "[NOT STARTED]", "None", effort="1 hour"), TaskSpec(6, deps="5")]
        text = render_todo(specs, list_items=list_items, eol=eol)
        doc = parse_todo(text)
        assert doc.text == text
        assert [(t.number, t.dependencies, t.effort_hours) for t in doc.tasks] == [
            (5, (), 1.0),
            (6, (5,), None),
        ]


class TestParserProperties:
    def test_huge_numbers_never_raise(self) -> None:
        """A heading or dependency with a number of thousands of digits does not crash parsing."""
        huge = "9" * 5000
        doc = parse_todo(f"### {huge}. A\n**Status**: open\n**Dependencies**: Task {huge}\n")
        assert len(doc.lines) == 3

    @given(text_without_nul)
    def test_any_text_round_trips(self, text: str) -> None:
        """parse_todo never raises on arbitrary text and keeps every byte."""
        assert "".join(parse_todo(text).lines) == text

    @given(markdownish_texts())
    def test_shallow_parse_finds_the_same_tasks(self, text: str) -> None:
        """The shallow parse locates the same tasks and Status lines as the full parse."""
        assert shallow_view(parse_todo(text, shallow=True)) == shallow_view(parse_todo(text))

    def test_shallow_parse_of_fixture(self, todo_fixture: Path) -> None:
        """On every real file the shallow parse agrees with the full parse."""
        text = read_exact(todo_fixture)
        assert shallow_view(parse_todo(text, shallow=True)) == shallow_view(parse_todo(text))

    @given(markdownish_texts())
    def test_markdownish_text_round_trips(self, text: str) -> None:
        """Markdown-like mixtures never raise, keep every byte and give sane line indexes."""
        doc = parse_todo(text)
        assert "".join(doc.lines) == text
        for task in doc.tasks:
            assert 0 <= task.heading_line < task.end_line <= len(doc.lines)
            assert 2 <= task.level <= 4
            for field in (*task.fields, *task.repeated):
                assert task.heading_line < field.line < task.end_line


class TestLinearTime:
    """Long pathological lines cost linear time (a backtracking regex once took minutes)."""

    LONG = 30_000
    LIMIT_S = 3.0  # a quadratic regex needs tens of seconds here; linear parsing, milliseconds

    @pytest.mark.parametrize(
        "text",
        [
            "## a" + " #" * LONG + "x\n",
            "### 1. A\n**Status**: a" + " " * LONG + "x\n",
            "### 1. A\n**Dependencies**: Task 1" + " " * LONG + "x\n**Status**: open\n",
            "### 1. A\n**Dependencies**: Task" + " " * LONG + "x\n**Status**: open\n",
            "### 1. A\n**Effort**: " + "1" * 4000 + "x\n**Status**: open\n",
            "### 1. A\n**Dependencies**: " + "(" * LONG + "Task 2\n**Status**: open\n",
        ],
        ids=["heading-hashes", "field-blanks", "deps-blanks", "task-blanks", "effort", "parens"],
    )
    def test_long_line(self, text: str) -> None:
        """One very long line of blanks, hashes, digits or parentheses parses quickly."""
        start = time.perf_counter()
        doc = parse_todo(text)
        assert time.perf_counter() - start < self.LIMIT_S
        assert doc.text == text


class TestTextLines:
    @pytest.mark.parametrize(
        ("text", "lines"),
        [
            ("", []),
            ("a", ["a"]),
            ("a\n", ["a\n"]),
            ("a\r\nb", ["a\r\n", "b"]),
            ("a\x0cb\u2028c\rd\n\n", ["a\x0cb\u2028c\rd\n", "\n"]),
        ],
    )
    def test_split_lines_on_newline_only(self, text: str, lines: list[str]) -> None:
        """Only ``\\n`` ends a line; every other separator stays inside it."""
        assert split_lines(text) == lines

    def test_decode_reports_line_of_bad_byte(self) -> None:
        """Invalid UTF-8 is refused naming the file, line and byte."""
        with pytest.raises(BatchError, match=r"TODO\.md:3: error: invalid UTF-8 \(byte 0xe9\)"):
            decode_todo(b"a\nb\ncaf\xe9\n", "TODO.md")

    def test_decode_refuses_nul(self) -> None:
        """A NUL byte marks the file as binary."""
        with pytest.raises(BatchError, match=r"x\.md:2: error: .*NUL"):
            decode_todo(b"a\n\x00", "x.md")

    def test_decode_keeps_bom_and_crlf(self) -> None:
        """Decoding keeps a byte order mark and CRLF line endings as they are."""
        assert decode_todo("\ufeffa\r\n".encode(), "x") == "\ufeffa\r\n"

    def test_read_todo_text_errors(self, tmp_path: Path) -> None:
        """Missing files and directories become BatchError, never OSError."""
        with pytest.raises(BatchError, match="no such file"):
            read_todo_text(tmp_path / "missing.md")
        with pytest.raises(BatchError, match="directory"):
            read_todo_text(tmp_path)

    @given(st.binary())
    def test_decode_arbitrary_bytes(self, data: bytes) -> None:
        """Any bytes either decode to the UTF-8 text or raise BatchError with exit code 2."""
        try:
            expected: str | None = None if b"\x00" in data else data.decode("utf-8")
        except UnicodeDecodeError:
            expected = None
        if expected is not None:
            assert decode_todo(data, "TODO.md") == expected
            return
        with pytest.raises(BatchError) as info:
            decode_todo(data, "TODO.md")
        assert info.value.exit_code == 2
        assert str(info.value).startswith("TODO.md:")

    @given(text_without_nul)
    def test_decode_utf8_text(self, text: str) -> None:
        """UTF-8 encoded text without NUL always decodes back to itself."""
        assert decode_todo(text.encode("utf-8"), "TODO.md") == text
