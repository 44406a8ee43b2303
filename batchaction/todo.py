"""The TODO.md model: tasks are numbered headings whose section holds a Status field.

The parser never normalizes what it keeps: ``TodoDocument.lines`` re-join to the original text,
and every field records its line index so that writers can patch single lines in place.
"""

from __future__ import annotations

import gc
import re
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import NamedTuple

from batchaction.deps import parse_dependencies, parse_effort
from batchaction.status import DEFAULT_TABLE, State, StatusTable, classify
from batchaction.textlines import split_lines

# The title is greedy (a lazy one before ``[ \t#]*`` backtracks quadratically on long lines of
# spaces and ``#``); the closing sequence is trimmed by ``_heading_title``.
_HEADING = re.compile(r" {0,3}(#{1,6})(?:[ \t]+(.*))?[ \t#]*\r?\n?$")
# Task numbers have at most 18 digits: longer runs are text, not numbers (and int() of a
# 5000-digit string raises).
_TASK_TITLE = re.compile(r"([0-9]{1,18})\.[ \t]+(.*)$|([0-9]{1,18})\.?$")
_FIELD = re.compile(
    r"(?P<indent>[ \t]*)(?P<bullet>[-*+][ \t]+)?\*\*(?P<name>[^*\n]+?)\*\*"
    r"(?P<sep>:)?[ \t]*+(?P<value>[^\r\n]*+)(?P<eol>\r?\n)?$"
)  # the value is greedy (a lazy one costs a backtracking step per character); strip it after
_FENCE = re.compile(r"[ \t]*(`{3,}|~{3,})(.*)")


class Field(NamedTuple):
    """One ``**Name**: value`` line, with enough of its shape to write a sibling line."""

    key: str  # lower-cased name: "status", "dependencies"
    name: str  # as written: "Status"
    value: str
    line: int  # 0-based index into TodoDocument.lines
    indent: str
    bullet: str  # "- " or ""
    colon_inside: bool  # "**Status:** x" rather than "**Status**: x"

    def render(self, name: str, value: str, eol: str) -> str:
        """A new field line in this field's own style."""
        label = f"**{name}:**" if self.colon_inside else f"**{name}**:"
        return f"{self.indent}{self.bullet}{label} {value}{eol}"


class Task(NamedTuple):
    number: int
    title: str
    level: int
    heading_line: int
    end_line: int  # exclusive: the next heading of the same or a higher level, or EOF
    fields: tuple[Field, ...]  # first occurrence of each name, in file order
    repeated: tuple[Field, ...]  # later occurrences of a name already seen
    status: str
    state: State
    dependencies: tuple[int, ...]
    dependency_warning: str | None
    effort_hours: float | None

    def field(self, key: str) -> Field | None:
        for field in self.fields:
            if field.key == key:
                return field
        return None


class TodoDocument(NamedTuple):
    lines: tuple[str, ...]
    tasks: tuple[Task, ...]

    @property
    def text(self) -> str:
        return "".join(self.lines)


def _parse_field(line: str, index: int) -> Field | None:
    stripped = line.lstrip(" \t")
    if not stripped.startswith(("**", "- **", "* **", "+ **")) and not re.match(
        r"[-*+][ \t]+\*\*", stripped
    ):
        return None
    match = _FIELD.match(line)
    if match is None:
        return None
    name = match["name"]
    colon_inside = name.endswith(":")
    if colon_inside:
        if match["sep"]:
            return None
        name = name[:-1].rstrip()
    elif not match["sep"]:
        return None
    if not name or ":" in name:
        return None
    return Field(
        key=name.strip().lower(),
        name=name.strip(),
        value=match["value"].rstrip(" \t"),
        line=index,
        indent=match["indent"],
        bullet=match["bullet"] or "",
        colon_inside=colon_inside,
    )


def _heading_title(rest: str | None) -> str:
    """A heading's text without its closing ``#`` sequence and trailing blanks."""
    text = rest or ""
    text = text[:-1] if text.endswith("\r") else text
    return text.rstrip(" \t#").strip()


