"""What a finished action run publishes: step outputs, the job summary, annotations on the
TODO file and each task's log as a folded group (SPEC 7, 8)."""

from __future__ import annotations

import fnmatch
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batchaction import gitops
from batchaction.errors import BatchError
from batchaction.repo import exclude_paths
from batchaction.selection import format_selection
from batchaction.textlines import read_todo_text
from batchaction.todo import parse_todo

if TYPE_CHECKING:
    from batchaction.action import Context


def changed_paths(workspace: Path, patterns: tuple[str, ...], todo_rel: str) -> list[str]:
    """Changed and untracked paths matching ``add-paths`` globs, never the TODO file or its
    lock. Reads ``git status --porcelain -z``: ``XY path`` records, a rename or copy (``R``
    or ``C`` in ``XY``) followed by its source path as a field of its own; a rename whose
    new path matches brings its source along (its deletion is half of the change)."""
    if not patterns:
        return []
    status = gitops.git("status", "--porcelain", "-z", "--untracked-files=all", cwd=workspace)
    fields = status.stdout.split("\0")
    changes: list[tuple[str, ...]] = []
    index = 0
    while index < len(fields):
        record = fields[index]
        index += 1
        if len(record) < 4:
            continue
        if "R" in record[:2] or "C" in record[:2]:
            source = fields[index] if index < len(fields) else ""
            index += 1
            changes.append((record[3:], source) if "R" in record[:2] and source else (record[3:],))
        else:
            changes.append((record[3:],))
    ours = {todo_rel, todo_rel + ".lock"}
    chosen = {
        path
        for change in changes
        if change[0] not in ours and any(fnmatch.fnmatch(change[0], pat) for pat in patterns)
        for path in change
        if path not in ours
    }
    return sorted(chosen)


# GitHub caps a job's outputs at 1 MB in all; the summary output keeps well under that.
SUMMARY_OUTPUT_BUDGET = 512 * 1024
SUMMARY_DIR = ".batchaction"  # under the workspace, in info/exclude: later steps read it


def output_summary(summary: dict[str, Any], budget: int = SUMMARY_OUTPUT_BUDGET) -> str:
    """The JSON summary for the ``summary-json`` output, within ``budget`` characters: whole
    when it fits; else without log tails; else with reasons cut to 200 characters; else
    without the task list and warnings (counts, outcomes by number and the rest stay). The
    whole summary is in the file ``summary-path`` names."""
    text = json.dumps(summary)
    if len(text) <= budget:
        return text
    trimmed = dict(summary)
    trimmed["tasks"] = [{**t, "log_tail": []} for t in summary["tasks"]]
    text = json.dumps(trimmed)
    if len(text) <= budget:
        return text
    trimmed["tasks"] = [
        {**t, "reason": (t["reason"] or "")[:200] or None} for t in trimmed["tasks"]
    ]
    text = json.dumps(trimmed)
    if len(text) <= budget:
        return text
    trimmed.update(tasks=[], warnings=[], status_updates_failed=[])
    return json.dumps(trimmed)


def save_summary(workspace: Path, summary: dict[str, Any]) -> Path | None:
    """Write the whole JSON summary to ``<workspace>/.batchaction/summary.json`` (kept out
    of git by ``info/exclude``); its path, or None when it cannot be written."""
    folder = workspace / SUMMARY_DIR
    try:
        folder.mkdir(exist_ok=True)
        path = folder / "summary.json"
        path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    except OSError:
        return None
    exclude_paths(workspace, [f"/{SUMMARY_DIR}/"])
    return path


LOG_EXCERPT = 64 * 1024  # bytes of a task's log printed in the job log
LOG_EXCERPT_RUN = 4 * 1024 * 1024  # and of all tasks' logs together
CHUNK = 64 * 1024


def log_excerpt(path: Path, budget: int) -> Iterator[str]:
    """The log at ``path`` for the job log, in pieces: whole when it holds at most ``budget``
    bytes, else its first and last ``budget / 2`` bytes around a line saying how much was
    left out and where the whole log is. Read ``CHUNK`` bytes at a time: a 1 GB log, or a
    400 MB line without a line break, costs neither memory nor a 1 GB job log."""
    try:
        handle = path.open("rb")
    except OSError:
        return
    with handle:
        size = os.fstat(handle.fileno()).st_size
        head = size if size <= budget else budget // 2
        for start in range(0, head, CHUNK):
            yield handle.read(min(CHUNK, head - start)).decode("utf-8", "replace")
        if size <= budget:
            return
        tail = budget - head
        yield (
            f"\n… {size - head - tail:,} bytes of this log left out here; the whole log "
            f"({size:,} bytes) is {path} …\n"
        )
        handle.seek(size - tail)
        for start in range(0, tail, CHUNK):
            yield handle.read(min(CHUNK, tail - start)).decode("utf-8", "replace")


def log_dir_for(workspace: Path, env: Mapping[str, str]) -> Path:
    """Where the tasks' whole logs go: under the workspace (they outlive the container, and
    a later step can upload them), in ``.batchaction/`` kept out of git, one folder a run."""
    exclude_paths(workspace, [f"/{SUMMARY_DIR}/"])
    run = "-".join(
        "".join(ch for ch in env.get(name, "") if ch.isdigit()) or "0"
        for name in ("GITHUB_RUN_ID", "GITHUB_RUN_ATTEMPT")
    )
    return workspace / SUMMARY_DIR / "logs" / f"run-{run}-{os.getpid()}"


def publish(
    ctx: Context, summary: dict[str, Any], markdown: str, todo: Path, todo_rel: str
) -> None:
    wf = ctx.wf
    tasks = summary["tasks"]

    def numbers(*outcomes: str) -> str:
        return format_selection(t["number"] for t in tasks if t["outcome"] in outcomes)

    wf.set_outputs(
        {
            "result": summary["result"],
            "completed": numbers("completed"),
            "failed": numbers("failed", "timed-out"),
            "blocked": numbers("blocked"),
            "skipped": format_selection(s["number"] for s in summary["skipped"]),
            "waves": json.dumps(summary["waves"]),
            "summary-json": output_summary(summary),
            "summary-path": str(save_summary(ctx.workspace, summary) or ""),
            "log-dir": summary["log_dir"],
            # Only a commit that reached the branch: an unpushed one exists nowhere else.
            "commit-sha": (summary["commit"]["sha"] or "") if summary["commit"]["pushed"] else "",
            "pushed": "true" if summary["commit"]["pushed"] else "false",
        }
    )
    wf.step_summary(markdown)
    left = LOG_EXCERPT_RUN
    try:
        doc = parse_todo(read_todo_text(todo))
        lines = {t.number: (t.field("status") or t.fields[0]).line + 1 for t in doc.tasks}
    except BatchError:
        lines = {}
    for task in tasks:
        if task["outcome"] in ("failed", "timed-out"):
            wf.error(
                f"task {task['number']} {task['outcome']}: {task['reason']}",
                file=todo_rel,
                line=lines.get(task["number"]),
            )
        log = Path(task["log_path"]) if task["log_path"] else None
        if log is not None and log.is_file():
            budget = min(LOG_EXCERPT, left)
            left -= min(budget, log.stat().st_size)
            wf.group(
                f"Task {task['number']}: {task['title']} ({task['outcome']})",
                log_excerpt(log, budget),
            )
