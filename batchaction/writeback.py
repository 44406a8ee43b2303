"""Status write-back (SPEC 6): patch single lines of TODO.md, under a lock, atomically.

``patch_status`` is pure: it edits the lines of one task and nothing else. ``write_changes`` is
the one place that touches the file: exclusive ``flock`` on ``<TODO>.lock`` (shared with shell
scripts that run ``flock TODO.md.lock -c ...``), re-read, patch, temp file in the same
directory, fsync, rename over, fsync the directory, mode kept. A file without write
permission is refused (``PermissionError``), even for root, whom the rename would not stop.
"""

from __future__ import annotations

import bisect
import datetime as dt
import errno
import os
import re
import stat
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal, NamedTuple

from batchaction.status import DEFAULT_TABLE, MarkerStyle, StatusTable, detect_style
from batchaction.textlines import decode_todo, regular_bytes
from batchaction.todo import Task, parse_todo

# ``set`` writes ``StatusChange.value`` as the Status (``status set 5 planned``); ``restore``
# puts back what a cancelled task's start changed.
Outcome = Literal["in-progress", "completed", "failed", "blocked", "set", "restore"]

# Which dated field, and which reason field, each outcome writes (in this order, after Status).
_FIELDS: Mapping[str, tuple[str, str | None]] = {
    "in-progress": ("Started", None),
    "completed": ("Completed", None),
    "failed": ("Failed", "Failure Reason"),
    "blocked": ("Blocked", "Blocking Reason"),
}
LIFECYCLE_FIELDS = frozenset(
    name.lower() for pair in _FIELDS.values() for name in pair if name is not None
)
# The fields an outcome makes untrue, removed when it is written. A dated field goes only
# when its value is a date, as batchaction writes it: ``Blocked: Task 887 completed with
# sorries`` is a person's note and stays. Started is history and stays, except for not-started.
_OUTCOME_FIELDS = ("completed", "failed", "failure reason", "blocked", "blocking reason")
_STALE: Mapping[str, tuple[str, ...]] = {
    "in-progress": ("completed", "blocked", "blocking reason"),
    "completed": ("failed", "failure reason", "blocked", "blocking reason"),
    "failed": ("completed", "blocked", "blocking reason"),
    "blocked": ("completed", "failed", "failure reason"),
    "done": ("failed", "failure reason", "blocked", "blocking reason"),
    "open": _OUTCOME_FIELDS,
    "not-started": ("started", *_OUTCOME_FIELDS),
}
_DATED = frozenset({"started", "completed", "failed", "blocked"})
# A line that starts something new (not a continuation of the field line before it).
_STRUCTURE = re.compile(r"[ \t]*+(?:[-*+][ \t]|[0-9]{1,9}[.)][ \t]|\*\*|#|```|~~~|<!--|>)")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
MAX_REASON = 300


class StatusChange(NamedTuple):
    number: int
    outcome: Outcome
    date: str  # YYYY-MM-DD
    reason: str | None = None
    previous: str | None = None  # the Status value to put back, for outcome "restore"
    # For outcome "restore": lifecycle fields to put back as they were before the run, as
    # (name, value) pairs; a value of None means the task had no such line, and the line the
    # run added is removed. Fields not listed are left alone.
    previous_fields: tuple[tuple[str, str | None], ...] = ()
    # For outcome "restore": the task's section (heading to end) as the run read it. When the
    # section still reads exactly as the start left it, it is put back whole, byte for byte.
    previous_lines: tuple[str, ...] = ()
    # For outcome "set": the Status value to write, and which fields it makes untrue
    # ("done", "open" or "not-started": see _STALE).
    value: str | None = None
    stale: str | None = None


def today() -> str:
    return dt.datetime.now(dt.UTC).date().isoformat()


def one_line(text: str, limit: int = MAX_REASON) -> str:
    """Fold a reason to a single line (it must never start new Markdown structure, nor open
    or close an HTML comment).

    A NUL (the file would then look binary) and lone surrogates (they cannot be written as
    UTF-8), both possible in an executor's JSON summary, are replaced.
    """
    text = text.replace("\x00", " ").encode("utf-8", "replace").decode("utf-8")
    # An HTML comment marker from an executor's summary would hide the fields after it.
    text = text.replace("<!--", "<!- -").replace("-->", "- ->")
    folded = " ".join(text.split())
    return folded if len(folded) <= limit else folded[: limit - 1] + "…"


