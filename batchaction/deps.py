"""Dependency and Effort extraction from the free text people really write."""

from __future__ import annotations

import re
from typing import NamedTuple

# A range wider than this in a Dependencies field is a typo, not a plan.
MAX_DEPENDENCY_RANGE = 10_000

# Separators only: the segments are stripped after the split (``\s*`` around the separator
# made the split quadratic on long runs of blanks). Possessive ``*+``/``++`` keep matching
# linear: a backtracking ``\s*`` next to ``#?\s*`` used to take minutes on a long line.
_SPLIT = re.compile(r"[,;&/+]|\band\b", re.IGNORECASE)
_BARE = re.compile(
    r"(?:tasks?\s*+)?#?\s*+(\d++)(?:\s*+[-–]\s*+(?:tasks?\s*+)?#?\s*+(\d++))?", re.IGNORECASE
)
_REFERENCE = re.compile(
    r"(?:\btasks?\s*+#?\s*+|#\s*+)(\d++)(?:\s*+[-–]\s*+#?\s*+(\d++))?",
    re.IGNORECASE,
)
_NONE = re.compile(r"(?:none|n/?a|nothing|-+|—)", re.IGNORECASE)


def strip_annotations(text: str) -> str:
    """Remove (possibly nested) parenthesised annotations.

    Each closed group, innermost first, becomes one space; unmatched parentheses stay. One pass
    with a stack (substituting innermost groups until nothing changes was quadratic in depth).
    """
    if "(" not in text:
        return text
    out: list[str] = []
    opened: list[int] = []  # where in ``out`` each unclosed "(" sits
    for char in text:
        if char == "(":
            opened.append(len(out))
            out.append(char)
        elif char == ")" and opened:
            del out[opened.pop() :]
            out.append(" ")
        else:
            out.append(char)
    return "".join(out)


class Dependencies(NamedTuple):
    numbers: tuple[int, ...]
    warning: str | None


def _expand(start: str, end: str | None) -> tuple[list[int], str | None]:
    if len(start) > 18 or len(end or "") > 18:
        return [], f"number {(start if len(start) > 18 else end or '')[:12]}… is too large"
    first = int(start)
    last = int(end) if end is not None else first
    if last < first:
        return [], f"range {first}-{last} runs backwards"
    if last - first >= MAX_DEPENDENCY_RANGE:
        return [], f"range {first}-{last} is too wide"
    return list(range(first, last + 1)), None


def parse_dependencies(value: str) -> Dependencies:
    """Extract task numbers from a Dependencies field value.

    A number counts when it is a bare list item (``136, 137``) or follows ``Task``/``Tasks``/``#``
    (``Requires Task 9``, ``Tasks 72-76``, ``Task #1007``). Text in parentheses is annotation.
    """
    text = strip_annotations(value).strip().strip(".").strip()
    if not text or _NONE.fullmatch(text) or re.match(r"none\b", text, re.IGNORECASE):
        return Dependencies((), None)
    found: list[int] = []
    problems: list[str] = []
    for raw in _SPLIT.split(text):
        segment = raw.strip().strip(".").strip()
        if not segment:
            continue
        bare = _BARE.fullmatch(segment)
        matches = [bare] if bare else list(_REFERENCE.finditer(segment))
        for match in matches:
            numbers, problem = _expand(match.group(1), match.group(2))
            found.extend(numbers)
            if problem:
                problems.append(problem)
    unique = tuple(dict.fromkeys(found))
    if problems:
        return Dependencies(unique, f"ignored {'; '.join(problems)} in {value.strip()!r}")
    if not unique:
        return Dependencies(
            (),
            f"no task reference in {value.strip()!r}: treated as no dependency; "
            "write task numbers like 'Task 72' or '72, 73'",
        )
    return Dependencies(unique, None)


_NUMBER = r"(\d+(?:\.\d+)?)"
# Never start inside a run of digits: each such start rescanned the run (quadratic).
_EFFORT = re.compile(
    r"(?<!\d)" + _NUMBER + r"(?:\s*(?:[-–]|to)\s*" + _NUMBER + r")?\s*"
    r"(minutes?|mins?|m|hours?|hrs?|h|days?|d|weeks?|wks?|w)?\b",
    re.IGNORECASE,
)
_UNIT_HOURS = {"m": 1 / 60, "h": 1.0, "d": 8.0, "w": 40.0}


def parse_effort(value: str) -> float | None:
    """Hours from an Effort field: ``2-3 hours`` -> 2.5, ``30 minutes`` -> 0.5, ``TBD`` -> None.

    Text outside parentheses wins; ``Small (0.5 hours)`` falls back to the annotation.
    """
    outside = strip_annotations(value)
    for text in (outside, value):
        match = _EFFORT.search(text)
        if match is None:
            continue
        low = float(match.group(1))
        high = float(match.group(2)) if match.group(2) else low
        unit = (match.group(3) or "h")[0].lower()
        return (low + high) / 2 * _UNIT_HOURS[unit]
    return None
