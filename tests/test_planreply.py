"""The plan as a pull request reply (batchaction/planreply.py): pure rendering."""

from __future__ import annotations

from batchaction.planner import plan
from batchaction.planreply import code, plan_markdown
from batchaction.todo import parse_todo


def todo(count: int, status: str = "[NOT STARTED]") -> str:
    return "".join(f"### {n}. Task {n}\n**Status**: {status}\n" for n in range(1, count + 1))


def test_past_60_tasks_the_graph_is_a_note() -> None:
    tasks = parse_todo(todo(61)).tasks
    text = plan_markdown(plan(tasks, range(1, 62)), "TODO.md", "/task 1-61", "ab" * 20)
    assert "```mermaid" not in text
    assert "_The dependency graph (61 tasks) is left out: more than 60 tasks._" in text
    assert "- **61** Task 61" in text


def test_nothing_to_run_has_no_graph_and_no_command() -> None:
    tasks = parse_todo(todo(2, "[COMPLETED]")).tasks
    text = plan_markdown(plan(tasks, [1, 2]), "TODO.md", "/task 1-2", None)
    assert text.startswith("**Plan for 1-2** from `TODO.md`: nothing to run, 2 skipped.\n")
    assert "mermaid" not in text
    assert "To run it" not in text


def test_no_command_line_when_none_is_given() -> None:
    tasks = parse_todo(todo(1)).tasks
    text = plan_markdown(plan(tasks, [1]), "TODO.md", "", "0" * 40)
    assert "on `000000000000`: 1 task to run in 1 wave." in text
    assert "To run it" not in text
    assert text.endswith("```\n")


def test_a_path_that_cannot_be_a_code_span_is_inert_text() -> None:
    assert code("docs/TODO.md") == "`docs/TODO.md`"
    assert code("a`b @x.md") == "a`b @&#8203;x.md"