def _eol(line: str, fallback: str) -> str:
    if line.endswith("\r\n"):
        return "\r\n"
    if line.endswith("\n"):
        return "\n"
    return fallback


def _set_value(line: str, old_value: str, new_value: str) -> str:
    """Replace a field line's value, keeping its prefix and line ending."""
    if new_value == old_value:
        return line
    body = line.rstrip("\r\n")
    ending = line[len(body) :]
    start = body.rfind(old_value) if old_value else len(body.rstrip())
    if old_value and start != -1:
        return body[:start] + new_value + body[start + len(old_value) :] + ending
    return body.rstrip() + " " + new_value + ending


def _hard_break(line: str) -> str:
    """The trailing two-space Markdown line break of a field line, or ""."""
    body = line.rstrip("\r\n")
    return "  " if body.endswith("  ") and body.strip() else ""


def _stale_lines(task: Task, names: Sequence[str], lines: Sequence[str]) -> list[int]:
    """Lines of the fields ``names`` as batchaction writes them (see _STALE): a dated field
    holding just a date, a reason on one line. A field whose text goes on over the next line
    (a person's note) is kept whole."""
    found: list[int] = []
    for field in (*task.fields, *task.repeated):
        if field.key not in names:
            continue
        if field.key in _DATED and not _DATE.fullmatch(field.value.strip()):
            continue
        following = lines[field.line + 1] if field.line + 1 < len(lines) else ""
        if following.strip() and not _STRUCTURE.match(following):
            continue  # a continuation line: the field is longer than one line
        found.append(field.line)
    return found


def patch_status(
    lines: list[str], task: Task, change: StatusChange, style: MarkerStyle
) -> list[str]:
    """Return new lines with one task's status change applied; other lines are untouched.

    Writes Status, then the outcome's dated and reason fields (updated in place, else added
    after Status and the lifecycle fields that follow it, in the task's own field style and
    line break), and removes the lifecycle fields the outcome makes untrue (``_STALE``).
    """
    status = task.field("status")
    assert status is not None
    # A last line without an ending gets the ending the other lines use.
    usual_eol = next((_eol(line, "\n") for line in lines if line.endswith("\n")), "\n")
    default_eol = _eol(lines[status.line], usual_eol)
    result = list(lines)
    if change.outcome == "restore":
        return _restore(result, task, change, style)
    if change.outcome == "set":
        result[status.line] = _set_value(lines[status.line], status.value, change.value or "")
        return _remove_lines(result, _stale_lines(task, _STALE[change.stale or "open"], lines))
    result[status.line] = _set_value(lines[status.line], status.value, style.render(change.outcome))
    dated, reason_name = _FIELDS[change.outcome]
    wanted: list[tuple[str, str]] = [(dated, change.date)]
    if reason_name is not None:
        wanted.append((reason_name, one_line(change.reason or "no reason given")))
    inserts: list[str] = []
    # After Status, or after the lifecycle fields that already follow it.
    anchor = max(
        [status.line]
        + [f.line for f in task.fields if f.key in LIFECYCLE_FIELDS and f.line > status.line]
    )
    # Paragraph-style fields ending in a two-space line break: new ones need it too, or GitHub
    # runs them into one line (list items need none).
    brk = _hard_break(lines[anchor]) if not status.bullet else ""
    for name, value in wanted:
        existing = task.field(name.lower())
        if existing is not None:
            result[existing.line] = _set_value(lines[existing.line], existing.value, value)
        else:
            inserts.append(status.render(name, value, brk + default_eol))
    stale = _stale_lines(task, _STALE[change.outcome], lines)
    if inserts:
        if not result[anchor].endswith("\n"):
            # The anchor is the file's last line, without a newline: the inserted lines end
            # the file instead, and the anchor gets the ending.
            if anchor not in stale:
                result[anchor] += default_eol
            inserts[-1] = inserts[-1].rstrip("\r\n")
        result[anchor + 1 : anchor + 1] = inserts
        stale = [i + len(inserts) if i > anchor else i for i in stale]
    return _remove_lines(result, stale)


