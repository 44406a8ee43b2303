"""Run summaries (SPEC 7): a JSON document (schema in ``schemas/``) and its Markdown rendering."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

from batchaction import __version__
from batchaction.graphview import graph_edges, summary_legend, summary_mermaid, too_large_note
from batchaction.inert import inert
from batchaction.planner import Plan
from batchaction.selection import format_selection
from batchaction.taskrun import TaskRun

OUTCOMES = ("completed", "in-progress", "failed", "timed-out", "blocked", "skipped", "cancelled")
EMOJI = {
    "completed": "✅",
    "in-progress": "⏳",
    "failed": "❌",
    "timed-out": "⏱️",
    "blocked": "⛔",
    "skipped": "⏭️",
    "cancelled": "🚫",
}
MARKDOWN_LIMIT = 60_000


def schema() -> dict[str, Any]:
    text = resources.files("batchaction").joinpath("schemas/summary.schema.json").read_text()
    value: dict[str, Any] = json.loads(text)
    return value


def result_of(counts: Mapping[str, int], interrupted: bool) -> str:
    if interrupted:
        return "interrupted"
    if counts.get("failed") or counts.get("timed-out") or counts.get("blocked"):
        return "failure"
    return "success"


def build_summary(
    *,
    plan: Plan,
    runs: Mapping[int, TaskRun],
    todo: str,
    strategy: str,
    max_parallel: int,
    started: str,
    finished: str,
    duration_s: float,
    log_dir: str,
    warnings: Sequence[str] = (),
    failed_updates: Sequence[Mapping[str, Any]] = (),
    interrupted_by: str | None = None,
    commit: Mapping[str, Any] | None = None,
    isolation: Mapping[str, Any] | None = None,
    todo_lock: Mapping[str, Any] | None = None,
    deadline: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    # A task's dependencies that are tasks of this run (run or blocked): the graph's edges.
    dependencies: dict[int, list[int]] = {}
    for dep, number in graph_edges(plan):
        dependencies.setdefault(number, []).append(dep)
    tasks = [
        {
            "number": run.number,
            "title": run.title,
            "wave": run.wave,
            "outcome": run.outcome,
            "exit_code": run.exit_code,
            "started_at": run.started_at,
            "duration_s": run.duration_s,
            "attempts": run.attempts,
            "blocked_by": list(run.blocked_by),
            "dependencies": dependencies.get(run.number, []),
            "reason": run.reason,
            "log_path": run.log_path,
            "log_tail": list(run.log_tail),
            "branch": run.branch,
            "integrated_commits": run.commits,
            "strays": [dict(stray) for stray in run.strays],
        }
        for run in sorted(runs.values(), key=lambda r: (r.wave or 10**9, r.number))
    ]
    counts = dict.fromkeys(OUTCOMES, 0)
    for run in runs.values():
        counts[run.outcome] = counts.get(run.outcome, 0) + 1
    counts["skipped"] += len(plan.skipped)
    # Not "success" when the batch did not finish for lack of time, or when statuses did not
    # reach TODO.md (a held lock, a file deleted, made binary or read-only).
    unwritten = bool(failed_updates)
    cut_short = bool(deadline and deadline.get("reached"))
    result = result_of(counts, interrupted_by is not None)
    return {
        "version": __version__,
        "selection": list(plan.selection),
        "todo": todo,
        "strategy": strategy,
        "max_parallel": max_parallel,
        "started": started,
        "finished": finished,
        "duration_s": round(duration_s, 3),
        "waves": [list(wave) for wave in plan.waves],
        "tasks": tasks,
        "skipped": [
            {"number": s.number, "reason": s.reason, "detail": s.detail} for s in plan.skipped
        ],
        "counts": counts,
        "warnings": list(warnings),
        "status_updates_failed": list(failed_updates),
        "log_dir": log_dir,
        "commit": dict(commit) if commit else {"sha": None, "pushed": False, "attempts": 0},
        "isolation": dict(isolation) if isolation else {"mode": "none"},
        "interrupted_by": interrupted_by,
        "todo_lock": dict(todo_lock) if todo_lock else None,
        "deadline": dict(deadline) if deadline else None,
        "result": "failure" if result == "success" and (unwritten or cut_short) else result,
    }


CELL_LIMIT = 300  # characters of a title or reason in a table row, before escaping


def _cell(text: str | None, limit: int | None = None) -> str:
    """Inert text (``inert.py``) for one Markdown table cell or line, on one line; past
    ``limit`` characters cut to ``limit - 1`` and ``…`` (so that one long reason cannot push
    the rest of the summary past its limit)."""
    flat = " ".join((text or "").split())
    if limit is not None and len(flat) > limit:
        flat = flat[: limit - 1] + "…"
    return inert(flat).replace("|", "&#124;")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m {rest:02d}s" if minutes < 60 else f"{minutes // 60}h {minutes % 60:02d}m"


def counts_line(summary: Mapping[str, Any]) -> str:
    counts = summary["counts"]
    parts = [f"{EMOJI[o]} {counts[o]} {o.replace('-', ' ')}" for o in OUTCOMES if counts.get(o)]
    ran = sum(counts[o] for o in OUTCOMES if o != "skipped")
    head = f"**batchaction** {summary['result']}: {ran} task{'s' if ran != 1 else ''}"
    return head + "".join(f" · {part}" for part in (*parts, *trouble(summary)))


def trouble(summary: Mapping[str, Any]) -> list[str]:
    """What went wrong besides the tasks, for the header: statuses that did not reach the TODO
    file, integrated work left off the branch, a status commit that was not pushed."""
    found = []
    if summary.get("status_updates_failed"):
        found.append(f"⚠️ statuses not written to {_cell(summary.get('todo') or 'TODO.md')}")
    if (summary.get("isolation") or {}).get("result_branch"):
        found.append("⚠️ integrated work not on the branch")
    commit = summary.get("commit") or {}
    if commit.get("push_token_refused"):
        found.append("⚠️ push-token refused: pushed with github-token, no CI on it")
    if commit.get("error"):
        found.append("⚠️ not pushed" if not commit.get("pushed") else "⚠️ statuses not committed")
    return found


def next_steps(summary: Mapping[str, Any]) -> list[str]:
    tasks = summary["tasks"]
    broken = [t["number"] for t in tasks if t["outcome"] in ("failed", "timed-out")]
    again = [t["number"] for t in tasks if t["outcome"] in ("blocked", "cancelled", "skipped")]
    steps: list[str] = []
    if broken:
        rerun = format_selection(broken + again)
        steps.append(f"Fix {format_selection(broken)}, then `/task {rerun}`.")
    elif again:
        steps.append(f"Run `/task {format_selection(again)}` to finish the rest.")
    pending = [t["number"] for t in tasks if t["outcome"] == "in-progress"]
    if pending:
        steps.append(
            f"{format_selection(pending)} reported work in progress: run again when ready."
        )
    if summary.get("status_updates_failed"):
        numbers = sorted({u["number"] for u in summary["status_updates_failed"]})
        steps.append(
            f"Status updates for {format_selection(numbers)} did not reach the TODO file: "
            "check that it is writable."
        )
    return steps


def limit_lines(summary: Mapping[str, Any]) -> list[str]:
    """Markdown lines on the TODO lock's wait and the run deadline, when they mattered."""
    out: list[str] = []
    lock = summary.get("todo_lock") or {}
    if lock.get("waited_s"):
        line = (
            f"Waited {_duration(lock['waited_s'])} for the TODO lock `{_cell(lock.get('path'))}` "
            f"(held by {_cell(lock.get('holder'))}; lock-timeout {_duration(lock['timeout_s'])})."
        )
        if lock.get("gave_up"):
            unwritten = len(summary.get("status_updates_failed") or [])
            line += f" **TODO.md was not written**: {unwritten} status update(s) did not land."
        out += [line, ""]
    deadline = summary.get("deadline") or {}
    if deadline.get("reached"):
        left = deadline.get("not_started") or []
        out += [
            f"**Run deadline reached** ({_duration(deadline['seconds'])}): "
            f"{len(left)} task(s) not started"
            + (f" ({format_selection(left)})" if left else "")
            + "; running tasks were stopped.",
            "",
        ]
    return out


