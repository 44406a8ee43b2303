"""A plan's dependency graph as a picture: Mermaid ``flowchart`` text and Graphviz ``dot``.

Pure functions, no I/O. Nodes are the tasks that run (coloured by wave) and the blocked tasks
(a class of their own); an edge ``dep -> task`` is drawn for each dependency between two nodes.
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
# Characters a Mermaid label may hold as they are; anything else becomes an entity.
_MERMAID_SAFE = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,-_/()'?!+"
)
_SPACES = re.compile(r"\s+")


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


def _title(plan: Plan, number: int) -> str:
    task = plan.tasks.get(number)
    return task.title if task is not None else ""


def _colour(index: int) -> tuple[str, str]:
    return _PALETTE[(index - 1) % len(_PALETTE)]


def mermaid_too_large(plan: Plan, limit: int = MAX_MERMAID_NODES) -> str | None:
    """The note shown instead of the Mermaid graph when it has more than ``limit`` nodes,
    else None: ``The dependency graph (75 tasks) is left out: more than 60 tasks.``"""
    count = len(graph_nodes(plan))
    if count <= limit:
        return None
    return f"The dependency graph ({count} tasks) is left out: more than {limit} tasks."


def plan_mermaid(plan: Plan, limit: int = MAX_MERMAID_NODES) -> str | None:
    """Mermaid ``flowchart TD`` text of the plan (lines joined by newlines, a final newline),
    or None when more than ``limit`` tasks would be drawn (``mermaid_too_large`` gives the note).

    Lines: ``flowchart TD``; ``    t63["63 Title"]`` per node; ``    t63 --> t64`` per edge;
    ``    classDef waveN ...`` / ``    classDef blocked ...`` and ``    class t63,t88 waveN``
    per wave and for the blocked tasks. No subgraphs (Mermaid ignores the direction inside them).
    """
    if mermaid_too_large(plan, limit) is not None:
        return None
    lines = ["flowchart TD"]
    for number in graph_nodes(plan):
        label = mermaid_escape(node_label(number, _title(plan, number)))
        lines.append(f'    t{number}["{label}"]')
    lines.extend(f"    t{dep} --> t{task}" for dep, task in graph_edges(plan))
    for index, wave in enumerate(plan.waves, start=1):
        fill, stroke = _colour(index)
        lines.append(f"    classDef wave{index} fill:{fill},stroke:{stroke},color:#111111")
        lines.append(f"    class {','.join(f't{n}' for n in wave)} wave{index}")
    if plan.blocked:
        fill, stroke = _BLOCKED
        lines.append(
            f"    classDef blocked fill:{fill},stroke:{stroke},color:#374151,stroke-dasharray:4 3"
        )
        lines.append(f"    class {','.join(f't{b.number}' for b in plan.blocked)} blocked")
    return "\n".join(lines) + "\n"


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
