"""``batchaction lint``: compiler-style problems in TODO files, for editors and pre-commit."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, NamedTuple

from batchaction.depfields import DEFAULT_FIELDS, DependencyFields
from batchaction.planner import find_cycle, format_cycle, index_tasks, kahn_levels, missing_phrase
from batchaction.todo import Field, Task, TodoDocument

Severity = Literal["error", "warning"]


class Problem(NamedTuple):
    line: int  # 1-based
    severity: Severity
    message: str

    def render(self, path: str) -> str:
        return f"{path}:{self.line}: {self.severity}: {self.message}"


def lint_document(
    doc: TodoDocument, dependency_fields: DependencyFields = DEFAULT_FIELDS
) -> list[Problem]:
    """Every problem in one parsed TODO file, sorted by line.

    ``dependency_fields`` must be the names ``doc`` was parsed with: a field that mentions
    depend/require/block but is in neither list is reported, naming the setting to use.
    """
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
        problems.extend(_repeated_status(doc, task, status))
        problems.extend(_unread_fields(task, dependency_fields))
        dep_line = (task.dependency_line or task.heading_line) + 1
        if task.number in task.dependencies:
            problems.append(Problem(dep_line, "error", f"task {task.number} depends on itself"))
        for line, message in task.dependency_warnings:
            problems.append(Problem(line + 1, "warning", f"task {task.number}: {message}"))
        for target in task.blocks:
            if target not in by_number:
                problems.append(
                    Problem(
                        dep_line,
                        "warning",
                        f"task {task.number} blocks {target}, which is not in this file "
                        "(no dependency added)",
                    )
                )
        missing = [dep for dep in task.dependencies if dep not in by_number]
        if missing:
            problems.append(
                Problem(
                    dep_line,
                    "warning",
                    f"task {task.number} depends on {missing_phrase(missing)} not in this file "
                    "(treated as done)",
                )
            )
    problems.extend(_cycles(doc))
    problems.extend(
        Problem(
            line + 1,
            "warning",
            f"{doc.lines[line].strip()[:60]!r} is not a {name} field (GitHub shows it as text"
            + (
                ", and a numbered heading without a Status field is not a task"
                if name.lower() == "status"
                else ", and the dependency is not read"
            )
            + f"): write '**{name}**: VALUE' or '- **{name}**: VALUE'",
        )
        for line, name in doc.broken_fields
    )
    return sorted(problems, key=lambda p: (p.line, p.severity, p.message))


def _repeated_status(doc: TodoDocument, task: Task, status: Field) -> list[Problem]:
    """A second Status field: in the same field list, keep one; after a break in the text,
    another task's fields may follow without their heading."""
    extras = sorted(f.line for f in task.repeated if f.key == "status")
    if not extras:
        return []
    # Where each run of non-blank lines starts, for the lines of this task (one pass).
    block_start: dict[int, int] = {}
    start = status.line
    for index in range(status.line, extras[-1] + 1):
        text = doc.lines[index]
        if not text.strip() or text.startswith("#"):
            start = index + 1
        block_start[index] = start
    problems: list[Problem] = []
    for line in extras:
        begins = block_start[line]
        if begins > status.line:
            hint = f"a heading may be missing before line {begins + 1}"
        else:
            hint = "keep one"
        problems.append(
            Problem(
                line + 1,
                "error",
                f"task {task.number}: second Status field (first at line {status.line + 1}): "
                + hint,
            )
        )
    return problems


def _unread_fields(task: Task, names: DependencyFields) -> list[Problem]:
    """Fields that sound like dependencies but are read as neither direction."""
    return [
        Problem(
            field.line + 1,
            "warning",
            f"task {task.number}: field {field.name!r} is not read as a dependency: if its "
            "values are task numbers, add it to dependency-fields (or, for 'N needs this "
            "task', reverse-dependency-fields) in .github/batchaction.yml",
        )
        for field in sorted((*task.fields, *task.repeated), key=lambda f: f.line)
        if names.looks_like_dependency(field.name)
    ]


def _cycles(doc: TodoDocument) -> list[Problem]:
    """One cycle for each group of open tasks that depend on each other (strongly connected
    components, Tarjan's algorithm via networkx); self-dependencies are reported on their own."""
    by_number, _ = index_tasks(doc.tasks)
    edges = {
        n: [d for d in t.dependencies if d != n and d in by_number and by_number[d].state == "open"]
        for n, t in by_number.items()
        if t.state == "open"
    }
    if kahn_levels(edges) is not None:
        return []
    import networkx as nx  # noqa: PLC0415 - heavy import, only needed for graphs with cycles

    graph = nx.DiGraph()
    graph.add_nodes_from(edges)
    graph.add_edges_from((dep, task) for task, deps in edges.items() for dep in deps)
    problems: list[Problem] = []
    for component in nx.strongly_connected_components(graph):
        if len(component) < 2:
            continue
        members = sorted(component)
        cycle = find_cycle({n: [d for d in edges[n] if d in component] for n in members})
        if cycle is not None:
            first = min(cycle)
            problems.append(
                Problem(by_number[first].heading_line + 1, "error", format_cycle(cycle))
            )
    return problems


def has_errors(problems: Sequence[Problem]) -> bool:
    return any(p.severity == "error" for p in problems)
