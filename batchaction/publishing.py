"""What a finished action run publishes: step outputs, the job summary, annotations on the
TODO file and each task's log as a folded group (SPEC 7, 8)."""

from __future__ import annotations

import fnmatch
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batchaction import gitops
from batchaction.errors import BatchError
from batchaction.repo import exclude_paths
from batchaction.selection import format_selection
from batchaction.textlines import open_regular, read_todo_text
from batchaction.todo import parse_todo
from batchaction.workflow import run_key

if TYPE_CHECKING:
    from batchaction.actioncontext import Context


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
    when it fits; else without log tails; else with titles and reasons cut to 200
    characters and no skipped details; else without the task, skipped and warning lists
    (each of these is valid against the schema); else only the counts, the result, the
    selection and the waves. The whole summary is in the file ``summary-path`` names."""
    text = json.dumps(summary)
    if len(text) <= budget:
        return text
    trimmed = dict(summary)
    trimmed["tasks"] = [{**t, "log_tail": []} for t in summary["tasks"]]
    text = json.dumps(trimmed)
    if len(text) <= budget:
        return text
    trimmed["tasks"] = [
        {**t, "reason": (t["reason"] or "")[:200] or None, "title": t["title"][:200]}
        for t in trimmed["tasks"]
    ]
    trimmed["skipped"] = [{**s, "detail": None} for s in summary["skipped"]]
    text = json.dumps(trimmed)
    if len(text) <= budget:
        return text
    trimmed.update(tasks=[], warnings=[], status_updates_failed=[], skipped=[])
    text = json.dumps(trimmed)
    if len(text) <= budget:
        return text
    # Only free text is left to blame (a path, a commit error): the counts and the result.
    keep = ("counts", "result", "selection", "waves", "interrupted_by")
    return json.dumps({key: trimmed[key] for key in keep if key in trimmed})


def own_folder(workspace: Path) -> Path:
    """Where the action keeps the whole summary and logs: ``<workspace>/.batchaction``, kept
    out of git. When the pull request put something there itself (a tracked file, a symlink
    that would send the writes elsewhere, a file), a folder outside the workspace instead."""
    folder = workspace / SUMMARY_DIR
    tracked = gitops.git("ls-files", "--", SUMMARY_DIR, cwd=workspace, check=False).stdout
    if tracked.strip() or folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        return Path(tempfile.mkdtemp(prefix="batchaction-"))
    folder.mkdir(exist_ok=True)
    exclude_paths(workspace, [f"/{SUMMARY_DIR}/"])
    return folder


def save_summary(workspace: Path, summary: dict[str, Any]) -> Path | None:
    """Write the whole JSON summary to ``summary.json`` in ``own_folder`` (never through a
    symlink a task planted); its path, or None when it cannot be written."""
    path = own_folder(workspace) / "summary.json"
    try:
        path.unlink(missing_ok=True)  # a symlink or FIFO a task left goes; the file is ours
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(summary, indent=2) + "\n")
    except OSError:
        return None
    return path


def log_dir_for(workspace: Path, env: Mapping[str, str]) -> Path:
    """Where the tasks' whole logs go: in ``own_folder`` (they outlive the container, and a
    later step can upload them), one folder a run."""
    return own_folder(workspace) / "logs" / f"run-{run_key(env)}-{os.getpid()}"


LOG_EXCERPT = 64 * 1024  # bytes of a task's log printed in the job log (`log-excerpt`)
LOG_EXCERPT_RUN = 4 * 1024 * 1024  # and of all tasks' logs together, whatever `log-excerpt` says
CHUNK = 64 * 1024


def log_excerpt(path: Path, budget: int) -> Iterator[str]:
    """The log at ``path`` for the job log, in pieces: whole when it holds at most ``budget``
    bytes, else its first and last ``budget / 2`` bytes around a line saying how much was
    left out and where the whole log is. Read ``CHUNK`` bytes at a time: a 1 GB log, or a
    400 MB line without a line break, costs neither memory nor a 1 GB job log."""
    try:
        handle = open_regular(path, follow=False)  # the task may have replaced its log
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


def publish(
    ctx: Context,
    summary: dict[str, Any],
    markdown: str,
    todo: Path,
    todo_rel: str,
    *,
    excerpt: int = LOG_EXCERPT,
) -> None:
    """Set the outputs, write the job summary and annotations, and print each task's log
    as a folded group: at most ``excerpt`` bytes of it (head and tail), and
    ``LOG_EXCERPT_RUN`` bytes for all tasks together."""
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
            # Skipped when planned (done, not a task) and at the run deadline (not started).
            "skipped": format_selection(
                [s["number"] for s in summary["skipped"]]
                + [t["number"] for t in tasks if t["outcome"] == "skipped"]
            ),
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
        if log is not None and log.is_file() and not log.is_symlink():
            budget = min(excerpt, left)
            left -= min(budget, log.stat().st_size)
            wf.group(
                f"Task {task['number']}: {task['title']} ({task['outcome']})",
                log_excerpt(log, budget),
            )
