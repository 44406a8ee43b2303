"""What hides a task and what states one: HTML comments, headings without a Status field,
broken emphasis, repeated Status fields and the IMPLEMENTED status (SPEC 3, 4)."""

from __future__ import annotations

import pytest

from batchaction.errors import BatchError
from batchaction.lint import lint_document
from batchaction.planner import plan
from batchaction.status import classify, detect_style
from batchaction.todo import parse_todo


def numbers(text: str) -> list[int]:
    return [t.number for t in parse_todo(text).tasks]


class TestHtmlComments:
    def test_block_comment_hides_headings_and_fields(self) -> None:
        """A multi-line comment (GitHub shows nothing of it) holds no task."""
        text = (
            "## Tasks\n\n<!--\n### 5. Hidden\n- **Status**: [NOT STARTED]\n-->\n\n"
            "### 6. Shown\n- **Status**: [NOT STARTED]\n"
        )
        assert numbers(text) == [6]

    def test_one_line_comment_hides_its_line(self) -> None:
        text = (
            "### 5. Task\n<!-- - **Status**: [COMPLETED] -->\n- **Status**: [NOT STARTED]\n"
            "<!-- ### 6. Old task -->\n"
        )
        doc = parse_todo(text)
        assert [(t.number, t.status) for t in doc.tasks] == [(5, "[NOT STARTED]")]

    def test_comment_hides_a_dependency_field(self) -> None:
        text = (
            "### 1. A\n- **Status**: open\n\n### 2. B\n- **Status**: open\n"
            "<!--\n- **Dependencies**: Task 1\n-->\n"
        )
        assert parse_todo(text).tasks[1].dependencies == ()

    def test_text_after_the_comment_closes_shows_again(self) -> None:
        text = "### 5. Task\n<!-- note\nstill a note --> trailing\n- **Status**: [NOT STARTED]\n"
        assert numbers(text) == [5]

    def test_unclosed_comment_hides_the_rest(self) -> None:
        text = "### 5. Task\n- **Status**: open\n<!--\n### 6. Task\n- **Status**: open\n"
        assert numbers(text) == [5]

    def test_comment_closed_within_its_paragraph_hides_the_lines_between(self) -> None:
        """A comment opened in a paragraph and closed in it hides the field lines between."""
        text = (
            "### 5. Task\n- **Status**: open\n\nNotes <!-- draft\n**Dependencies**: Task 9\n-->\n"
        )
        assert parse_todo(text).tasks[0].dependencies == ()

    @pytest.mark.parametrize(
        "after",
        [
            "- **Dependencies**: Task 9\n",  # a list item starts a new block
            "* **Dependencies**: Task 9\n",
            "\n**Dependencies**: Task 9\n",  # a blank line ends the paragraph
        ],
    )
    def test_unclosed_comment_in_a_paragraph_is_text(self, after: str) -> None:
        """``<!--`` that does not close before its paragraph ends is literal text on GitHub
        (CommonMark 6.6): nothing after it is hidden."""
        text = "### 5. Task\n- **Status**: open\n- **Effort**: 2h <!-- estimate from\n" + after
        assert parse_todo(text).tasks[0].dependencies == (9,)

    def test_heading_after_an_open_comment_shows(self) -> None:
        text = "### 5. A\n- **Status**: open\ntext <!-- x\n### 6. B\n- **Status**: open\n"
        assert numbers(text) == [5, 6]

    def test_empty_comment_closes_itself(self) -> None:
        """``<!-->`` is a whole comment (CommonMark 0.31): the rest of the file shows."""
        text = "<!-->\n### 5. A\n- **Status**: open\n"
        assert numbers(text) == [5]

    def test_comment_opener_in_a_code_span_is_text(self) -> None:
        """GitHub shows the fields after ``Handle `<!--` in templates``: so do we."""
        text = (
            "### 4. A\n- **Status**: open\n\n### 5. Parser\nHandle `<!--` in templates.\n"
            "- **Status**: open\n- **Dependencies**: 4\n"
        )
        doc = parse_todo(text)
        assert [(t.number, t.dependencies) for t in doc.tasks] == [(4, ()), (5, (4,))]

    def test_comment_markers_in_code_are_code(self) -> None:
        text = "### 5. Task\n```html\n<!--\n```\n- **Status**: open\n"
        assert numbers(text) == [5]

    def test_writer_and_planner_agree_on_comments(self) -> None:
        """The shallow parse a writer uses hides the same tasks."""
        text = "<!--\n### 5. Hidden\n- **Status**: open\n-->\n### 6. Shown\n- **Status**: open\n"
        assert [t.number for t in parse_todo(text, shallow=True).tasks] == [6]


