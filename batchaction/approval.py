"""Which head the maintainer approved: a comment-triggered run is bound to the head its
commenter saw, not to whatever the branch holds when the job starts (time of check, time of use).

An ``issue_comment`` carries no sha. A comment may pin the head: ``/task 63-65 @1a2b3c4`` (7 to
40 hex digits). The head must then be that commit, or descend from it only through *status
commits*: single-parent commits that change nothing but Status and lifecycle lines (Started,
Completed, Failed, Failure Reason, Blocked, Blocking Reason) of the TODO file, judged by their
diff, whoever made them. So a ``/task`` comment queued behind a run that pushed its statuses
still runs.

Without a pin the check is best effort, after github/branch-deploy's commit safety checks
(``src/functions/commit-safety-checks.ts``: a commit dated after the trigger comment refuses the
deployment): the pull request's timeline must show no ``head_ref_force_pushed`` event after
the comment, and every commit on the head's first-parent line dated (author or committer
date) after the comment must be a status commit. Commit dates are written by whoever pushes,
so only the pin is a guarantee.
"""

from __future__ import annotations

import datetime as dt
import re
import subprocess
from pathlib import Path
from typing import Any, NamedTuple

from batchaction import gitops
from batchaction.errors import BatchError
from batchaction.gitenv import git_environment, own_git
from batchaction.textlines import decode_todo
from batchaction.todo import parse_todo
from batchaction.writeback import LIFECYCLE_FIELDS, MAX_REASON

PIN = re.compile(r"[0-9a-f]{7,40}")
STATUS_FIELDS = frozenset({"status"}) | LIFECYCLE_FIELDS
DATED_FIELDS = frozenset({"started", "completed", "failed", "blocked"})
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
MAX_STATUS = 40  # characters: "[IN PROGRESS]", "✅ COMPLETED", a file's own marker
# How many commits after the approved head are read before giving up (a pin is then needed).
MAX_WALK = 200


class Approval(NamedTuple):
    """The commit the maintainer approved, the head the run uses, and the status commits
    between them."""

    approved: str
    head: str
    status_commits: int

    def describe(self) -> str:
        """``Ran on `1a2b3c4d5e6f`.`` plus, when they differ, the approved commit."""
        text = f"Ran on `{self.head[:12]}`"
        if self.approved != self.head:
            count = self.status_commits
            text += (
                f", which is `{self.approved[:12]}` plus {count} status "
                f"commit{'s' if count != 1 else ''}"
            )
        return text + "."


def how_to_pin(selection: str, command: str, head: str) -> str:
    """The comment to write to pin ``head``: ``/task 63-65 @1a2b3c4d5e6f``."""
    return f"`{command} {selection} @{head[:12]}`".replace("  ", " ")


def pin_problem(pin: str) -> str | None:
    """Why ``pin`` (the text after ``@``) is no pin, or None."""
    if PIN.fullmatch(pin.lower()):
        return None
    return (
        f"`@{pin}` is not a commit pin: write one `@` and 7 to 40 hex digits of the head "
        "commit you reviewed, e.g. `@1a2b3c4`"
    )


def _instant(stamp: str) -> dt.datetime | None:
    try:
        when = dt.datetime.fromisoformat(stamp)
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


def force_push_after(events: list[dict[str, Any]], commented_at: str) -> str | None:
    """The time of the first ``head_ref_force_pushed`` timeline event after ``commented_at``
    (ISO 8601), or None. An event whose time cannot be read counts as after."""
    comment = _instant(commented_at)
    for event in events:
        if event.get("event") != "head_ref_force_pushed":
            continue
        stamp = event.get("created_at")
        when = _instant(stamp) if isinstance(stamp, str) else None
        if comment is None or when is None or when > comment:
            return str(stamp)
    return None


def status_only_text(before: str, after: str) -> bool:
    """Whether two texts of a TODO file differ only in Status and lifecycle field lines, as
    batchaction writes them: with those lines of every task taken out, the rest is the same,
    line for line; and every such line the second text adds holds what batchaction could
    have written there (a date in a dated field, a status of at most ``MAX_STATUS``
    characters, a reason of at most ``MAX_REASON``), so that no paragraph of instructions
    rides in on a status commit."""

    def split(text: str) -> tuple[list[str], list[tuple[str, str, str]]]:
        doc = parse_todo(text)
        fields = [f for task in doc.tasks for f in task.fields if f.key in STATUS_FIELDS]
        skip = {f.line for f in fields}
        rest = [line for index, line in enumerate(doc.lines) if index not in skip]
        return rest, [(doc.lines[f.line], f.key, f.value) for f in fields]

    rest_before, fields_before = split(before)
    rest_after, fields_after = split(after)
    if rest_before != rest_after:
        return False
    old = {line for line, _, _ in fields_before}
    return all(_plausible(key, value) for line, key, value in fields_after if line not in old)


def _plausible(key: str, value: str) -> bool:
    """Whether ``value`` could be what batchaction writes in the field ``key``."""
    value = value.strip()
    if key == "status":
        return len(value) <= MAX_STATUS
    if key in DATED_FIELDS:
        return DATE.fullmatch(value) is not None
    return len(value) <= MAX_REASON