def _remove_lines(lines: list[str], indexes: Sequence[int]) -> list[str]:
    """Remove lines; a removed last line without a newline takes the one before's away."""
    for index in sorted(set(indexes), reverse=True):
        gone = lines.pop(index)
        if not gone.endswith("\n") and index == len(lines) and index > 0:
            before = lines[index - 1]
            lines[index - 1] = before[: len(before) - len(_eol(before, ""))]
    return lines


def _own_lines(lines: Sequence[str], number: int) -> tuple[int, Task | None]:
    """Where a section's own part ends (before the first task nested in it), and its task."""
    tasks = parse_todo("".join(lines)).tasks
    own = tasks[0] if tasks and tasks[0].heading_line == 0 and tasks[0].number == number else None
    nested = [t.heading_line for t in tasks if t.heading_line > 0]
    return (min(nested) if nested else len(lines)), own


def _restore(lines: list[str], task: Task, change: StatusChange, style: MarkerStyle) -> list[str]:
    """Undo a cancelled task's start: the section's own lines as read when nothing else changed
    them since, else its Status, its Started line and the lifecycle lines the start removed."""
    original = list(change.previous_lines)
    end, before = _own_lines(original, task.number) if original else (0, None)
    if before is not None:
        started = task.field("started")
        date = started.value if started is not None else change.date
        start = change._replace(outcome="in-progress", date=date)
        redo = patch_status(original[:end], before, start, style)
        if redo == lines[: len(redo)] and _own_lines(lines, task.number)[0] == len(redo):
            return original[:end] + lines[len(redo) :]
    status = task.field("status")
    assert status is not None
    if change.previous is not None:
        lines[status.line] = _set_value(lines[status.line], status.value, change.previous)
    lines = _restore_fields(lines, task, change.previous_fields)
    _, now = _own_lines(lines, task.number)
    if before is None or now is None:
        return lines
    present = {f.key for f in (*now.fields, *now.repeated)}
    missing = [
        original[f.line]
        for f in before.fields
        if f.key in LIFECYCLE_FIELDS and f.key not in present
    ]
    status_now = now.field("status")
    if missing and status_now is not None:
        at = status_now.line + 1
        if not lines[at - 1].endswith("\n"):
            lines[at - 1] += _eol(missing[0], "\n")
            missing[-1] = missing[-1].rstrip("\r\n")
        lines[at:at] = missing
    return lines


def _restore_fields(
    lines: list[str], task: Task, previous: Sequence[tuple[str, str | None]]
) -> list[str]:
    """Put lifecycle fields back as they were: the old value, or no line at all.

    Only the lines of the named lifecycle fields change. A field whose line is gone by now (an
    edit made while the task ran) is not written again.
    """
    removed: list[int] = []
    for name, value in previous:
        key = name.lower()
        existing = task.field(key) if key in LIFECYCLE_FIELDS else None
        if existing is None:
            continue
        if value is None:
            removed.append(existing.line)
        else:
            lines[existing.line] = _set_value(lines[existing.line], existing.value, value)
    # A removed line that ended the file without a newline: so does the line before it now
    # (the run gave that line its newline when it added this one).
    return _remove_lines(lines, removed)


class PatchResult(NamedTuple):
    text: str
    applied: tuple[StatusChange, ...]
    missing: tuple[StatusChange, ...]  # the task was gone or ambiguous at write time


def apply_changes(
    text: str,
    changes: Sequence[StatusChange],
    table: StatusTable = DEFAULT_TABLE,
    markers: Mapping[str, str] | None = None,
) -> PatchResult:
    """Apply changes, in order per task, to the current text of the file.

    The file is parsed once; each task's section is patched on its own, last section first, so
    that lines inserted in one task never shift another's line numbers.
    """
    doc = parse_todo(text, table, shallow=True)
    lines = list(doc.lines)
    style = detect_style((t.status for t in doc.tasks), markers)
    by_number: dict[int, list[Task]] = {}
    for task in doc.tasks:
        by_number.setdefault(task.number, []).append(task)
    grouped: dict[int, list[StatusChange]] = {}
    missing: list[StatusChange] = []
    for change in changes:
        if len(by_number.get(change.number, ())) == 1:
            grouped.setdefault(change.number, []).append(change)
        else:
            missing.append(change)
    # A task's own lines end where a task nested in its section begins: sections patched from
    # the last to the first then never overlap, and no patch shifts another's lines.
    headings = sorted(t.heading_line for t in doc.tasks)
    for number in sorted(grouped, key=lambda n: by_number[n][0].heading_line, reverse=True):
        task = by_number[number][0]
        nested = bisect.bisect_right(headings, task.heading_line)
        end = min(task.end_line, headings[nested]) if nested < len(headings) else task.end_line
        section = lines[task.heading_line : end]
        for change in grouped[number]:
            own = parse_todo("".join(section), table).tasks[0]
            section = patch_status(section, own, change, style)
        lines[task.heading_line : end] = section
    applied = tuple(c for c in changes if c.number in grouped)
    return PatchResult("".join(lines), applied, tuple(missing))


