"""``lint`` problems (SPEC 9): errors and warnings with the lines an editor shows."""

from __future__ import annotations

from pathlib import Path

from strategies import TaskSpec, render_todo

from batchaction.lint import Problem, has_errors, lint_document
from batchaction.todo import parse_todo


def lint_text(text: str) -> list[Problem]:
    return lint_document(parse_todo(text))


def line_of(text: str, prefix: str) -> int:
    """1-based number of the first line starting with ``prefix``."""
    return next(i for i, line in enumerate(text.splitlines(), 1) if line.startswith(prefix))


class TestLintErrors:
    def test_duplicate_names_both_lines(self) -> None:
        """A duplicated number is an error at the second heading naming the first."""
        text = render_todo([TaskSpec(1, title="One"), TaskSpec(2), TaskSpec(1, title="Again")])
        first, second = line_of(text, "### 1. One"), line_of(text, "### 1. Again")
        (problem,) = lint_text(text)
        assert (problem.line, problem.severity) == (second, "error")
        assert "duplicate task number 1" in problem.message
        assert str(first) in problem.message

    def test_self_dependency(self) -> None:
        """A task depending on itself is an error on its Dependencies line."""
        text = render_todo([TaskSpec(5, deps="Task 5")])
        (problem,) = lint_text(text)
        assert (problem.line, problem.severity) == (line_of(text, "- **Dependencies**"), "error")
        assert "depends on itself" in problem.message

    def test_cycle_among_open_tasks(self) -> None:
        """A cycle among open tasks is one error printing the path."""
        specs = [TaskSpec(63, deps="65"), TaskSpec(64, deps="63"), TaskSpec(65, deps="64")]
        problems = lint_text(render_todo(specs))
        assert [(p.severity, p.message.split(" (")[0]) for p in problems] == [
            ("error", "dependency cycle: 63 -> 64 -> 65 -> 63")
        ]

    def test_cycle_through_done_task_is_fine(self) -> None:
        """A cycle that passes through a done task cannot run and is not reported."""
        specs = [TaskSpec(1, deps="2"), TaskSpec(2, "[DONE]", deps="1")]
        assert lint_text(render_todo(specs)) == []

    def test_two_cycles_are_both_reported(self) -> None:
        """Separate cycles are each reported."""
        specs = [
            TaskSpec(1, deps="2"),
            TaskSpec(2, deps="1"),
            TaskSpec(10, deps="11"),
            TaskSpec(11, deps="10"),
        ]
        messages = [p.message for p in lint_text(render_todo(specs))]
        assert any("1 -> 2 -> 1" in m for m in messages)
        assert any("10 -> 11 -> 10" in m for m in messages)

    def test_empty_and_second_status(self) -> None:
        """An empty Status and a second Status field are errors on their own lines."""
        text = "### 1. A\n**Status**:\n### 2. B\n**Status**: open\n**Status**: [DONE]\n"
        problems = lint_text(text)
        assert [(p.line, p.severity) for p in problems] == [(2, "error"), (5, "error")]
        assert "empty Status" in problems[0].message
        assert "line 4" in problems[1].message
        assert has_errors(problems)


class TestLintWarnings:
    def test_absent_dependency_and_free_text_are_warnings(self) -> None:
        """Dependencies on absent tasks and unreadable dependency text only warn."""
        text = render_todo([TaskSpec(1, deps="Task 72"), TaskSpec(2, deps="Requires Layer 0")])
        problems = lint_text(text)
        assert [p.severity for p in problems] == ["warning", "warning"]
        assert "72" in problems[0].message
        assert "Requires Layer 0" in problems[1].message
        assert not has_errors(problems)

    def test_render_is_compiler_style(self) -> None:
        """A problem renders as ``path:line: severity: message``."""
        assert Problem(3, "warning", "hm").render("TODO.md") == "TODO.md:3: warning: hm"

    def test_fixtures_have_no_errors(self, todo_fixture: Path) -> None:
        """The real files hold warnings only, each on a line inside the file."""
        with todo_fixture.open(encoding="utf-8", newline="") as handle:
            doc = parse_todo(handle.read())
        problems = lint_document(doc)
        assert not has_errors(problems)
        assert all(1 <= p.line <= len(doc.lines) for p in problems)
