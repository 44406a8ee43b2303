"""Rendering a plan for people (text) and for programs (``plan --json``, SPEC 9)."""

from __future__ import annotations

from typing import Any

from batchaction.planner import Plan
from batchaction.selection import format_selection


def plan_json(plan: Plan) -> dict[str, Any]:
    return {
        "selection": list(plan.selection),
        "waves": [list(wave) for wave in plan.waves],
        "skipped": [{"number": s.number, "reason": s.reason} for s in plan.skipped],
        "blocked": [
            {"number": b.number, "blocked_by": list(b.blocked_by), "reason": b.reason}
            for b in plan.blocked
        ],
        "warnings": list(plan.warnings),
    }


def plan_text(plan: Plan, todo: str) -> str:
    count = len(plan.run)
    lines = [
        f"Plan for {format_selection(plan.selection)} from {todo}: "
        f"{count} task{'s' if count != 1 else ''} to run in {len(plan.waves)} "
        f"wave{'s' if len(plan.waves) != 1 else ''}"
    ]
    width = max((len(str(n)) for n in plan.run), default=1)
    for index, wave in enumerate(plan.waves, start=1):
        lines.append(f"Wave {index}:")
        for number in wave:
            task = plan.tasks[number]
            deps = plan.edges.get(number, ())
            after = f"  (after {', '.join(map(str, deps))})" if deps else ""
            pulled = "  [dependency pulled in]" if number in plan.pulled_in else ""
            lines.append(f"  {number:>{width}}  {task.title}{after}{pulled}")
    if plan.skipped:
        lines.append("Skipped:")
        lines.extend(f"  {s.number:>{width}}  {s.reason}: {s.detail}" for s in plan.skipped)
    if plan.blocked:
        lines.append("Blocked:")
        lines.extend(f"  {b.number:>{width}}  {b.reason}" for b in plan.blocked)
    if not plan.waves and not plan.blocked:
        lines.append("Nothing to run.")
    return "\n".join(lines) + "\n"