class TestNotATask:
    TEXT = (
        "## Task Order\n\n### 7. Overview of the order\nText.\n\n"
        "### 8. Real\n- **Status**: [NOT STARTED]\n"
    )

    def test_heading_without_status_is_skipped_not_a_task(self) -> None:
        doc = parse_todo(self.TEXT)
        result = plan(doc.tasks, [7, 8], headings=doc.headings)
        (skip,) = result.skipped
        assert (skip.number, skip.reason) == (7, "not-a-task")
        assert (
            skip.detail == "line 3 has heading '### 7. Overview of the order' but no Status field"
        )
        assert result.run == (8,)

    def test_absent_number_is_still_not_found(self) -> None:
        doc = parse_todo(self.TEXT)
        result = plan(doc.tasks, [8, 9], headings=doc.headings)
        assert [(s.number, s.reason) for s in result.skipped] == [(9, "not-found")]

    @pytest.mark.parametrize("selection", [[630], [7], [7, 630]])
    def test_selection_without_any_task_is_an_error(self, selection: list[int]) -> None:
        doc = parse_todo(self.TEXT)
        with pytest.raises(BatchError) as caught:
            plan(doc.tasks, selection, headings=doc.headings, source="specs/TODO.md")
        assert caught.value.exit_code == 2
        assert "is a task in specs/TODO.md" in str(caught.value)
        assert str(caught.value).startswith("none of ")

    def test_selection_of_done_tasks_is_not_an_error(self) -> None:
        doc = parse_todo("### 1. A\n- **Status**: [COMPLETED]\n")
        assert plan(doc.tasks, [1, 2], headings=doc.headings).run == ()


class TestRepeatedStatus:
    TEXT = (
        "### 5. First\n- **Status**: [NOT STARTED]\n- **Effort**: 2 hours\n\n"
        "**Description**: text.\n\n"
        "- **Effort**: 1 hour\n- **Status**: [COMPLETED]\n\n"
        "### 6. Other\n- **Status**: open\n- **Dependencies**: Task 5\n"
    )

    def test_selected_task_with_two_status_fields_is_refused(self) -> None:
        doc = parse_todo(self.TEXT)
        with pytest.raises(BatchError) as caught:
            plan(doc.tasks, [5])
        assert caught.value.exit_code == 2
        assert "lines 2 and 8" in str(caught.value)

    def test_depended_on_task_with_two_status_fields_is_refused(self) -> None:
        doc = parse_todo(self.TEXT)
        with pytest.raises(BatchError, match="lines 2 and 8"):
            plan(doc.tasks, [6])

    def test_lint_says_a_heading_may_be_missing(self) -> None:
        """The second Status follows another field list after a break: a lost heading."""
        problems = lint_document(parse_todo(self.TEXT))
        (problem,) = [p for p in problems if "second Status" in p.message]
        assert problem.line == 8
        assert "a heading may be missing before line 7" in problem.message

    def test_lint_in_one_field_list_says_keep_one(self) -> None:
        text = "### 5. A\n- **Status**: open\n- **Status**: [DONE]\n"
        (problem,) = [p for p in lint_document(parse_todo(text)) if "second" in p.message]
        assert problem.message.endswith("keep one")


