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

from batchaction.depfields import DEFAULT_FIELDS, DependencyFields, normalize
from batchaction.deps import parse_dependencies, parse_effort
from batchaction.markdown import (
    front_matter_end,
    heading_title,
    indent_of,
    inline_comment_end,
    opens_comment,
)
from batchaction.status import DEFAULT_TABLE, State, StatusTable, classify
from batchaction.textlines import split_lines

# The title is greedy (a lazy one before ``[ \t#]*`` backtracks quadratically on long lines of
# spaces and ``#``); the closing sequence is trimmed by ``_heading_title``.
_HEADING = re.compile(r" {0,3}(#{1,6})(?:[ \t]+(.*))?[ \t#]*\r?\n?$")
# Task numbers have at most 18 digits: longer runs are text, not numbers (and int() of a
# 5000-digit string raises).
_TASK_TITLE = re.compile(r"([0-9]{1,18})\.[ \t]+(.*)$|([0-9]{1,18})\.?$")
_FIELD = re.compile(
    r"(?P<indent>[ \t]*)(?P<bullet>[-*+][ \t]+)?(?P<marker>\*\*|__)(?P<name>[^*\n]+?)(?P=marker)"
    r"(?P<sep>\\?:)?[ \t]*+(?P<value>[^\r\n]*+)(?P<eol>\r?\n)?$"
)  # the value is greedy (a lazy one costs a backtracking step per character); strip it after
_FENCE = re.compile(r"[ \t]*(`{3,}|~{3,})(.*)")
# A line that reads like a field but is not one (``*Status**:``, ``Dependencies:``).
_FIELD_LIKE = re.compile(
    r"[ \t]*+(?:(?:[-*+]|[0-9]{1,9}[.)])[ \t]++)?[*_]{0,3}[ \t]*+"
    r"(?P<name>[A-Za-z][A-Za-z \t_-]{0,30}?)[ \t]*+(?:[*_]{0,3}[ \t]*+:|\*\*[ \t]++\S)"
)
# A list item, bulleted or ordered; the text is greedy (a lazy one before trailing blanks is
# quadratic on a long run of blanks) and stripped after the match.
_LIST_ITEM = re.compile(r"([ \t]*+)(?:[-*+]|[0-9]{1,9}[.)])[ \t]++([^\r\n]*+)")
_SUBTASK_TITLE = re.compile(r"[0-9]{1,18}\.[0-9]+\b")  # "#### 5.1 Sub-step": not a task


class Field(NamedTuple):
    """One ``**Name**: value`` line, with enough of its shape to write a sibling line."""

    key: str  # lower-cased name: "status", "dependencies"
    name: str  # as written: "Status"
    value: str
    line: int  # 0-based index into TodoDocument.lines
    indent: str
    bullet: str  # "- " or ""
    colon_inside: bool  # "**Status:** x" rather than "**Status**: x"
    marker: str = "**"  # or "__", which GitHub renders the same

    def render(self, name: str, value: str, eol: str) -> str:
        """A new field line in this field's own style."""
        m = self.marker
        label = f"{m}{name}:{m}" if self.colon_inside else f"{m}{name}{m}:"
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
    # Forward references from every dependency field, then the tasks whose reverse fields
    # (``Blocks: N``) name this one; no duplicates.
    dependencies: tuple[int, ...]
    # (0-based line, message) for each fragment of a dependency field that was not read as
    # written: free text, other trackers' references, sub-tasks, bad ranges.
    dependency_warnings: tuple[tuple[int, str], ...]
    effort_hours: float | None
    dependency_line: int | None = None  # 0-based line of the first dependency field
    blocks: tuple[int, ...] = ()  # numbers named by this task's reverse fields, as written

    def field(self, key: str) -> Field | None:
        for field in self.fields:
            if field.key == key:
                return field
        return None

    @property
    def dependency_warning(self) -> str | None:
        """All dependency warnings in one line, or None."""
        return "; ".join(m for _, m in self.dependency_warnings) or None


class Heading(NamedTuple):
    """A numbered heading whose section has no Status field: not a task."""

    number: int
    line: int  # 0-based
    text: str  # the heading line without its line ending
    end_line: int  # exclusive, as Task.end_line


class TodoDocument(NamedTuple):
    lines: tuple[str, ...]
    tasks: tuple[Task, ...]
    headings: tuple[Heading, ...] = ()  # numbered headings that are not tasks
    # (0-based line, field name) under a numbered heading for lines that read like a Status or
    # dependency field but are not one (``*Status**:``, ``Dependencies: 5`` without bold):
    # they hide a task or a dependency.
    broken_fields: tuple[tuple[int, str], ...] = ()

    @property
    def text(self) -> str:
        return "".join(self.lines)


