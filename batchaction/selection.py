"""Selection grammar: ``63, 65-67 #88`` -> sorted, deduplicated task numbers."""

from __future__ import annotations

import re
from collections.abc import Iterable

from batchaction.errors import BatchError

DEFAULT_MAX_TASKS = 500

_SEPARATORS = re.compile(r"[\s,]+")
# ASCII digits only: ``\d`` would also take look-alikes such as ``٣`` or ``３``.
_ITEM = re.compile(r"#?(?P<start>[0-9]+)(?:-(?P<end>[0-9]+))?")

EXPECTED = "expected a task number like 63 or a range like 65-67"


def parse_selection(text: str, max_tasks: int = DEFAULT_MAX_TASKS) -> list[int]:
    """Parse a selection into sorted unique task numbers, or raise BatchError (exit 2)."""
    items = [item for item in _SEPARATORS.split(text.strip()) if item]
    if not items:
        raise BatchError(f"empty selection: {EXPECTED}")
    numbers: set[int] = set()
    for item in items:
        match = _ITEM.fullmatch(item)
        if match is None:
            raise BatchError(f"invalid selection item {item!r}: {EXPECTED}")
        if max(len(match["start"]), len(match["end"] or "")) > 18:
            raise BatchError(f"invalid selection item {item!r}: task number too large")
        start = int(match["start"])
        end = int(match["end"]) if match["end"] is not None else start
        if start == 0 or end == 0:
            raise BatchError(f"invalid selection item {item!r}: task numbers start at 1")
        if start > end:
            raise BatchError(f"invalid range {item!r}: start must not exceed end")
        if end - start + 1 > max_tasks:
            raise BatchError(
                f"range {item!r} selects {end - start + 1} tasks, over the cap of {max_tasks}: "
                "select fewer tasks or raise max-tasks"
            )
        numbers.update(range(start, end + 1))
        if len(numbers) > max_tasks:
            raise BatchError(
                f"selection has more than {max_tasks} tasks (the cap): "
                "select fewer tasks or raise max-tasks"
            )
    return sorted(numbers)


def format_selection(numbers: Iterable[int]) -> str:
    """Render numbers compactly, collapsing consecutive runs: [63, 65, 66, 67] -> '63, 65-67'."""
    ordered = sorted(set(numbers))
    parts: list[str] = []
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ", ".join(parts)
