"""Read the TODO file and plan a selection with the resolved settings (CLI and action)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from batchaction.planner import Plan, plan
from batchaction.settings import Settings
from batchaction.status import StatusTable
from batchaction.textlines import read_todo_text
from batchaction.todo import TodoDocument, parse_todo


def status_table(settings: Settings) -> StatusTable:
    return StatusTable.create(settings.done_markers, settings.closed_markers)


def read_and_plan(
    settings: Settings, todo: Path, selection: Sequence[int]
) -> tuple[TodoDocument, Plan]:
    """Parse ``todo`` and plan ``selection``; BatchError (exit 2) for bad files and cycles."""
    doc = parse_todo(read_todo_text(todo), status_table(settings))
    result = plan(
        doc.tasks,
        selection,
        include_deps=settings.include_deps,
        unselected_deps="block" if settings.unselected_deps == "block" else "warn",
    )
    return doc, result
