"""A plan's dependency graph as a picture: Mermaid ``flowchart`` text and Graphviz ``dot``.

Pure functions, no I/O. Nodes are the tasks that run (coloured by wave) and the blocked tasks
(a class of their own); an edge ``dep -> task`` is drawn for each dependency between two nodes
(in Mermaid, the picture on a PR page, not one that another path implies).
A finished (or running) run is drawn the same way from its JSON summary, coloured by outcome.
Titles come from TODO.md, so they are untrusted: control and format characters are dropped,
whitespace runs become one space, long titles are cut, and what is left is escaped for each
language (Mermaid: a quoted ``["..."]`` label where every character outside a small safe set is
a ``#N;`` / ``#quot;`` entity; dot: a double-quoted string with ``\\``, ``\\"`` and ``&amp;``).

Sources: Mermaid flowchart syntax (https://mermaid.js.org/syntax/flowchart.html, "Entity codes
to escape characters", "Classes"); Graphviz DOT language (https://graphviz.org/doc/info/lang.html,
quoted strings) and escString (https://graphviz.org/docs/attr-types/escString/).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

from batchaction.planner import Plan

MAX_MERMAID_NODES = 60  # past this a Mermaid graph is unreadable (and slow) on a PR page
TITLE_LIMIT = 60  # characters of a title kept in a node label, before escaping

# Fill / stroke per wave, cycled; blocked tasks are grey and dashed.
_PALETTE = (
    ("#dbeafe", "#1d4ed8"),
    ("#dcfce7", "#15803d"),
    ("#fef9c3", "#a16207"),
    ("#fce7f3", "#be185d"),
    ("#ede9fe", "#6d28d9"),
    ("#ffedd5", "#c2410c"),
    ("#cffafe", "#0e7490"),
)
_BLOCKED = ("#eeeeee", "#6b7280")
_BLOCKED_STYLE = "fill:#eeeeee,stroke:#6b7280,color:#374151,stroke-dasharray:4 3"
# Characters a Mermaid label may hold as they are; anything else becomes an entity.
_MERMAID_SAFE = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,-_/()'?!+"
)
_SPACES = re.compile(r"\s+")
# The graph's own Mermaid directive (the first line; no title can add one): labels wrap at
# 130 px and nodes sit closer than Mermaid's defaults (200, 50, 50, 15), so that a row of
# seven tasks fits a PR page's width at a readable size instead of being scaled down to
# half. Mermaid configuration: https://mermaid.js.org/config/schema-docs/config.html
MERMAID_INIT = (
    '%%{init: {"flowchart": {"wrappingWidth": 130, "nodeSpacing": 20, "rankSpacing": 40, '
    '"padding": 10}}}%%'
)


def clean_title(title: str, limit: int = TITLE_LIMIT) -> str:
    """``title`` on one line: whitespace runs (newlines included) become one space, control,
    format, surrogate, private-use and unassigned characters (Unicode category ``C*``, bidi
    overrides and zero-width characters among them) are dropped, and a title longer than
    ``limit`` characters is cut to ``limit - 1`` plus ``…``."""
    kept = "".join(
        " " if ch.isspace() else ch
        for ch in title
        if ch.isspace() or not unicodedata.category(ch).startswith("C")
    )
    text = _SPACES.sub(" ", kept).strip()
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def node_label(number: int, title: str) -> str:
    """``63 Title`` (just ``63`` for an empty title), cleaned by ``clean_title``."""
    text = clean_title(title)
    return f"{number} {text}" if text else str(number)


def mermaid_escape(text: str) -> str:
    """``text`` for inside a Mermaid ``"..."`` label: ``"`` is ``#quot;``; every character
    outside ASCII letters, digits, space and ``.,-_/()'?!+`` (and non-ASCII letters or digits)
    is ``#<decimal code point>;``. So no ``"``, ``]``, ``|``, ``%``, ``:``, ``;``, ``<``,
    backtick or newline of the title survives to end the label or start a directive."""
    out: list[str] = []
    for ch in text:
        if ch in _MERMAID_SAFE or (ord(ch) > 127 and ch.isalnum()):
            out.append(ch)
        elif ch == '"':
            out.append("#quot;")
        else:
            out.append(f"#{ord(ch)};")
    return "".join(out)


def dot_escape(text: str) -> str:
    """``text`` for inside a dot double-quoted string used as a label: ``\\`` is doubled (no
    ``\\N``/``\\l`` escString escapes), ``"`` is ``\\"``, ``&`` is ``&amp;`` (no entities);
    ``text`` must already be on one line (``clean_title``)."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("&", "&amp;")


