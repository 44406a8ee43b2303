"""Every real fixture's parse and plan, pinned: the wider dependency grammar changes only what
was wrong before.

``pins/fixture_plans.json`` was written by the parser before dependency fields other than
``Dependencies`` were read. ``CORRECTIONS`` lists, task by task, every place where that parser
was wrong and what the file really states; everything else must stay as it was.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from batchaction.errors import BatchError
from batchaction.planner import plan
from batchaction.todo import parse_todo

HERE = Path(__file__).resolve().parent
PINS: dict[str, dict[str, Any]] = json.loads((HERE / "pins" / "fixture_plans.json").read_text())

# file -> {"dependencies": {task: deps}, "states": {task: state}, "plan_all": {...}}
CORRECTIONS: dict[str, dict[str, Any]] = {}


def _current(path: Path) -> dict[str, Any]:
    doc = parse_todo(path.read_bytes().decode("utf-8"))
    numbers = sorted({t.number for t in doc.tasks})
    try:
        result = plan(doc.tasks, numbers)
        planned: dict[str, Any] = {
            "waves": [list(w) for w in result.waves],
            "skipped": sorted([s.number, s.reason] for s in result.skipped),
        }
    except BatchError as exc:
        planned = {"error": str(exc)}
    return {
        "states": {str(t.number): t.state for t in doc.tasks},
        "dependencies": {str(t.number): list(t.dependencies) for t in doc.tasks},
        "plan_all": planned,
    }


def _expected(name: str) -> dict[str, Any]:
    pinned = json.loads(json.dumps(PINS[name]))
    fixes = CORRECTIONS.get(name, {})
    for key in ("states", "dependencies"):
        pinned[key].update({str(k): v for k, v in fixes.get(key, {}).items()})
    if "plan_all" in fixes:
        pinned["plan_all"] = fixes["plan_all"]
    return pinned


def test_every_fixture_is_pinned(todo_fixture: Path) -> None:
    assert todo_fixture.name in PINS


@pytest.mark.parametrize("part", ["states", "dependencies", "plan_all"])
def test_fixture_unchanged_but_for_corrections(todo_fixture: Path, part: str) -> None:
    """States, dependency lists and the plan of every task are as pinned, corrections applied."""
    assert _current(todo_fixture)[part] == _expected(todo_fixture.name)[part]