def _parse_field(line: str, index: int) -> Field | None:
    stripped = line.lstrip(" \t")
    if not stripped.startswith(("**", "__", "- **", "* **", "+ **")) and not re.match(
        r"[-*+][ \t]+(?:\*\*|__)", stripped
    ):
        return None
    match = _FIELD.match(line)
    if match is None:
        return None
    name = match["name"]
    colon_inside = name.endswith(":")  # also "\:", an escaped colon GitHub shows as ":"
    if colon_inside:
        if match["sep"]:
            return None
        name = name[:-1].rstrip().removesuffix("\\").rstrip()
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
        marker=match["marker"],
    )


@dataclass(slots=True)
class _Section:
    level: int
    number: int
    title: str
    heading: int
    end: int
    fields: list[Field] = dataclass_field(default_factory=list)
    repeated: list[Field] = dataclass_field(default_factory=list)
    keys: set[str] = dataclass_field(default_factory=set)
    # The plain list items indented under a field with an empty value, by the field's line.
    items: dict[int, list[tuple[int, str]]] | None = None
    open_list: Field | None = None  # the empty field whose indented items are being read

    def add(self, field: Field) -> None:
        if field.key in self.keys:
            self.repeated.append(field)
        else:
            self.keys.add(field.key)
            self.fields.append(field)

    def list_line(self, line: str, index: int, field: Field | None) -> None:
        """Follow the list under an empty field: ``- **Dependencies**:`` or ``**Depends**:``
        followed by bulleted or numbered items, nested or at the field's own level (GitHub
        shows both as the field's list). A field at the field's level, or any other line,
        ends it."""
        target = self.open_list
        if field is not None and not field.value:
            self.open_list = field
            return
        if target is None:
            return
        item = _LIST_ITEM.match(line)
        depth = len(item[1].expandtabs(4)) if item is not None else -1
        if item is None or depth < len(target.indent.expandtabs(4)):
            self.open_list = None
        elif field is not None:
            if depth <= len(target.indent.expandtabs(4)):
                self.open_list = None  # a sibling field: the list is over
        else:
            if self.items is None:
                self.items = {}
            self.items.setdefault(target.line, []).append((index, item[2].rstrip(" \t")))

    def dependency_values(self, names: DependencyFields) -> list[tuple[Field, int, str, bool]]:
        """(field, line, value, is_reverse) for every dependency field, repeats included, and
        for each plain item under an empty one, in file order."""
        found: list[tuple[Field, int, str, bool]] = []
        for field in (*self.fields, *self.repeated):
            direction = names.direction(field.name)
            if direction is None:
                continue
            reverse = direction == "reverse"
            if field.value or self.items is None or field.line not in self.items:
                found.append((field, field.line, field.value, reverse))
            else:
                found.extend((field, line, text, reverse) for line, text in self.items[field.line])
        return sorted(found, key=lambda entry: entry[1]) if len(found) > 1 else found

    def to_task(self, table: StatusTable, shallow: bool, names: DependencyFields) -> Task | None:
        if "status" not in self.keys:
            return None
        status = next(f for f in self.fields if f.key == "status")
        if shallow:
            return Task(
                self.number, self.title, self.level, self.heading, self.end,
                tuple(self.fields), tuple(self.repeated), status.value, "open", (), (), None,
            )  # fmt: skip
        forward: list[int] = []
        reverse: list[int] = []
        warnings: list[tuple[int, str]] = []
        values = self.dependency_values(names)
        for field, line, value, is_reverse in values:
            deps = parse_dependencies(value)
            (reverse if is_reverse else forward).extend(deps.numbers)
            warnings.extend((line, f"{field.name}: {w}") for w in deps.warnings)
        effort = next((f for f in self.fields if f.key == "effort"), None)
        return Task(
            self.number,
            self.title,
            self.level,
            self.heading,
            self.end,
            tuple(self.fields),
            tuple(self.repeated),
            status.value,
            classify(status.value, table),
            tuple(dict.fromkeys(forward)) if len(forward) > 1 else tuple(forward),
            tuple(warnings),
            parse_effort(effort.value) if effort else None,
            values[0][0].line if values else None,
            tuple(dict.fromkeys(reverse)) if len(reverse) > 1 else tuple(reverse),
        )


def parse_todo(
    text: str,
    table: StatusTable = DEFAULT_TABLE,
    *,
    shallow: bool = False,
    dependency_fields: DependencyFields = DEFAULT_FIELDS,
) -> TodoDocument:
    """Parse TODO.md text (SPEC 3). Never raises on any text; problems surface through ``lint``.

    Lines in YAML front matter, fenced code blocks and HTML comments are never headings or
    fields (GitHub does not show them as such; CommonMark 0.31, sections 4.5 and 4.6). A
    comment opened inside a paragraph line hides the field lines after it, not headings.
    ``shallow`` finds the tasks and their Status fields only (no other fields, no state,
    dependencies or effort): what a writer needs to locate sections, several times faster.
    """
    # The parse makes many small objects and no reference cycles: the cyclic collector
    # only costs time here (about a third of it for 100k tasks).
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _parse(text, table, shallow, dependency_fields)
    finally:
        if enabled:
            gc.enable()