def lock_path(todo: Path) -> Path:
    return todo.with_name(todo.name + ".lock")


def remove_stale_temp_files(todo: Path) -> None:
    """Delete temp files a killed writer left behind (safe: we hold the lock they needed)."""
    real = Path(os.path.realpath(todo))
    for leftover in real.parent.glob(f".{real.name}.*.tmp"):
        leftover.unlink(missing_ok=True)


def check_writable(path: Path, mode: int) -> None:
    """Refuse a file without write permission (``mode`` is its ``st_mode``).

    The rename in ``atomic_replace`` needs only the directory's permission, so without this a
    read-only TODO file would be replaced anyway, and always when running as root. No write
    bit at all refuses root too; otherwise ``access(2)`` decides for the current user.
    """
    if mode & 0o222 == 0:
        raise PermissionError(errno.EACCES, "Permission denied (read-only file)", str(path))
    if not os.access(path, os.W_OK):
        raise PermissionError(errno.EACCES, "Permission denied (not writable)", str(path))


def atomic_replace(target: Path, data: bytes, *, resolve: bool = True) -> None:
    """Write ``data`` over ``target`` atomically, keeping its mode (and owner, as root). With
    ``resolve=False``, ``target`` is already the real path: the rename replaces whatever
    entry is there then (a symlink a task put there is replaced, never written through).

    Raises ``PermissionError`` when ``target`` is not writable (see ``check_writable``).
    """
    real = Path(os.path.realpath(target)) if resolve else target
    info = real.stat() if resolve else real.lstat()
    check_writable(real, info.st_mode)
    fd, temp = tempfile.mkstemp(dir=real.parent, prefix=f".{real.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), stat.S_IMODE(info.st_mode))
            if os.geteuid() == 0:
                os.fchown(handle.fileno(), info.st_uid, info.st_gid)
            os.fsync(handle.fileno())
        os.replace(temp, real)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    directory = os.open(real.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def write_changes(
    todo: Path,
    changes: Sequence[StatusChange],
    table: StatusTable = DEFAULT_TABLE,
    markers: Mapping[str, str] | None = None,
    lock_timeout: float = 60.0,
    *,
    real: str | None = None,
) -> PatchResult:
    """Lock, re-read, patch and atomically replace TODO.md. Raises OSError on I/O failure,
    ``lockwait.LockUnavailable`` (an OSError) when the lock stayed held: for ``lock_timeout``
    seconds, or what is left of the run's lock budget when one is active. With ``real`` (the
    file's real path when the run started), a TODO path that now leads elsewhere is OSError."""
    # Imported on first use: the first write happens in the writer thread while the
    # scheduler is already starting tasks, so the import is off the start-up path.
    from batchaction.lockwait import todo_lock  # noqa: PLC0415

    with todo_lock(lock_path(todo), lock_timeout):
        remove_stale_temp_files(todo)
        if real is not None and os.path.realpath(todo) != real:
            # A task put a symlink in its place: never write through it (outside, maybe).
            raise OSError(f"{todo} was replaced: it leads to {os.path.realpath(todo)} now")
        # From the real path, a symlink refused and the rename over it: no window to swap.
        target = Path(real) if real is not None else todo
        data = regular_bytes(target, follow=real is None)
        result = apply_changes(decode_todo(data, str(todo)), changes, table, markers)
        new = result.text.encode("utf-8")
        if new != data:
            atomic_replace(target, new, resolve=real is None)
        return result
