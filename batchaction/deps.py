"""Dependency and Effort extraction from the free text people really write."""

from __future__ import annotations

import re
from typing import NamedTuple

# A range wider than this in a dependency field is a typo, not a plan; and no field names
# more than MAX_DEPENDENCIES tasks (ranges of archived tasks made plans take minutes).
MAX_DEPENDENCY_RANGE = 1_000
MAX_DEPENDENCIES = 1_000

# Separators only: the segments are stripped after the split (``\s*`` around the separator
# made the split quadratic on long runs of blanks). Possessive ``*+``/``++`` keep matching
# linear: a backtracking ``\s*`` next to ``#?\s*`` used to take minutes on a long line.
_SPLIT = re.compile(r"[,;&/+\n]|\b(?:and|or)\b", re.IGNORECASE)
# A range: ``72-76``, ``72–76`` (en dash), ``72—76`` (em dash), ``5 through 8``, ``5 to 8``.
_DASH = r"(?:\s*+[-–—]\s*+|\s++(?:through|thru|to|until)\s++)"
_NUM = r"(\d++)(?:\.(\d++))?(?![A-Za-z_])"  # ``42a`` is some other identifier
_RANGE_END = r"(?:" + _DASH + r"(?:tasks?\s*+)?#?\s*+" + _NUM + r")?"
_BARE = re.compile(r"(?:tasks?\s*+)?#?\s*+" + _NUM + _RANGE_END, re.IGNORECASE)
_REFERENCE = re.compile(r"(?:\btasks?\s*+#?\s*+|#\s*+)" + _NUM + _RANGE_END, re.IGNORECASE)
_NONE = re.compile(r"(?:none|n/?a|nothing|-+|—)", re.IGNORECASE)
# Other trackers' references: never tasks of this file. ``owner/repo#12``, ``GitHub owner/repo
# #16803``, ``issue #115``, ``PR #42``, ``GH-12``, and URLs.
_FOREIGN = re.compile(
    r"(?<![a-z0-9+.-])[a-z][a-z0-9+.-]*+://[^\s)\]>]++"
    r"|(?:\bgit(?:hub|lab)\s++)?(?<![\w.-])[\w.-]++/[\w.-]++\s*+#\s*+\d++"
    r"|\b(?:issues?|prs?|pull\s++requests?|pulls?|mrs?|merge\s++requests?|tickets?|bugs?"
    r"|git(?:hub|lab)|gh|jira)\s*+(?:#|-|no\.?)\s*+\d++"
    r"|\bgh-\d++",
    re.IGNORECASE,
)
# A Markdown link to a URL is another tracker's item (``[#97](https://github.com/o/r/issues/97)``);
# a link to a file or an anchor (``[Task 518](task-518.md)``) is read by its text.
_URL_LINK = re.compile(
    r"\[[^\[\]\n]*+\]\(\s*+[a-z][a-z0-9+.-]*+://[^)\s]*+(?:\s++\"[^\"]*+\")?\s*+\)",
    re.IGNORECASE,
)
# Values read without the full grammar: none, or task numbers of at most 18 digits, each bare,
# after ``Task``/``Tasks`` or ``#``, separated by commas.
_ITEM = r"(?:tasks?[ \t]++)?#?\d{1,18}+(?![\d.])"
_SIMPLE = re.compile(
    r"[ \t]*+(?:(?P<none>none|n/a|-)\.?|"
    + _ITEM
    + r"(?:[ \t]*+,[ \t]*+"
    + _ITEM
    + r")*+,?)[ \t]*+",
    re.IGNORECASE,
)
_DIGITS = re.compile(r"\d++")
# A task reference inside parentheses: "(and Task 4)", "(see #12)" - an annotation, warned about.
_PAREN_REFERENCE = re.compile(r"\([^()]*?\b(?:tasks?\s*+#?\s*+\d++|#\d++)[^()]*+\)", re.IGNORECASE)
_COMMENT = re.compile(r"<!--.*?(?:-->|$)", re.DOTALL)
_STRUCK = re.compile(r"~~[^~]*+~~")
_DIGIT = re.compile(r"\d")
_HOW = "write task numbers like 'Task 72', '72, 73' or 'Tasks 72-76'"


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
    """Task numbers read from a field value, and one warning per fragment not read as written."""

    numbers: tuple[int, ...]
    warnings: tuple[str, ...] = ()

    @property
    def warning(self) -> str | None:
        return "; ".join(self.warnings) if self.warnings else None


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