def _parse(text: str, table: StatusTable, shallow: bool, names: DependencyFields) -> TodoDocument:
    lines = split_lines(text)
    start = front_matter_end(lines)
    sections: list[_Section] = []
    stack: list[tuple[int, _Section | None]] = []  # open headings: (level, numbered section)
    fence: str | None = None
    fence_indent = 0
    fence_in_item = False  # the fence is inside a list item: it ends with the item
    last_item = False  # the last non-blank line was a list item
    broken: list[tuple[int, str]] = []
    comment = False  # inside an HTML block comment: nothing shows until ``-->``
    hidden_until = -1  # lines up to here are inside a paragraph's closed comment
    searched_to = -1  # no comment opened before this line closes (a search reached it)
    owner: _Section | None = None  # the innermost open numbered section: fields go there
    for index in range(start, len(lines)):
        line = lines[index]
        stripped = line.lstrip(" \t")
        first = stripped[:1]
        if fence is not None:
            blank = not stripped.strip()
            if fence_in_item and not blank and indent_of(line) < fence_indent:
                fence = None  # the list item holding the fence ended, and the fence with it
            else:
                if (
                    first in "`~"
                    and stripped.startswith(fence)
                    and (indent_of(line) <= fence_indent + 3)
                ):
                    rest = stripped.rstrip("\r\n").strip()
                    if rest.strip(fence[0]) == "" and len(rest) >= len(fence):
                        fence = None
                continue
        if comment:
            comment = "-->" not in line
            continue
        if not first or first in "\r\n":
            continue
        was_item, last_item = last_item, _LIST_ITEM.match(line) is not None
        if first == "<" and stripped.startswith("<!--"):
            comment = stripped.find("-->", 2) == -1  # ``<!-->`` is a whole comment
            continue
        if index <= hidden_until and first != "#":
            continue
        if "<!--" in line and index >= searched_to and opens_comment(line):
            end, searched_to = inline_comment_end(lines, index)
            if end is not None:
                hidden_until = end
        if first in "`~":
            match = _FENCE.match(line)
            if match is not None and not (match[1][0] == "`" and "`" in match[2]):
                fence = match[1]
                fence_indent = indent_of(line)
                fence_in_item = was_item and fence_indent > 0
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
            title_text = heading_title(match[2])
            title_match = _TASK_TITLE.match(title_text)
            section = None
            if title_match is None and 2 <= level <= 4 and _SUBTASK_TITLE.match(title_text):
                # A sub-step heading: its fields are its own, never its parent task's.
                section = _Section(level=level, number=-1, title="", heading=index, end=0)
            elif title_match and 2 <= level <= 4:
                section = _Section(
                    level=level,
                    number=int(title_match[1] or title_match[3]),
                    title=(title_match[2] or "").strip(),
                    heading=index,
                    end=len(lines),
                )
                sections.append(section)
            stack.append((level, section))
            owner = next((s for _, s in reversed(stack) if s is not None), None)
            continue
        if owner is None:
            continue
        field = None
        if first in "*-+_" and (not shallow or "status" in line[:80].lower()):
            field = _parse_field(line, index)
            if field is not None:
                owner.add(field)
            if not shallow and (owner.open_list is not None or (field and not field.value)):
                owner.list_line(line, index, field)
        elif owner.open_list is not None and not shallow:
            owner.list_line(line, index, None)  # a numbered item, or the end of the list
        if field is None and not shallow and (":" in line[:48] or "**" in line[:48]):
            like = _FIELD_LIKE.match(line)
            if like is not None:
                key = normalize(like["name"])
                if key == "status" or names.direction(key) is not None:
                    broken.append((index, " ".join(like["name"].split())))
    tasks: list[Task] = []
    headings: list[Heading] = []
    for section in sections:
        task = section.to_task(table, shallow, names)
        if task is not None:
            tasks.append(task)
        elif not shallow:
            text_line = lines[section.heading].rstrip("\r\n")
            headings.append(
                Heading(section.number, section.heading, text_line.strip(), section.end)
            )
    if not shallow:
        tasks = _add_reverse_edges(tasks)
    return TodoDocument(
        lines=tuple(lines),
        tasks=tuple(tasks),
        headings=tuple(headings),
        broken_fields=tuple(broken),
    )


def _add_reverse_edges(tasks: list[Task]) -> list[Task]:
    """``Blocks: N`` in task M makes M a dependency of N, when N is a task in the file."""
    extra: dict[int, list[int]] = {}
    numbers = {task.number for task in tasks}
    for task in tasks:
        for target in task.blocks:
            if target in numbers:
                extra.setdefault(target, []).append(task.number)
    if not extra:
        return tasks
    return [
        task._replace(dependencies=tuple(dict.fromkeys((*task.dependencies, *extra[task.number]))))
        if task.number in extra
        else task
        for task in tasks
    ]