def _front_matter_end(lines: list[str]) -> int:
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


@dataclass
class _Section:
    level: int
    number: int
    title: str
    heading: int
    end: int
    fields: list[Field] = dataclass_field(default_factory=list)
    repeated: list[Field] = dataclass_field(default_factory=list)

    def add(self, field: Field) -> None:
        if any(existing.key == field.key for existing in self.fields):
            self.repeated.append(field)
        else:
            self.fields.append(field)

    def to_task(self, table: StatusTable, shallow: bool) -> Task | None:
        own = {f.key: f for f in self.fields}
        status = own.get("status")
        if status is None:
            return None
        task = Task(
            number=self.number,
            title=self.title,
            level=self.level,
            heading_line=self.heading,
            end_line=self.end,
            fields=tuple(self.fields),
            repeated=tuple(self.repeated),
            status=status.value,
            state="open",
            dependencies=(),
            dependency_warning=None,
            effort_hours=None,
        )
        if shallow:
            return task
        deps = parse_dependencies(own["dependencies"].value if "dependencies" in own else "")
        effort = own.get("effort")
        return task._replace(
            state=classify(status.value, table),
            dependencies=deps.numbers,
            dependency_warning=deps.warning,
            effort_hours=parse_effort(effort.value) if effort else None,
        )


def parse_todo(
    text: str, table: StatusTable = DEFAULT_TABLE, *, shallow: bool = False
) -> TodoDocument:
    """Parse TODO.md text. Never raises on any text; problems surface through ``lint``.

    ``shallow`` finds the tasks and their Status fields only (no other fields, no state,
    dependencies or effort): what a writer needs to locate sections, several times faster.
    """
    # The parse makes many small objects and no reference cycles: the cyclic collector
    # only costs time here (about a third of it for 100k tasks).
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _parse(text, table, shallow)
    finally:
        if enabled:
            gc.enable()


def _parse(text: str, table: StatusTable, shallow: bool) -> TodoDocument:
    lines = split_lines(text)
    start = _front_matter_end(lines)
    sections: list[_Section] = []
    stack: list[tuple[int, _Section | None]] = []  # open headings: (level, numbered section)
    fence: str | None = None
    for index in range(start, len(lines)):
        line = lines[index]
        stripped = line.lstrip(" \t")
        first = stripped[:1]
        if fence is not None:
            if first in "`~" and stripped.startswith(fence):
                rest = stripped.rstrip("\r\n").strip()
                if rest.strip(fence[0]) == "" and len(rest) >= len(fence):
                    fence = None
            continue
        if not first:
            continue
        if first in "`~":
            match = _FENCE.match(line)
            if match is not None and not (match[1][0] == "`" and "`" in match[2]):
                fence = match[1]
            continue
        if first == "#" or (index == 0 and stripped.startswith("\ufeff#")):
            match = _HEADING.match(line.lstrip("\ufeff") if index == 0 else line)
            if match is None:
                continue
            level = len(match[1])
            while stack and stack[-1][0] >= level:
                _, closed = stack.pop()
                if closed is not None:
                    closed.end = index
            title_match = _TASK_TITLE.match(_heading_title(match[2]))
            section = None
            if title_match and 2 <= level <= 4:
                section = _Section(
                    level=level,
                    number=int(title_match[1] or title_match[3]),
                    title=(title_match[2] or "").strip(),
                    heading=index,
                    end=len(lines),
                )
                sections.append(section)
            stack.append((level, section))
            continue
        if first in "*-+" and stack:
            owner = next((s for _, s in reversed(stack) if s is not None), None)
            if owner is not None and (not shallow or "status" in line[:80].lower()):
                field = _parse_field(line, index)
                if field is not None:
                    owner.add(field)
    tasks = [t for t in (s.to_task(table, shallow) for s in sections) if t is not None]
    return TodoDocument(lines=tuple(lines), tasks=tuple(tasks))
