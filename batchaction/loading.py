"""Read the TODO file and plan a selection with the resolved settings (CLI and action)."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from pathlib import Path

from batchaction.depfields import DependencyFields
from batchaction.planner import Plan, plan
from batchaction.settings import Settings
from batchaction.status import StatusTable
from batchaction.textlines import read_todo_text
from batchaction.todo import TodoDocument, parse_todo


def status_table(settings: Settings) -> StatusTable:
    return StatusTable.create(settings.done_markers, settings.closed_markers)


def dependency_fields(settings: Settings) -> DependencyFields:
    return DependencyFields.create(settings.dependency_fields, settings.reverse_dependency_fields)


def read_document(settings: Settings, todo: Path) -> TodoDocument:
    """Parse ``todo`` with the configured markers and dependency fields; BatchError (exit 2)."""
    return parse_todo(
        read_todo_text(todo), status_table(settings), dependency_fields=dependency_fields(settings)
    )


def read_and_plan(
    settings: Settings, todo: Path, selection: Sequence[int], name: str | None = None
) -> tuple[TodoDocument, Plan]:
    """Parse ``todo`` and plan ``selection``; BatchError (exit 2) for bad files and cycles.
    The plan's warnings and errors name the file ``name`` (default: ``todo`` as given)."""
    doc = read_document(settings, todo)
    result = plan(
        doc.tasks,
        selection,
        include_deps=settings.include_deps,
        unselected_deps="block" if settings.unselected_deps == "block" else "warn",
        headings=doc.headings,
        source=name or str(todo),
    )
    return doc, _with_broken_fields(doc, result, name or str(todo))


def _with_broken_fields(doc: TodoDocument, result: Plan, todo: str) -> Plan:
    """Plan warnings for lines of the planned tasks that read like a Status or dependency
    field but are not one (``lint`` reports them for the whole file)."""
    if not doc.broken_fields or not result.tasks:
        return result
    planned = sorted(result.tasks.values(), key=lambda t: t.heading_line)
    starts = [t.heading_line for t in planned]
    extra: list[str] = []
    for line, name in doc.broken_fields:
        at = bisect.bisect_right(starts, line) - 1  # the last planned heading above the line
        if at >= 0 and line < planned[at].end_line:
            extra.append(
                f"task {planned[at].number}: {todo}:{line + 1}: "
                f"{doc.lines[line].strip()[:60]!r} is not a {name} field and is not read: "
                f"write '**{name}**: VALUE'"
            )
    return result._replace(warnings=(*result.warnings, *extra)) if extra else result
