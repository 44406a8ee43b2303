"""CommonMark details that decide what GitHub shows: headings, fences, front matter, code
spans and HTML comments (CommonMark 0.31: 4.2 ATX headings, 4.5 fences, 4.6 HTML blocks, 6.1
code spans, 6.6 raw HTML). Pure functions over lines; the TODO parser uses them."""

from __future__ import annotations

import re
from collections.abc import Sequence


def heading_title(rest: str | None) -> str:
    """A heading's text without its closing ``#`` sequence and trailing blanks."""
    text = rest or ""
    text = text[:-1] if text.endswith("\r") else text
    return text.rstrip(" \t#").strip()


def front_matter_end(lines: list[str]) -> int:
    """Index of the first line after YAML front matter, or 0 when there is none.

    Front matter is skipped whatever it holds (malformed YAML included); an opening ``---`` that
    is never closed is a thematic break, not front matter.
    """
    if not lines or lines[0].lstrip("\ufeff").rstrip("\r\n").rstrip() != "---":
        return 0
    for index in range(1, len(lines)):
        if lines[index].rstrip("\r\n").rstrip() in ("---", "..."):
            return index + 1
    return 0


_BACKTICKS = re.compile(r"`++")


def without_code_spans(line: str) -> str:
    """``line`` without its code spans: a run of backticks opens one that the next run of the
    same length closes (CommonMark 6.1). Linear: one pointer per run length."""
    runs = [(m.start(), m.end()) for m in _BACKTICKS.finditer(line)]
    if len(runs) < 2:
        return line
    by_length: dict[int, list[int]] = {}
    for k, (a, b) in enumerate(runs):
        by_length.setdefault(b - a, []).append(k)
    pointer = dict.fromkeys(by_length, 0)
    out: list[str] = []
    last = k = 0
    while k < len(runs):
        a, b = runs[k]
        same = by_length[b - a]
        p = pointer[b - a]
        while p < len(same) and same[p] <= k:
            p += 1
        pointer[b - a] = p
        if p < len(same):
            out.append(line[last:a])
            last = runs[same[p]][1]
            k = same[p] + 1
        else:
            k += 1
    out.append(line[last:])
    return "".join(out)


_BLOCK_START = re.compile(r"[ \t]*+(?:#|[-*+][ \t]|[0-9]{1,9}[.)][ \t]|```|~~~|>)")


def inline_comment_end(lines: Sequence[str], start: int) -> tuple[int | None, int]:
    """Where a comment opened on line ``start`` inside a paragraph closes: (the line holding
    ``-->``, or None, and the line the search stopped at). An HTML comment that does not close
    before the paragraph ends (a blank line, a heading, a list item, a fence, a quote) is not a
    comment but literal text (CommonMark 0.31, 6.6)."""
    for index in range(start + 1, len(lines)):
        line = lines[index]
        if not line.strip() or _BLOCK_START.match(line):
            return None, index
        if "-->" in line:
            return index, index
    return None, len(lines)


def indent_of(line: str) -> int:
    return len(line) - len(line.lstrip(" ")) if not line.startswith("\t") else 4


def opens_comment(line: str) -> bool:
    """True when ``line`` leaves an HTML comment open (``<!--`` without a later ``-->``).

    A ``<!--`` inside a code span (``Handle `<!--` in templates``) is text, not a comment.
    """
    if "`" in line:
        line = without_code_spans(line)
    return line.rfind("<!--") > line.rfind("-->")
