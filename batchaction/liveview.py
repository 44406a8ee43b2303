"""The live progress comment's text: the run's tasks as they stand, in Markdown (pure).

One row per task of the plan, in wave order, then the tasks the plan blocked: its outcome once
it finished (the summary's emoji and words), ``🏃 running`` with the time so far while its
executor runs, ``⌛ waiting`` before; then the counts, the dependency graph coloured by the
same outcomes (``graphview.summary_mermaid``) and the link to the run. Every piece of TODO.md
text is made inert (``summary._cell``), as in the summary.

The first line of the body is an HTML comment, ``<!-- batchaction:progress run=<id>-<attempt>
state=running check=<id> -->``, which lets the ``finalize`` step of a cancelled job find the
comment and its check run (``finalize.py``); ``state`` is ``running`` until the final edit.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from batchaction.planner import Plan
from batchaction.selection import format_selection
from batchaction.summary import CELL_LIMIT, EMOJI, _cell, _duration, graph_lines, warning_lines
from batchaction.taskrun import FINISHED, TaskRun

MARK = re.compile(
    r"<!-- batchaction:progress run=(?P<run>[0-9]+-[0-9]+) state=(?P<state>[a-z]+)"
    r"(?: check=(?P<check>[0-9]+))? -->"
)
RUNNING = "🏃"
WAITING = "⌛"


def mark(run_key: str, state: str, check_id: int | None) -> str:
    """The body's first line (see the module docstring)."""
    check = f" check={check_id}" if check_id is not None else ""
    return f"<!-- batchaction:progress run={run_key} state={state}{check} -->"


@dataclass
class Board:
    """What the live comment shows: the plan, each task's run once it started (the
    scheduler's own ``TaskRun``, read, never written) and its start (``time.monotonic()``)."""

    plan: Plan
    command: str
    sha: str
    run_url: str
    runs: dict[int, TaskRun] = field(default_factory=dict)
    started: dict[int, float] = field(default_factory=dict)
    began: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    def state(self, number: int, now: float) -> tuple[str, str, float | None, str]:
        """(emoji, word, seconds, reason) of one task at monotonic time ``now``."""
        run = self.runs.get(number)
        if run is not None and run.outcome in FINISHED:
            return EMOJI[run.outcome], run.outcome, run.duration_s, run.reason or ""
        if run is not None and number in self.started:
            return RUNNING, "running", now - self.started[number], ""
        if number in self._blocked:
            return EMOJI["blocked"], "blocked", None, self._blocked[number]
        return WAITING, "waiting", None, ""

    def outcomes(self, now: float) -> dict[int, str]:
        """Each task's word (``state``), for the graph's colours."""
        return {n: self.state(n, now)[1] for n in self.numbers()}

    def numbers(self) -> list[int]:
        return [*self.plan.run, *(b.number for b in self.plan.blocked)]

    def wave_of(self, number: int) -> int | None:
        return self._waves.get(number)

    def __post_init__(self) -> None:
        self._waves = {n: i for i, wave in enumerate(self.plan.waves, start=1) for n in wave}
        self._blocked = {b.number: b.reason for b in self.plan.blocked}


def render_live(board: Board, now: float, *, wall: dt.datetime | None = None) -> str:
    """The comment's Markdown while the run goes on (without the ``mark`` line)."""
    wall = wall or dt.datetime.now(dt.UTC)
    rows = []
    tally: dict[str, int] = {}
    for number in board.numbers():
        emoji, word, seconds, reason = board.state(number, now)
        tally[word] = tally.get(word, 0) + 1
        wave = board.wave_of(number)
        task = board.plan.tasks.get(number)
        so_far = " so far" if word == "running" else ""
        rows.append(
            f"| {wave or '–'} | **{number}** {_cell(task.title if task else '', CELL_LIMIT)} "
            f"| {emoji} {word} | {_duration(seconds)}{so_far} | {_cell(reason, CELL_LIMIT)} |"
        )
    total = len(rows)
    done = sum(count for word, count in tally.items() if word not in ("running", "waiting"))
    order = (*EMOJI, "running", "waiting")
    icons = {**EMOJI, "running": RUNNING, "waiting": WAITING}
    parts = [f"{icons[w]} {tally[w]} {w.replace('-', ' ')}" for w in order if tally.get(w)]
    selection = format_selection(board.plan.selection)
    out = [
        f"{RUNNING} **batchaction** running `{_cell(board.command)} {selection}`: "
        f"{done} of {total} finished" + "".join(f" · {p}" for p in parts),
        "",
        f"On `{board.sha[:12]}`, started {board.began:%H:%M:%S} UTC; this comment is updated "
        f"as tasks start and finish (last update {wall:%H:%M:%S} UTC).",
        "",
    ]
    if rows:
        out += ["| Wave | Task | Outcome | Duration | Reason |", "|---:|---|---|---:|---|", *rows]
        out.append("")
    if board.plan.skipped:
        skipped = ", ".join(f"{s.number} ({s.reason})" for s in board.plan.skipped)
        out += [f"Skipped: {_cell(skipped)}", ""]
    out += warning_lines(board.plan.warnings)
    out += graph_lines(live_graph_summary(board, now))
    out += [f"[Run log]({board.run_url})", ""]
    return "\n".join(out)


def live_graph_summary(board: Board, now: float) -> Mapping[str, Any]:
    """The part of a JSON summary the graph reads: ``tasks`` with number, title, wave,
    outcome (``running``/``waiting`` while the run goes on) and dependencies."""
    outcomes = board.outcomes(now)
    tasks = []
    for number in board.numbers():
        task = board.plan.tasks.get(number)
        deps = board.plan.edges.get(number)
        if deps is None and task is not None:
            deps = tuple(d for d in task.dependencies if d in outcomes)
        tasks.append(
            {
                "number": number,
                "title": task.title if task else "",
                "wave": board.wave_of(number),
                "outcome": outcomes[number],
                "dependencies": list(deps or ()),
            }
        )
    return {"tasks": tasks}
