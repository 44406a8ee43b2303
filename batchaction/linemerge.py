"""A three-way merge of text, line by line, that accepts changes to adjacent lines.

Git counts edits of adjacent lines as a conflict; parallel tasks that each edit their own line
of a shared file (a list, a registry) do exactly that. ``merge_lines`` applies both sides'
changes when their line ranges are disjoint, adjacent ones included (``integration.py`` uses it
for text files git reports as conflicting, ``todomerge.py`` for a task's TODO edits).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence


def _changes(base: Sequence[str], other: Sequence[str]) -> list[tuple[int, int, list[str]]]:
    """(start, end, replacement) for each base range ``other`` changed (difflib opcodes)."""
    matcher = difflib.SequenceMatcher(None, base, other, autojunk=False)
    return [
        (i1, i2, list(other[j1:j2]))
        for tag, i1, i2, j1, j2 in matcher.get_opcodes()
        if tag != "equal"
    ]


def merge_lines(base: str, ours: str, theirs: str) -> str | None:
    """A three-way merge that accepts changes to adjacent lines; None on a real overlap.

    Both sides' changes are base line ranges with replacements. Two changes conflict when
    their ranges share a base line, or when both insert at the same place different lines, or
    one inserts strictly inside the other's range; identical changes count once.
    """
    base_lines = base.splitlines(keepends=True)
    changes = [(s, e, r, 0) for s, e, r in _changes(base_lines, ours.splitlines(keepends=True))]
    changes += [(s, e, r, 1) for s, e, r in _changes(base_lines, theirs.splitlines(keepends=True))]
    changes.sort(key=lambda c: (c[0], c[1], c[3]))
    merged: list[tuple[int, int, list[str]]] = []
    for start, end, replacement, _side in changes:
        if merged:
            p_start, p_end, p_repl = merged[-1]
            if (start, end, replacement) == (p_start, p_end, p_repl):
                continue  # the same change on both sides
            overlaps = start < p_end or (start == p_start and (start == end or p_start == p_end))
            if overlaps:
                return None
        merged.append((start, end, replacement))
    out: list[str] = []
    at = 0
    for start, end, replacement in merged:
        out.extend(base_lines[at:start])
        out.extend(replacement)
        at = end
    out.extend(base_lines[at:])
    return "".join(out)
