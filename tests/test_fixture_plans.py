"""Every real fixture's parse and plan, pinned: the wider dependency grammar changes only what
was wrong before.

``pins/fixture_plans.json`` was written by the parser before dependency fields other than
``Dependencies`` were read. ``CORRECTIONS`` lists, task by task, every place where that parser
was wrong and what the file really states; everything else must stay as it was.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from batchaction.errors import BatchError
from batchaction.planner import plan
from batchaction.todo import parse_todo

HERE = Path(__file__).resolve().parent
PINS: dict[str, dict[str, Any]] = json.loads((HERE / "pins" / "fixture_plans.json").read_text())

# file -> {"dependencies": {task: deps}, "states": {task: state}, "waves": [...]}. Each entry
# quotes the line of the file that states it.
CORRECTIONS: dict[str, dict[str, Any]] = {
    "nvim-91ca30b.md": {
        # "- **Status**: [IMPLEMENTED]": implementation completed, so done and skipped.
        "states": {670: "done"},
        "waves": [[78, 87, 652, 682], [683]],
        "skipped_add": [[670, "already-done"]],
    },
    "proofchecker-84be697.md": {
        # "- **Depends**: 910" under 911, and so on down the chain; "- **Depends**: Task 856".
        "dependencies": {911: [910], 910: [909], 909: [908], 908: [907], 843: [856]},
        "waves": [
            [394, 398, 619, 685, 793, 843, 864, 865, 868, 870, 881, 900, 909],
            [399, 910],
            [911],
        ],
    },
    "proofchecker-43ce1ce.md": {
        # 183 and 184: "- **Blocking**: 173" (173's Blocking Reason names their build errors).
        "dependencies": {173: [183, 184]},
        "waves_move": {173: 2},
    },
    "proofchecker-6172a67.md": {
        # 72: "- **Blocks**: Tasks 73, 74, 75, 76, 77, 78" adds 72 where 74/75 only named 73.
        "dependencies": {74: [73, 72], 75: [73, 72]},
    },
    "proofchecker-b9a45da.md": {
        # 154 "(supports Tasks 129 & 130)": "- **Blocking**: 129, 130".
        "dependencies": {129: [154], 130: [129, 154]},
        "waves": [
            [132, 136, 139, 140, 141, 154, 155],
            [129, 133, 137],
            [130, 134, 138],
            [135],
        ],
    },
}


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
    planned = pinned["plan_all"]
    if "waves" in fixes:
        planned["waves"] = fixes["waves"]
    for number, wave in fixes.get("waves_move", {}).items():
        planned["waves"] = [[n for n in w if n != number] for w in planned["waves"]]
        planned["waves"][wave - 1] = sorted([*planned["waves"][wave - 1], number])
    if "skipped_add" in fixes:
        planned["skipped"] = sorted(planned["skipped"] + fixes["skipped_add"])
    return pinned


def test_every_fixture_is_pinned(todo_fixture: Path) -> None:
    assert todo_fixture.name in PINS


@pytest.mark.parametrize("part", ["states", "dependencies", "plan_all"])
def test_fixture_unchanged_but_for_corrections(todo_fixture: Path, part: str) -> None:
    """States, dependency lists and the plan of every task are as pinned, corrections applied."""
    assert _current(todo_fixture)[part] == _expected(todo_fixture.name)[part]


@pytest.mark.parametrize(
    ("name", "selection", "waves", "skipped"),
    [
        # "- **Depends**: 910" under 911, "- **Depends**: 909" under 910.
        ("proofchecker-84be697.md", "909-911", [[909], [910], [911]], []),
        # 670 is "[IMPLEMENTED]"; 683: "- **Dependencies**: Task 682".
        ("nvim-91ca30b.md", "670,682,683", [[682], [683]], [[670, "already-done"]]),
    ],
)
def test_plan_of_the_new_fixtures(
    cli: Callable[..., tuple[int, str, str]],
    name: str,
    selection: str,
    waves: list[list[int]],
    skipped: list[list[Any]],
) -> None:
    """``batchaction plan`` as a process on the two files where the old grammar went wrong."""
    todo = HERE / "fixtures" / "todo" / name
    code, out, err = cli("plan", selection, "--todo", str(todo), "--json", cwd=HERE)
    assert code == 0, err
    data = json.loads(out)
    assert data["waves"] == waves
    assert [[s["number"], s["reason"]] for s in data["skipped"]] == skipped
