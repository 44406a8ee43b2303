"""A task's own edits to its copy of the TODO file, merged into the shared file.

Agents write into TODO.md while they work (``**Plan**:``, ``**Research**:``, dates, their own
status). In a worktree they edit a copy taken when the task started; when the task ends its
edits are merged into the shared file under the file's lock, three-way against that copy:

- edits inside the task's own section are merged line by line (``git merge-file``); where the
  shared file changed the same lines meanwhile (batchaction's own Status and Started lines),
  the shared file wins, and the run's outcome is written over Status afterwards anyway;
- task sections the agent added (numbers the copy did not have) are appended;
- any other edit (front matter, another task's section, text outside sections) is a conflict:
  nothing of the copy is merged, and the edit stays on the task's branch.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path
from typing import NamedTuple

from batchaction.gitenv import git_environment, own_git
from batchaction.todo import Task, TodoDocument, parse_todo


class TodoMerge(NamedTuple):
    text: str  # the shared file's new text (unchanged on conflict)
    changed: bool
    conflict: str | None  # what could not be merged, for the summary


def _section(doc: TodoDocument, task: Task) -> tuple[int, int]:
    """A task's own lines: its heading to its end, or to the first task nested in it."""
    end = task.end_line
    for other in doc.tasks:
        if task.heading_line < other.heading_line < end:
            end = other.heading_line
    return task.heading_line, end


def _find(doc: TodoDocument, number: int) -> Task | None:
    found = [t for t in doc.tasks if t.number == number]
    return found[0] if len(found) == 1 else None


def merge_file(ours: str, base: str, theirs: str) -> str:
    """``git merge-file -p --ours``: a three-way line merge, ``ours`` winning conflicts."""
    with tempfile.TemporaryDirectory(prefix="batchaction-merge-") as scratch:
        paths = []
        for name, text in (("ours", ours), ("base", base), ("theirs", theirs)):
            path = Path(scratch) / name
            path.write_bytes(text.encode("utf-8"))
            paths.append(str(path))
        proc = subprocess.run(
            own_git("merge-file", "-p", "--ours", *paths),
            env=git_environment(),
            capture_output=True,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    if proc.returncode < 0 or proc.returncode > 127:
        raise OSError(f"git merge-file failed: {proc.stderr.decode('utf-8', 'replace')}")
    return proc.stdout.decode("utf-8")


def merge_section(ours: str, base: str, theirs: str) -> str:
    """A task's own section: its edits (lines it added under Status, a Plan line) merged into
    the shared section. The task's own Status value does not count (the run's outcome is
    written over it); changes to disjoint lines merge, adjacent ones included
    (``integration.merge_lines``); where both changed the same lines, the shared file wins."""
    from batchaction.integration import merge_lines  # noqa: PLC0415

    base_doc, their_doc = parse_todo(base), parse_todo(theirs)
    if base_doc.tasks and their_doc.tasks:
        base_status = base_doc.tasks[0].field("status")
        their_status = their_doc.tasks[0].field("status")
        if base_status is not None and their_status is not None:
            their_lines = list(their_doc.lines)
            their_lines[their_status.line] = base_doc.lines[base_status.line]
            theirs = "".join(their_lines)
    merged = merge_lines(base, ours, theirs)
    return merged if merged is not None else merge_file(ours, base, theirs)


def merge_task_edits(base: str, theirs: str, ours: str, number: int) -> TodoMerge:
    """Merge task ``number``'s edits (``base`` -> ``theirs``) into the shared text ``ours``."""
    if theirs == base:
        return TodoMerge(ours, False, None)
    base_doc, their_doc, our_doc = parse_todo(base), parse_todo(theirs), parse_todo(ours)
    base_numbers = {t.number for t in base_doc.tasks}
    added = [t for t in their_doc.tasks if t.number not in base_numbers]
    # Everything outside the own section and the added sections must be as it was.
    their_rest = list(their_doc.lines)
    cut: list[tuple[int, int]] = [_section(their_doc, t) for t in added]
    own_theirs = _find(their_doc, number)
    own_base = _find(base_doc, number)
    if own_theirs is not None:
        cut.append(_section(their_doc, own_theirs))
    for start, end in sorted(cut, reverse=True):
        del their_rest[start:end]
    base_rest = list(base_doc.lines)
    if own_base is not None:
        start, end = _section(base_doc, own_base)
        del base_rest[start:end]
    # Blank lines at the end do not count (agents that rewrite the file often drop them).
    if "".join(their_rest).rstrip() != "".join(base_rest).rstrip() or (own_base is None) != (
        own_theirs is None
    ):
        return TodoMerge(
            ours,
            False,
            f"task {number} edited the TODO file outside its own section: "
            "not merged (the edit is kept on the task's branch)",
        )
    lines = list(our_doc.lines)
    own_ours = _find(our_doc, number)
    if own_theirs is not None and own_base is not None and own_ours is not None:
        b0, b1 = _section(base_doc, own_base)
        t0, t1 = _section(their_doc, own_theirs)
        o0, o1 = _section(our_doc, own_ours)
        merged = merge_section(
            "".join(lines[o0:o1]), "".join(base_doc.lines[b0:b1]), "".join(their_doc.lines[t0:t1])
        )
        lines[o0:o1] = [merged]
    elif own_theirs is not None and own_ours is None:
        return TodoMerge(ours, False, f"task {number} is no longer in the TODO file: not merged")
    ours_numbers = {t.number for t in our_doc.tasks}
    for task in added:
        if task.number in ours_numbers:
            continue  # added meanwhile by someone else: theirs is not appended twice
        start, end = _section(their_doc, task)
        block = "".join(their_doc.lines[start:end])
        text = "".join(lines)
        if text and not text.endswith("\n"):
            lines.append("\n")
        if text.strip() and not text.endswith("\n\n"):
            lines.append("\n")
        lines.append(block)
    text = "".join(lines)
    return TodoMerge(text, text != ours, None)
