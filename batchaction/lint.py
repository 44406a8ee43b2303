"""``batchaction lint``: compiler-style problems in TODO files, for editors and pre-commit."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, NamedTuple

from batchaction.planner import find_cycle, format_cycle, index_tasks, kahn_levels
from batchaction.todo import TodoDocument

Severity = Literal["error", "warning"]


class Problem(NamedTuple):
    line: int  # 1-based
    severity: Severity
    message: str

    def render(self, path: str) -> str:
        return f"{path}:{self.line}: {self.severity}: {self.message}"


def lint_document(doc: TodoDocument) -> list[Problem]:
    """Every problem in one parsed TODO file, sorted by line."""
    problems: list[Problem] = []
    by_number, duplicates = index_tasks(doc.tasks)
    for number, copies in duplicates.items():
        first = copies[0].heading_line + 1
        for copy in copies[1:]:
            problems.append(
                Problem(
                    copy.heading_line + 1,
                    "error",
                    f"duplicate task number {number} (also at line {first}): "
                    "give each task its own number",
                )
            )
    for task in doc.tasks:
        status = task.field("status")
        assert status is not None  # a task is defined by its Status field
        if not status.value.strip():
            problems.append(
                Problem(status.line + 1, "error", f"task {task.number}: empty Status field")
            )
        for extra in task.repeated:
            if extra.key == "status":
                problems.append(
                    Problem(
                        extra.line + 1,
                        "error",
                        f"task {task.number}: second Status field (first at line "
                        f"{status.line + 1}): keep one",
                    )
                )
        dep_field = task.field("dependencies")
        dep_line = (dep_field.line if dep_field else task.heading_line) + 1
        if task.number in task.dependencies:
            problems.append(Problem(dep_line, "error", f"task {task.number} depends on itself"))
        if task.dependency_warning:
            problems.append(
                Problem(dep_line, "warning", f"task {task.number}: {task.dependency_warning}")
            )
        for dep in task.dependencies:
            if dep not in by_number:
                problems.append(
                    Problem(
                        dep_line,
                        "warning",
                        f"task {task.number} depends on {dep}, which is not in this file "
                        "(treated as done)",
                    )
                )
    problems.extend(_cycles(doc))
    return sorted(problems, key=lambda p: (p.line, p.severity, p.message))


def _cycles(doc: TodoDocument) -> list[Problem]:
    """Cycles among open tasks (self-dependencies are reported on their own)."""
    by_number, _ = index_tasks(doc.tasks)
    edges = {
        n: [d for d in t.dependencies if d != n and d in by_number and by_number[d].state == "open"]
        for n, t in by_number.items()
        if t.state == "open"
    }
    problems: list[Problem] = []
    while kahn_levels(edges) is None:
        cycle = find_cycle(edges)
        if cycle is None:
            break
        first = min(cycle)
        problems.append(Problem(by_number[first].heading_line + 1, "error", format_cycle(cycle)))
        # Break this cycle at its first edge and look for others.
        edges[cycle[1]] = [d for d in edges[cycle[1]] if d != cycle[0]]
    return problems


def has_errors(problems: Sequence[Problem]) -> bool:
    return any(p.severity == "error" for p in problems)