def render_markdown(summary: Mapping[str, Any], limit: int = MARKDOWN_LIMIT) -> str:
    out = [counts_line(summary), ""]
    out.append(
        f"Selection `{format_selection(summary['selection'])}` from `{_cell(summary['todo'])}`, "
        f"{summary['strategy']}, {summary['max_parallel']} wide, "
        f"{_duration(summary['duration_s'])}."
    )
    out.append("")
    if summary["tasks"]:
        out += ["| Wave | Task | Outcome | Duration | Reason |", "|---:|---|---|---:|---|"]
        for task in summary["tasks"]:
            wave = str(task["wave"]) if task["wave"] else "–"
            out.append(
                f"| {wave} | **{task['number']}** {_cell(task['title'], CELL_LIMIT)} "
                f"| {EMOJI[task['outcome']]} {task['outcome']} "
                f"| {_duration(task['duration_s'])} | {_cell(task['reason'], CELL_LIMIT)} |"
            )
        out.append("")
    if summary["skipped"]:
        skipped = ", ".join(f"{s['number']} ({s['reason']})" for s in summary["skipped"])
        out += [f"Skipped: {_cell(skipped)}", ""]
    out += graph_lines(summary)
    for task in summary["tasks"]:
        if task["outcome"] in ("failed", "timed-out") and task["log_tail"]:
            tail = inert("\n".join(task["log_tail"]))
            out += [
                "<details>",
                f"<summary>{EMOJI[task['outcome']]} {task['number']} "
                f"{_cell(task['title'])}: last {len(task['log_tail'])} log lines</summary>",
                "",
                f"<pre>{tail}</pre>",
                "</details>",
                "",
            ]
    out += limit_lines(summary)
    out += _strays(summary["tasks"])
    isolation = summary.get("isolation") or {}
    if isolation.get("message"):
        out += [f"Work: {_cell(isolation['message'])}", ""]
    out += warning_lines(summary.get("warnings") or [])
    steps = next_steps(summary)
    if steps:
        out += ["**Next steps**", ""] + [f"- {step}" for step in steps] + [""]
    text = "\n".join(out)
    if len(text) > limit:
        text = truncate_markdown(text, limit)
    return text