class TestBrokenStatus:
    @pytest.mark.parametrize(
        "line",
        [
            "*Status**: [NOT STARTED]",
            "**Status*: [NOT STARTED]",
            "Status: [NOT STARTED]",
            "- Status: Not Started",
            "**Status** : open",
        ],
    )
    def test_status_like_line_under_a_numbered_heading_is_a_warning(self, line: str) -> None:
        """The line hides the task (no Status field); lint says so and gives the fix."""
        doc = parse_todo(f"## Tasks\n\n### 5. Hidden\n{line}\n- **Effort**: 1 hour\n")
        assert doc.tasks == ()
        (problem,) = lint_document(doc)
        assert (problem.line, problem.severity) == (4, "warning")
        assert "'**Status**: VALUE'" in problem.message

    @pytest.mark.parametrize(
        ("line", "name"),
        [
            ("*Dependencies**: Task 4", "Dependencies"),
            ("Depends On: 4", "Depends On"),
            ("1. **Dependencies**: Task 4", "Dependencies"),
            ("- **Blocks** 7", "Blocks"),
        ],
    )
    def test_dependency_like_line_is_a_warning(self, line: str, name: str) -> None:
        """A dependency line GitHub shows but batchaction cannot read is never silent."""
        doc = parse_todo(f"### 5. A\n- **Status**: open\n{line}\n")
        assert doc.tasks[0].dependencies == ()
        (problem,) = lint_document(doc)
        assert problem.line == 3
        assert f"'**{name}**: VALUE'" in problem.message

    @pytest.mark.parametrize(
        "line", ["__Status__: open", "- __Status__: open", "**Status**\\: open", "__Status:__ open"]
    )
    def test_fields_github_shows_the_same_way_are_fields(self, line: str) -> None:
        """``__bold__`` renders as ``**bold**``, and ``\\:`` as ``:``: these are Status fields."""
        (task,) = parse_todo(f"### 5. A\n{line}\n").tasks
        assert task.status == "open"

    def test_underscore_fields_get_underscore_siblings(self) -> None:
        from batchaction.writeback import StatusChange, apply_changes

        text = "### 5. A\n__Status__: open\n"
        written = apply_changes(text, [StatusChange(5, "completed", "2030-01-01")]).text
        assert "__Completed__: 2030-01-01" in written

    def test_prose_elsewhere_is_not_reported(self) -> None:
        doc = parse_todo("# Notes\nStatus: all good\n\n### 5. Task\n- **Status**: open\n")
        assert lint_document(doc) == []


class TestImplemented:
    @pytest.mark.parametrize("value", ["[IMPLEMENTED]", "Implemented", "[IMPLEMENTED] ✅"])
    def test_implemented_is_done(self, value: str) -> None:
        assert classify(value) == "done"

    def test_completion_is_not_written_as_implemented(self) -> None:
        """A file full of [IMPLEMENTED] still gets [COMPLETED] from a run: IMPLEMENTED is the
        workflow's own stage word, not batchaction's outcome."""
        style = detect_style(["[IMPLEMENTED]", "[IMPLEMENTED]", "[COMPLETED]", "[PLANNED]"])
        assert style.render("completed") == "[COMPLETED]"


