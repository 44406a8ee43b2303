"""A plan as Markdown for a pull request comment: the reply to ``/task plan``.

Pure rendering, no I/O. Everything read from TODO.md (titles, statuses quoted in reasons and
warnings) is untrusted: it is cut to one line and made inert (``inert.inert``: no mention,
reference, link, image or HTML survives); the graph is ``graphview.plan_mermaid``'s, whose
labels are escaped for Mermaid.
"""

from __future__ import annotations

from batchaction.graphview import clean_title, mermaid_too_large, plan_mermaid
from batchaction.inert import inert
from batchaction.planner import Plan
from batchaction.selection import format_selection

TITLE_LIMIT = 120  # characters of a title shown, before escaping
MAX_WARNINGS = 30  # warnings listed; the rest are counted

_SKIP_WORDS = {
    "not-found": "not found",
    "not-a-task": "not a task",
    "already-done": "already done",
    "closed": "closed",
}


def _text(value: str) -> str:
    """Untrusted text on one line, inert."""
    return inert(" ".join(value.split()))


def code(value: str) -> str:
    """``value`` as an inline code span when it can be one (printable, no backtick), where
    nothing is a link or a mention; else inert text."""
    if value and value.isprintable() and "`" not in value:
        return f"`{value}`"
    return _text(value)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _task(plan: Plan, number: int) -> str:
    task = plan.tasks.get(number)
    title = clean_title(task.title, TITLE_LIMIT) if task is not None else ""
    return f"**{number}** {inert(title)}".rstrip()


def headline(plan: Plan, todo_rel: str, sha: str | None) -> str:
    """``**Plan for 63-67** from `TODO.md` on `1a2b3c4d5e6f`: 4 tasks to run in 2 waves,
    1 blocked, 1 skipped.``"""
    where = f" on `{sha[:12]}`" if sha else ""
    parts = [
        f"{_plural(len(plan.run), 'task')} to run in {_plural(len(plan.waves), 'wave')}"
        if plan.waves
        else "nothing to run"
    ]
    if plan.blocked:
        parts.append(f"{len(plan.blocked)} blocked")
    if plan.skipped:
        parts.append(f"{len(plan.skipped)} skipped")
    return (
        f"**Plan for {format_selection(plan.selection)}** from {code(todo_rel)}{where}: "
        + ", ".join(parts)
        + "."
    )


def _waves(plan: Plan) -> list[str]:
    lines: list[str] = []
    for index, wave in enumerate(plan.waves, start=1):
        lines += ["", f"**Wave {index}**", ""]
        for number in wave:
            deps = plan.edges.get(number, ())
            after = f" (after {', '.join(map(str, deps))})" if deps else ""
            pulled = " · dependency pulled in" if number in plan.pulled_in else ""
            lines.append(f"- {_task(plan, number)}{after}{pulled}")
    return lines


def _others(plan: Plan) -> list[str]:
    lines: list[str] = []
    if plan.skipped:
        lines += ["", "**Skipped**", ""]
        lines += [
            f"- **{s.number}**: {_SKIP_WORDS.get(s.reason, _text(s.reason))} ({_text(s.detail)})"
            for s in plan.skipped
        ]
    if plan.blocked:
        lines += ["", "**Blocked**", ""]
        lines += [f"- {_task(plan, b.number)}: {_text(b.reason)}" for b in plan.blocked]
    if plan.warnings:
        lines += ["", "**Warnings**", ""]
        lines += [f"- {_text(w)}" for w in plan.warnings[:MAX_WARNINGS]]
        if len(plan.warnings) > MAX_WARNINGS:
            lines.append(f"- … and {len(plan.warnings) - MAX_WARNINGS} more (in the run's log)")
    return lines


def graph(plan: Plan) -> list[str]:
    """The dependency graph as a fenced ``mermaid`` block (lines), the note that it is left
    out past ``graphview.MAX_MERMAID_NODES`` tasks, or nothing when no task is drawn."""
    if not plan.run and not plan.blocked:
        return []
    text = plan_mermaid(plan)
    if text is None:
        return [f"_{mermaid_too_large(plan)}_"]
    return ["```mermaid", *text.rstrip("\n").split("\n"), "```"]


def plan_markdown(plan: Plan, todo_rel: str, command: str, sha: str | None) -> str:
    """The plan as Markdown (lines joined by newlines, a final newline).

    In order: the headline (``headline``: selection, TODO file ``todo_rel``, the commit
    ``sha`` it was read from when not None); the waves (``- **63** Title (after 62)``); the
    skipped tasks, the blocked tasks with their reasons and the planning warnings (at most
    ``MAX_WARNINGS``); the dependency graph (``graph``); then ``To run it, comment `/task
    63-67`.`` with ``command`` as given (the caller's own text, e.g. the command word and
    ``format_selection(plan.selection)``), left out when ``command`` is empty or nothing
    would run.
    """
    lines = [headline(plan, todo_rel, sha)]
    lines += _waves(plan)
    lines += _others(plan)
    drawn = graph(plan)
    if drawn:
        lines += ["", "**Dependency graph**", "", *drawn]
    if command and plan.waves:
        lines += ["", f"To run it, comment {code(command)}."]
    return "\n".join(lines) + "\n"