def graph_nodes(plan: Plan) -> list[int]:
    """The task numbers drawn: the run's tasks in wave order, then the blocked tasks."""
    return [*plan.run, *(b.number for b in plan.blocked)]


def graph_edges(plan: Plan) -> list[tuple[int, int]]:
    """``(dependency, task)`` pairs between drawn tasks, sorted: the run's edges
    (``Plan.edges``) plus each blocked task's dependencies that are drawn."""
    drawn = set(graph_nodes(plan))
    pairs = {(dep, task) for task, deps in plan.edges.items() for dep in deps}
    for blocked in plan.blocked:
        task = plan.tasks.get(blocked.number)
        deps = task.dependencies if task is not None else blocked.blocked_by
        pairs.update((dep, blocked.number) for dep in deps if dep in drawn)
    return sorted(pairs, key=lambda pair: (pair[1], pair[0]))


def drawn_edges(pairs: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """The ``(dependency, task)`` pairs a picture draws, sorted by task then dependency: each
    pair but those another path already implies (with 72 -> 73 -> 74, the pair 72 -> 74 is
    left out; the order it says stays visible). For an acyclic graph this is its transitive
    reduction; with a cycle, what reaches what is still kept (a pair goes only while its
    ends stay connected without it)."""
    children: dict[int, set[int]] = {}
    for dep, task in pairs:
        if dep != task:
            children.setdefault(dep, set()).add(task)

    def reaches(start: int, goal: int) -> bool:
        seen, todo = {start}, [start]
        while todo:
            for child in children.get(todo.pop(), ()):
                if child == goal:
                    return True
                if child not in seen:
                    seen.add(child)
                    todo.append(child)
        return False

    for dep, task in sorted((d, t) for d, ts in children.items() for t in ts):
        children[dep].discard(task)
        if not reaches(dep, task):
            children[dep].add(task)
    return sorted(
        ((dep, task) for dep, tasks in children.items() for task in tasks),
        key=lambda pair: (pair[1], pair[0]),
    )


def mermaid_edges(pairs: Iterable[tuple[int, int]], waves: Mapping[int, int]) -> list[str]:
    """Mermaid lines for the ``drawn_edges`` of ``pairs``: ``    t63 --> t64``, with one more
    ``-`` per wave skipped (``    t63 ----> t66`` from wave 1 to 3: the link's minimum length
    in ranks). Without it Mermaid's layout pulls a task that waits on nothing down next to
    its first dependent, and the rows no longer read as waves. ``waves``: task -> wave, 0 or
    absent when it has none (a blocked task): such a link has length 1."""
    lines = []
    for dep, task in drawn_edges(pairs):
        start, end = waves.get(dep) or 0, waves.get(task) or 0
        length = end - start if start > 0 and end > start else 1
        lines.append(f"    t{dep} -{'-' * length}> t{task}")
    return lines


def _title(plan: Plan, number: int) -> str:
    task = plan.tasks.get(number)
    return task.title if task is not None else ""


def _colour(index: int) -> tuple[str, str]:
    return _PALETTE[(index - 1) % len(_PALETTE)]


def too_large_note(count: int, limit: int = MAX_MERMAID_NODES) -> str | None:
    """The note shown instead of a Mermaid graph of ``count`` nodes when there are more than
    ``limit``, else None: ``The dependency graph (75 tasks) is left out: more than 60 tasks.``"""
    if count <= limit:
        return None
    return f"The dependency graph ({count} tasks) is left out: more than {limit} tasks."


def mermaid_too_large(plan: Plan, limit: int = MAX_MERMAID_NODES) -> str | None:
    """``too_large_note`` for the plan's graph (its run and blocked tasks)."""
    return too_large_note(len(graph_nodes(plan)), limit)


def plan_mermaid(plan: Plan, limit: int = MAX_MERMAID_NODES) -> str | None:
    """Mermaid ``flowchart TD`` text of the plan (lines joined by newlines, a final newline),
    or None when more than ``limit`` tasks would be drawn (``mermaid_too_large`` gives the note).

    Lines: ``MERMAID_INIT``, ``flowchart TD``; ``    t63["63 Title"]`` per node;
    ``    t63 --> t64`` per edge (``mermaid_edges``: none another path implies, longer across
    waves);
    ``    classDef waveN ...`` / ``    classDef blocked ...`` and ``    class t63,t88 waveN``
    per wave and for the blocked tasks. No subgraphs (Mermaid ignores the direction inside them).
    """
    if mermaid_too_large(plan, limit) is not None:
        return None
    lines = [MERMAID_INIT, "flowchart TD"]
    for number in graph_nodes(plan):
        label = mermaid_escape(node_label(number, _title(plan, number)))
        lines.append(f'    t{number}["{label}"]')
    waves = {number: plan.wave_of(number) for number in graph_nodes(plan)}
    lines.extend(mermaid_edges(graph_edges(plan), waves))
    for index, wave in enumerate(plan.waves, start=1):
        fill, stroke = _colour(index)
        lines.append(f"    classDef wave{index} fill:{fill},stroke:{stroke},color:#111111")
        lines.append(f"    class {','.join(f't{n}' for n in wave)} wave{index}")
    if plan.blocked:
        lines.append(f"    classDef blocked {_BLOCKED_STYLE}")
        lines.append(f"    class {','.join(f't{b.number}' for b in plan.blocked)} blocked")
    return "\n".join(lines) + "\n"


# Per outcome of a run's task (the summary's ``outcome``): the Mermaid class, its style, and
# the legend's colour and words. Failed and timed out are red, blocked grey and dashed as in
# the plan's graph; "running" is for a summary of a run still going.
_RED = "fill:#fee2e2,stroke:#b91c1c,color:#111111,stroke-width:2px"
_AMBER = "fill:#fef3c7,stroke:#b45309,color:#111111"
_GREY = "fill:#f3f4f6,stroke:#9ca3af,color:#374151"
_OUTCOME_CLASSES: dict[str, tuple[str, str, str, str]] = {
    "completed": ("completed", "fill:#dcfce7,stroke:#15803d,color:#111111", "green", "completed"),
    "failed": ("failed", _RED, "red", "failed"),
    "timed-out": ("timedout", _RED, "red", "timed out"),
    "in-progress": ("inprogress", _AMBER, "amber", "in progress"),
    "running": ("running", f"{_AMBER},stroke-width:2px", "amber", "running"),
    "pending": ("pending", "fill:#ffffff,stroke:#6b7280,color:#111111", "white", "not started"),
    "blocked": ("blocked", f"{_BLOCKED_STYLE}", "grey dashed", "blocked"),
    "cancelled": ("cancelled", _GREY, "grey", "cancelled"),
    "skipped": ("skipped", _GREY, "grey", "skipped"),
}


def _outcome_key(outcome: object) -> str:
    """The ``_OUTCOME_CLASSES`` key for an outcome; an unknown one counts as not started."""
    return outcome if isinstance(outcome, str) and outcome in _OUTCOME_CLASSES else "pending"


def _summary_tasks(summary: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The summary's tasks, the first record of each number."""
    seen: set[int] = set()
    tasks = []
    for task in summary.get("tasks") or ():
        if int(task["number"]) not in seen:
            seen.add(int(task["number"]))
            tasks.append(task)
    return tasks


def summary_mermaid(summary: Mapping[str, Any], limit: int = MAX_MERMAID_NODES) -> str | None:
    """Mermaid ``flowchart TD`` text of a run (a JSON summary, ``summary.build_summary``),
    after the ``MERMAID_INIT`` line: a node per task (``    t63["63 Title"]``, in the
    summary's order); an edge per entry of each task's ``dependencies`` that is itself a task
    of the run (``mermaid_edges``: none that another path implies, longer across waves, so
    rows are waves); a class per outcome (``    classDef failed ...`` and ``    class t3,t4
    failed``: completed green, failed and timed-out red, in-progress and running amber,
    pending white, blocked grey and dashed, cancelled and skipped grey). Lines joined by
    newlines, a final newline, no subgraphs.

    None when there is no task, more than ``limit`` (``too_large_note`` gives the note), or
    a task without ``dependencies`` (a summary written before they were recorded)."""
    tasks = _summary_tasks(summary)
    if not tasks or len(tasks) > limit or any("dependencies" not in t for t in tasks):
        return None
    drawn = {int(task["number"]) for task in tasks}
    lines = [MERMAID_INIT, "flowchart TD"]
    members: dict[str, list[int]] = {}
    for task in tasks:
        number = int(task["number"])
        lines.append(f'    t{number}["{mermaid_escape(node_label(number, task["title"]))}"]')
        members.setdefault(_outcome_key(task["outcome"]), []).append(number)
    pairs = {
        (int(dep), int(task["number"]))
        for task in tasks
        for dep in task["dependencies"]
        if int(dep) in drawn and int(dep) != int(task["number"])
    }
    waves = {int(task["number"]): int(task.get("wave") or 0) for task in tasks}
    lines.extend(mermaid_edges(pairs, waves))
    for key, (name, style, _, _) in _OUTCOME_CLASSES.items():
        if key in members:
            lines.append(f"    classDef {name} {style}")
            lines.append(f"    class {','.join(f't{n}' for n in members[key])} {name}")
    return "\n".join(lines) + "\n"


def summary_legend(summary: Mapping[str, Any]) -> str:
    """What the colours of ``summary_mermaid`` mean, for the outcomes the run has, in the
    table's order of outcomes: ``green completed, red failed or timed out, grey dashed
    blocked``."""
    present = {_outcome_key(task["outcome"]) for task in _summary_tasks(summary)}
    groups: dict[str, list[str]] = {}
    for key, (_, _, colour, words) in _OUTCOME_CLASSES.items():
        if key in present:
            groups.setdefault(colour, []).append(words)
    return ", ".join(f"{colour} {' or '.join(words)}" for colour, words in groups.items())


def plan_dot(plan: Plan) -> str:
    """Graphviz ``digraph plan`` text of the plan, any size (final newline included).

    Lines: the header, ``rankdir``/``node`` defaults, ``  t63 [label="63 Title",
    fillcolor="#..."];`` per node (blocked ones also ``style="rounded,filled,dashed"``),
    ``  {rank=same; t63; t88;}`` per wave, ``  t63 -> t64;`` per edge, ``}``.
    """
    lines = [
        "digraph plan {",
        "  rankdir=TB;",
        '  node [shape=box, style="rounded,filled", fontname="sans-serif"];',
    ]
    for index, wave in enumerate(plan.waves, start=1):
        fill, stroke = _colour(index)
        for number in wave:
            label = dot_escape(node_label(number, _title(plan, number)))
            lines.append(f'  t{number} [label="{label}", fillcolor="{fill}", color="{stroke}"];')
    fill, stroke = _BLOCKED
    for blocked in plan.blocked:
        label = dot_escape(node_label(blocked.number, _title(plan, blocked.number)))
        lines.append(
            f'  t{blocked.number} [label="{label}", fillcolor="{fill}", color="{stroke}", '
            'style="rounded,filled,dashed"];'
        )
    for wave in plan.waves:
        lines.append("  {rank=same; " + " ".join(f"t{n};" for n in wave) + "}")
    lines.extend(f"  t{dep} -> t{task};" for dep, task in graph_edges(plan))
    lines.append("}")
    return "\n".join(lines) + "\n"