def _quote(fragment: str) -> str:
    text = " ".join(fragment.split())
    return repr(text if len(text) <= 60 else text[:59] + "…")


def _read_match(match: re.Match[str], found: list[int], problems: list[str]) -> None:
    numbers, problem = _expand(match.group(1), match.group(3))
    found.extend(numbers)
    if problem:
        problems.append(f"ignored {problem} in {_quote(match.group(0))}")
    for whole, part in ((match.group(1), match.group(2)), (match.group(3), match.group(4))):
        if part is not None:
            problems.append(
                f"{_quote(f'{whole}.{part}')} is a sub-task: read as task {whole.lstrip('0') or 0}"
            )


def parse_dependencies(value: str) -> Dependencies:
    """Extract task numbers from a dependency field's value (SPEC 3).

    A number counts when it is a bare list item (``136, 137``, ``[58, 66]``) or follows
    ``Task``/``Tasks``/``#`` (``Requires Task 9``, ``Tasks 72-76``, ``Task #1007``); ranges are
    written ``72-76``, ``72–76``, ``5 through 8`` or ``5 to 8``. ``5.2`` is task 5, with a
    warning. Text in parentheses and HTML comments is annotation. Other trackers' references
    (``owner/repo#12``, ``issue #115``, ``PR #42``, URLs) are not tasks. Every other fragment
    holding a digit is not read and yields a warning quoting it, as does a value with no task
    reference at all. Never raises.
    """
    simple = _SIMPLE.fullmatch(value)
    if simple is not None:  # the common shapes: "None", "72", "Task 72, 73", "#12"
        if simple["none"] is not None:
            return Dependencies(())
        return Dependencies(tuple(dict.fromkeys(int(n) for n in _DIGITS.findall(value))))
    problems: list[str] = []
    text = _COMMENT.sub(" ", value) if "<!--" in value else value
    if "](" in text:
        for link in _URL_LINK.findall(text):
            problems.append(f"{_quote(link)} is another tracker's reference, not a task: not read")
        text = _URL_LINK.sub(" ", text)
    if "(" in text:
        for inner in _PAREN_REFERENCE.findall(text):
            problems.append(
                f"{_quote(inner)} is in parentheses: an annotation, not read as a dependency "
                "(write it outside the parentheses if it is one)"
            )
    text = strip_annotations(text)
    if not text.strip(" .") and _DIGIT.search(value) and not problems:
        problems.append(
            f"{_quote(value)} is all in parentheses: an annotation, not read as a dependency "
            "(write the task numbers outside the parentheses)"
        )
    if "~~" in text:
        for struck in _STRUCK.findall(text):
            if _DIGIT.search(struck):
                problems.append(f"struck-through {_quote(struck)} not read")
        text = _STRUCK.sub(" ", text)
    if "#" in text or "/" in text or "-" in text or "no" in text.lower():
        for foreign in _FOREIGN.findall(text):
            problems.append(
                f"{_quote(foreign)} is another tracker's reference, not a task: not read"
            )
        text = _FOREIGN.sub(" ", text)
    text = text.replace("[", " ").replace("]", " ")
    text = text.strip().strip(".").strip()
    if not problems and (not text or _NONE.fullmatch(text)):
        return Dependencies(())
    if re.match(r"none\b", text, re.IGNORECASE) and not _DIGIT.search(text):
        return Dependencies(())  # "None - stands alone"; "None, until Task 4" is read on
    found: list[int] = []
    for raw in _SPLIT.split(text):
        segment = raw.strip().strip(".:").strip()
        if not segment:
            continue
        bare = _BARE.fullmatch(segment)
        if bare:
            _read_match(bare, found, problems)
            continue
        rest: list[str] = []
        last = 0
        for match in _REFERENCE.finditer(segment):
            _read_match(match, found, problems)
            rest.append(segment[last : match.start()])
            last = match.end()
        rest.append(segment[last:])
        if _DIGIT.search("".join(rest)):
            problems.append(f"{_quote(segment)} not read as a task reference: {_HOW}")
    unique = tuple(dict.fromkeys(found))
    if len(unique) > MAX_DEPENDENCIES:
        problems.append(f"more than {MAX_DEPENDENCIES} task numbers: only the first are read")
        unique = unique[:MAX_DEPENDENCIES]
    if not unique and not problems and not re.match(r"none\b", text, re.IGNORECASE):
        problems.append(f"no task reference in {value.strip()!r}: treated as no dependency; {_HOW}")
    return Dependencies(unique, tuple(problems))


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