def _status_commit(cwd: Path, sha: str, parents: list[str], todo_rel: str) -> bool:
    """Whether ``sha`` is a single-parent commit that changes only status lines of the TODO
    file, its mode kept (an empty commit counts)."""
    if len(parents) != 1:
        return False
    # ``:100644 100644 <old> <new> M\0TODO.md\0`` per changed path.
    raw = gitops.git(
        "diff-tree", "-r", "--no-renames", "--raw", "-z", parents[0], sha, cwd=cwd
    ).stdout.split("\0")
    entries = list(zip(raw[0::2], raw[1::2], strict=False))
    if not entries:
        return True
    if len(entries) != 1 or entries[0][1] != todo_rel:
        return False
    old_mode, new_mode, old_blob, new_blob, change = entries[0][0].lstrip(":").split()
    if change != "M" or old_mode != new_mode or old_mode not in ("100644", "100755"):
        return False
    texts = [_blob_text(cwd, blob) for blob in (old_blob, new_blob)]
    if texts[0] is None or texts[1] is None:
        return False
    return status_only_text(texts[0], texts[1])


def _blob_text(cwd: Path, blob: str) -> str | None:
    """A blob as the TODO parser reads a file: its bytes decoded strictly as UTF-8, line
    endings untouched (a lone CR stays a CR), or None when it is not such text."""
    proc = subprocess.run(
        own_git("cat-file", "blob", blob), cwd=cwd, env=git_environment(),
        capture_output=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        return None
    try:
        return decode_todo(proc.stdout, blob)
    except BatchError:
        return None


def _commits(cwd: Path, *revs: str) -> list[tuple[str, list[str], int]]:
    """(sha, parents, newest of author and committer time in epoch seconds), newest first."""
    log = gitops.git(
        "log", f"--max-count={MAX_WALK + 1}", "--format=%H %at %ct %P", *revs, "--", cwd=cwd
    ).stdout
    commits = []
    for line in log.splitlines():
        sha, authored, committed, *parents = line.split()
        commits.append((sha, parents, max(int(authored), int(committed))))
    return commits


def approve(
    cwd: Path, head: str, todo_rel: str, *, pin: str | None, commented_at: str | None
) -> Approval | str:
    """Check that ``head`` (a fetched commit in ``cwd``) is what the comment approved.

    Returns the Approval, or the reason to refuse (for the reply). ``pin`` is a checked pin
    (see ``pin_problem``); ``commented_at`` the comment's ISO 8601 time. Raises GitError when
    git itself fails.
    """
    todo_rel = Path(todo_rel).as_posix()
    if pin is not None:
        # Objects, not names: a branch or tag called like the pin would outrank it in
        # rev-parse. Every object whose name starts with the pin, then its commits.
        listed = gitops.git("rev-parse", f"--disambiguate={pin}", cwd=cwd, check=False)
        named = [sha for sha in listed.stdout.split() if sha.startswith(pin)]
        kinds = gitops.git(
            "cat-file", "--batch-check=%(objectname) %(objecttype)", cwd=cwd, check=False,
            input_text="".join(f"{sha}\n" for sha in named),
        ).stdout.split("\n")  # fmt: skip
        commits = [line.split()[0] for line in kinds if line.endswith(" commit")]
        if len(commits) != 1:
            return (
                f"the pin `{pin}` names no single commit of this pull request's history (not "
                "fetched, or too short to be unique): pin the head you reviewed with more digits"
            )
        approved = commits[0]
        ancestor = gitops.git("merge-base", "--is-ancestor", approved, head, cwd=cwd, check=False)
        if approved != head and ancestor.returncode != 0:
            return (
                f"the pinned commit `{pin}` is not the head of the pull request "
                f"(`{head[:12]}`) nor an ancestor of it"
            )
        later = _commits(cwd, head, f"^{approved}")
        for sha, parents, _ in later:
            if len(later) > MAX_WALK or not _status_commit(cwd, sha, parents, todo_rel):
                return (
                    f"commit `{sha[:12]}` came after the pinned commit `{pin}` and changes more "
                    f"than the statuses in {todo_rel}: review it and pin the new head"
                )
        return Approval(approved, head, len(later))
    if commented_at is None or _instant(commented_at) is None:
        return "the comment carries no creation time to check the head against: pin the head"
    limit = _instant(commented_at)
    assert limit is not None
    for later_count, (sha, parents, stamp) in enumerate(_commits(cwd, "--first-parent", head)):
        if dt.datetime.fromtimestamp(stamp, dt.UTC) <= limit:
            return Approval(sha, head, later_count)
        if not _status_commit(cwd, sha, parents, todo_rel):
            return (
                f"commit `{sha[:12]}` is dated after the comment and changes more than the "
                f"statuses in {todo_rel}: review it and pin the head you reviewed"
            )
    return "every commit read on the head is dated after the comment: pin the head you reviewed"