class TestFromTheReview:
    """Inputs an adversarial review found misread; each is read as GitHub shows it now."""

    @pytest.mark.parametrize(
        "body",
        [
            "**Dependencies**:\n- Task 4\n",  # a list at the field's own level
            "- **Dependencies**:\n- Task 4\n",
            "- **Dependencies**:\n  1. Task 4\n",  # a numbered list
            "- **Depends**:\n\n  - Task 4\n",  # a loose list
        ],
    )
    def test_lists_under_an_empty_field(self, body: str) -> None:
        doc = parse_todo(f"### 4. A\n- **Status**: open\n\n### 5. B\n- **Status**: open\n{body}")
        assert doc.tasks[1].dependencies == (4,)

    def test_sibling_field_ends_the_list(self) -> None:
        body = "- **Dependencies**:\n- **Effort**: 2 hours\n- Task 4\n"
        doc = parse_todo(f"### 4. A\n- **Status**: open\n\n### 5. B\n- **Status**: open\n{body}")
        assert doc.tasks[1].dependencies == ()

    def test_closing_fence_indented_four_spaces_is_code(self) -> None:
        """CommonMark: a closing fence has at most three spaces of indentation."""
        text = (
            "### 5. A\n**Status**: open\n\n```text\nexample:\n    ```\n```\n\n"
            "### 6. B\n**Status**: open\n**Dependencies**: 5\n"
        )
        assert [(t.number, t.dependencies) for t in parse_todo(text).tasks] == [
            (5, ()),
            (6, (5,)),
        ]

    def test_unclosed_fence_in_a_list_item_ends_with_the_item(self) -> None:
        text = (
            "### 5. A\n- **Status**: open\n- **Notes**: see\n  ```sh\n  make\n\n"
            "### 6. B\n- **Status**: open\n"
        )
        assert numbers(text) == [5, 6]

    def test_sub_step_headings_keep_their_own_fields(self) -> None:
        """``#### 5.1 Sub`` is not a task, and its Status is not a second one of task 5."""
        text = (
            "### 5. Task\n- **Status**: [NOT STARTED]\n\n#### 5.1 First step\n"
            "- **Status**: [COMPLETED]\n"
        )
        (task,) = parse_todo(text).tasks
        assert (task.status, task.repeated) == ("[NOT STARTED]", ())
        assert plan(parse_todo(text).tasks, [5]).run == (5,)

    @pytest.mark.parametrize(
        "status", ["<!-- was: NOT STARTED --> COMPLETED", "~~In Progress~~ Completed"]
    )
    def test_status_reads_what_github_shows(self, status: str) -> None:
        assert classify(status) == "done"

    def test_plan_warns_about_a_broken_dependency_line(
        self, tmp_path: pytest.TempPathFactory
    ) -> None:
        from pathlib import Path

        from batchaction.loading import read_and_plan
        from batchaction.settings import Settings

        todo = Path(str(tmp_path)) / "TODO.md"
        todo.write_text("### 4. A\n- **Status**: open\n\n### 5. B\n- **Status**: open\n"
                        "*Dependencies**: Task 4\n")  # fmt: skip
        _, result = read_and_plan(Settings(), todo, [4, 5])
        assert any("is not a Dependencies field" in w and ":6:" in w for w in result.warnings)

    def test_archived_dependencies_are_one_warning(self) -> None:
        doc = parse_todo("### 500. A\n- **Status**: open\n- **Dependencies**: Tasks 1-400\n")
        result = plan(doc.tasks, [500])
        (warning,) = result.warnings
        assert "depends on 1-400, which are not in" in warning

    @pytest.mark.parametrize(
        "text",
        [
            "### 5. B\n- **Status**: open\nfoo <!-- " + "`" * 200_000 + "\n",
            "### 5. B\n- **Status**: open\n- **Dependencies**: " + "[" * 200_000 + "](\n",
            "# T\n"
            + "".join(
                f"### {n}. a\n**Status**: N\n**Dependencies**: 1-9999, 10000-19998\n\n"
                for n in range(1, 1001)
            ),
            "### 5. A\n" + "- **Status**: open\n" * 30_000,
            "".join(
                f"### {n}. a\n- **Status**: open\n- **Dependencies**: {n + 1 if n % 2 else n - 1}\n"
                for n in range(1, 4001)
            ),
        ],
        ids=["backticks", "brackets", "wide-ranges", "repeated-status", "2000-cycles"],
    )
    def test_hostile_files_are_planned_and_linted_quickly(self, text: str) -> None:
        """Each took from 10 s to several minutes before; now well under a few seconds (the
        bound here is generous: a slow machine must not fail it)."""
        import time

        started = time.monotonic()
        doc = parse_todo(text)
        lint_document(doc)
        assert time.monotonic() - started < 20
