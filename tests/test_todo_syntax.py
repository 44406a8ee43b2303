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

    def test_comment_opened_in_a_paragraph_hides_fields_not_headings(self) -> None:
        """CommonMark: a heading interrupts the paragraph, so it shows; the field lines that
        continue the paragraph are inside the comment."""
        text = (
            "### 5. Task\n- **Status**: open\nSee notes <!-- draft\n- **Dependencies**: Task 9\n"
            "-->\n### 6. Next\nsome text <!-- x\n- **Status**: open\n"
        )
        doc = parse_todo(text)
        assert [t.number for t in doc.tasks] == [5]
        assert doc.tasks[0].dependencies == ()

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
            "__Status__: open",
        ],
    )
    def test_status_like_line_under_a_numbered_heading_is_a_warning(self, line: str) -> None:
        """The line hides the task (no Status field); lint says so and gives the fix."""
        doc = parse_todo(f"## Tasks\n\n### 5. Hidden\n{line}\n- **Effort**: 1 hour\n")
        assert doc.tasks == ()
        (problem,) = lint_document(doc)
        assert (problem.line, problem.severity) == (4, "warning")
        assert "'**Status**: VALUE'" in problem.message

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