def warning_lines(warnings: Sequence[str]) -> list[str]:
    """Markdown lines folding ``warnings`` (inert) in a ``<details>``; none without any."""
    if not warnings:
        return []
    head = f"<summary>{len(warnings)} warning(s)</summary>"
    rows = (f"- {_cell(w, 2 * CELL_LIMIT)}" for w in warnings)
    return ["<details>", head, "", *rows, "</details>", ""]


def graph_lines(summary: Mapping[str, Any]) -> list[str]:
    """Markdown lines of the run's dependency graph (``graphview.summary_mermaid``): a
    ```` ```mermaid ```` fence in an open ``<details>`` whose ``<summary>`` is the colour
    legend; past 60 tasks a one-line note instead; none without tasks or without recorded
    dependencies. GitHub draws the fence as a diagram (GitHub Docs, "Creating diagrams":
    docs.github.com, get-started/writing-on-github/working-with-advanced-formatting)."""
    note = too_large_note(len(summary["tasks"]))
    if note is not None:
        return [note, ""]
    graph = summary_mermaid(summary)
    if graph is None:
        return []
    head = f"<summary>Dependency graph: {summary_legend(summary)}</summary>"
    return ["<details open>", head, "", "```mermaid", graph.rstrip("\n"), "```", "</details>", ""]


def _strays(tasks: Sequence[Mapping[str, Any]]) -> list[str]:
    """Markdown lines naming the processes each task left running, which were killed when it
    ended (``strays``: ``{"pid", "command"}``); none when there were none."""
    rows = [
        f"- **{task['number']}** {_cell(task['title'])}: <code>{_cell(stray['command'])}</code> "
        f"(pid {int(stray['pid'])})"
        for task in tasks
        for stray in task.get("strays") or ()
    ]
    if not rows:
        return []
    head = f"<summary>{len(rows)} left running by their task, killed when it ended</summary>"
    return ["<details>", head, "", *rows, "</details>", ""]


TRUNCATED = "…(summary truncated: see the JSON summary for everything)"


def truncate_markdown(text: str, limit: int, note: str = TRUNCATED) -> str:
    """Cut ``text`` on a line boundary under ``limit``, closing the ``<pre>`` and ``<details>``
    the cut left open, so that what follows (``note``, a run-log link appended to the PR
    reply, the next step's job summary) is not swallowed by an open block.

    Counting tags is reliable because every piece of user text is HTML-escaped: the only
    ``<pre>`` and ``<details>`` in the text are this module's own, and they never nest. The
    dependency graph is the one ``<details open>`` block: a cut inside that block drops all of
    it. A cut inside any other code fence (a line starting with three backticks; user text
    never starts a line) drops the fenced block, so that no fence is left open.
    """
    cut = text[: limit - 200].rsplit("\n", 1)[0]
    graph = cut.find("\n<details open>")
    if graph >= 0 and "\n</details>" not in cut[graph:]:
        cut = cut[:graph]  # a cut in the graph's block drops all of it, its fence included
    fences = [found.start() for found in re.finditer(r"(?m)^```", cut)]
    if len(fences) % 2:
        cut = cut[: fences[-1]].rstrip("\n")
    cut = cut.removesuffix("\n<details>")  # a block cut before its <summary> line: drop it
    closing: list[str] = []
    if cut.count("<pre>") > cut.count("</pre>"):
        closing.append("</pre>")
    opened = cut.count("<details>") + cut.count("<details open>")
    closing += ["</details>"] * (opened - cut.count("</details>"))
    if closing:
        cut += "\n" + "\n".join(closing)
    return f"{cut}\n\n{note}\n"
