"""Hypothesis strategies and TODO.md builders shared by the tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hypothesis import strategies as st

OPEN_STATUSES = ("[NOT STARTED]", "Not Started", "[IN PROGRESS]", "[BLOCKED]", "[PLANNED]")
DONE_STATUSES = ("[COMPLETED]", "[COMPLETE] ✅", "Done", "✅ shipped")
CLOSED_STATUSES = ("[ABANDONED]", "[SUPERSEDED]", "Cancelled")


@dataclass(frozen=True)
class TaskSpec:
    """One task to render into a TODO.md text."""

    number: int
    status: str = "[NOT STARTED]"
    deps: str = "None"
    effort: str | None = None
    title: str | None = None
    body: str = ""


def render_todo(
    tasks: Sequence[TaskSpec],
    *,
    list_items: bool = True,
    eol: str = "\n",
    level: int = 3,
) -> str:
    """A TODO.md text holding ``tasks``, fields as ``- **Name**:`` or bare ``**Name**:`` lines."""
    bullet = "- " if list_items else ""
    out = ["# TODO", "", "## High Priority", ""]
    for task in tasks:
        out.append(f"{'#' * level} {task.number}. {task.title or f'Task number {task.number}'}")
        if task.effort is not None:
            out.append(f"{bullet}**Effort**: {task.effort}")
        out.append(f"{bullet}**Status**: {task.status}")
        out.append(f"{bullet}**Dependencies**: {task.deps}")
        if task.body:
            out.extend(["", task.body])
        out.append("")
    return eol.join(out) + eol


# --- selections -----------------------------------------------------------------------------

_SEPARATORS = st.sampled_from([",", ", ", " ", "  ", "\t", " , ", ",\n", "\n", ",,", " ,\t"])


@st.composite
def selection_renderings(draw: st.DrawFn) -> tuple[str, set[int]]:
    """A selection text with random separators, ``#`` prefixes and ranges, and its number set."""
    items = draw(
        st.lists(
            st.tuples(st.integers(1, 5000), st.integers(0, 12), st.booleans()),
            min_size=1,
            max_size=20,
        )
    )
    model: set[int] = set()
    parts: list[str] = []
    for start, width, hashed in items:
        end = start + width
        model.update(range(start, end + 1))
        prefix = "#" if hashed else ""
        text = (
            f"{prefix}{start}" if width == 0 and draw(st.booleans()) else f"{prefix}{start}-{end}"
        )
        parts.append(text)
    rendered = parts[0]
    for part in parts[1:]:
        rendered += draw(_SEPARATORS) + part
    if draw(st.booleans()):
        rendered += ","
    rendered = draw(st.sampled_from(["", " ", "\t"])) + rendered + draw(st.sampled_from(["", " "]))
    return rendered, model


# --- dependency graphs ------------------------------------------------------------------------


@dataclass(frozen=True)
class Graph:
    """A random task graph: number -> (state, dependencies), rendered as a TODO.md text."""

    states: dict[int, str]
    deps: dict[int, tuple[int, ...]]
    text: str


_DEP_STYLES = ("bare", "task", "tasks", "hash")


def render_deps(numbers: Sequence[int], style: str) -> str:
    """A Dependencies value naming ``numbers`` in one of the spellings seen in real files."""
    if not numbers:
        return "None"
    if style == "bare":
        return ", ".join(map(str, numbers))
    if style == "task":
        return ", ".join(f"Task {n}" for n in numbers)
    if style == "tasks":
        return "Tasks " + ", ".join(map(str, numbers))
    return ", ".join(f"#{n}" for n in numbers)


@st.composite
def task_graphs(draw: st.DrawFn, max_tasks: int = 25) -> Graph:
    """A random DAG of tasks (numbers not in dependency order) with mixed states and styles."""
    numbers = draw(st.lists(st.integers(1, 999), min_size=1, max_size=max_tasks, unique=True))
    states: dict[int, str] = {}
    deps: dict[int, tuple[int, ...]] = {}
    specs: list[TaskSpec] = []
    for index, number in enumerate(numbers):
        earlier = numbers[:index]
        chosen = (
            draw(st.lists(st.sampled_from(earlier), max_size=4, unique=True)) if earlier else []
        )
        state = draw(st.sampled_from(["open", "open", "open", "done", "closed"]))
        status = draw(
            st.sampled_from(
                {"open": OPEN_STATUSES, "done": DONE_STATUSES, "closed": CLOSED_STATUSES}[state]
            )
        )
        states[number] = state
        deps[number] = tuple(chosen)
        style = draw(st.sampled_from(_DEP_STYLES))
        body = draw(st.sampled_from(["", "Some description.", "```\n### 1. not a task\n```"]))
        specs.append(TaskSpec(number, status, render_deps(chosen, style), body=body))
    specs = draw(st.permutations(specs))
    text = render_todo(
        specs,
        list_items=draw(st.booleans()),
        eol=draw(st.sampled_from(["\n", "\r\n"])),
        level=draw(st.integers(2, 4)),
    )
    return Graph(states=states, deps=deps, text=text)


# --- arbitrary text ---------------------------------------------------------------------------

_MARKDOWNISH = st.sampled_from(
    [
        "---",
        "...",
        "```",
        "~~~",
        "   ```python",
        "````",
        "# TODO",
        "## 1. Task",
        "### 12. Another task",
        "#### 3.",
        "##### 4. too deep",
        "### Category",
        " ## Low Priority",
        "**Status**: [NOT STARTED]",
        "- **Status**: [COMPLETED] ✅",
        "**Status:** Done",
        "**Status**:",
        "- **Dependencies**: Tasks 1-3",
        "**Dependencies**: Task #7 (note",
        "**Effort**: 2-3 hours",
        "**Effort**: 99999999999999999999 hours",
        "**Dependencies**: Tasks 1-99999999, 0",
        "\ufeff---",
        "* **",
        "- ** **: x",
        "\t- **Status**: open",
        "",
        " ",
    ]
)

text_without_nul = st.text(st.characters(codec="utf-8", exclude_characters="\x00"))

markdownish_lines = st.lists(st.one_of(_MARKDOWNISH, text_without_nul), max_size=30)
line_endings = st.sampled_from(["\n", "\r\n", "\r", ""])


@st.composite
def markdownish_texts(draw: st.DrawFn) -> str:
    """Markdown-like documents mixing headings, fields, fences and random unicode lines."""
    lines = draw(markdownish_lines)
    return "".join(line + draw(line_endings) for line in lines)
