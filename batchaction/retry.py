"""``failed``: the selection that retries a batch, read from the TODO file's statuses.

Pure functions over parsed tasks. ``failed`` selects the tasks whose Status is failed and the
tasks batchaction itself blocked (their ``Blocking Reason`` is one of the forms it writes:
``blocked by failed task 64``, ``blocked by timed-out task 64``, ``blocked by task 64, 65
(also blocked)``, ``depends on unselected open task 5 (Not Started)``, ``waits for task 64,
still in progress``); ``failed --all`` adds the tasks blocked for any other reason (a person's
external blocker, a blocked task without a reason). Only open tasks count: a status that the
status table reads as done or closed is never retried.

A status is failed (blocked) when its marker words (``status.marker_words`` of
``status.status_head``, what is hidden on GitHub left out) start with ``FAILED``
(``BLOCKED``), or with the words of the configured ``status-markers`` value for ``failed``
(``blocked``), or equal that value exactly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from batchaction.errors import BatchError
from batchaction.selection import DEFAULT_MAX_TASKS, parse_selection
from batchaction.status import marker_words, status_head, visible_status
from batchaction.todo import Task
from batchaction.writeback import MAX_REASON

WORD = "failed"
ALL_FLAG = "--all"

# Every Blocking Reason batchaction writes (scheduler._after_failure, planner.plan,
# scheduler._settle), whole.
_OWN_REASONS = tuple(
    re.compile(pattern)
    for pattern in (
        r"blocked by (?:failed|timed-out) task [0-9]+",
        r"blocked by task [0-9]+(?:, [0-9]+)* \(also blocked\)",
        r"depends on unselected open task [0-9]+ \(.*\)",
        r"waits for task [0-9]+, still in progress",
    )
)
# The same, cut to MAX_REASON characters (writeback.one_line ends them with "…").
_OWN_CUT = re.compile(
    r"(?:blocked by task [0-9]+(?:, [0-9]+)*,?|depends on unselected open task [0-9]+ \().*…"
)


class RetryRequest(NamedTuple):
    """``failed`` (``every_blocked=False``) or ``failed --all`` (True)."""

    every_blocked: bool = False

    def text(self) -> str:
        """The words as a command takes them: ``failed`` or ``failed --all``."""
        return f"{WORD} {ALL_FLAG}" if self.every_blocked else WORD


class RetryPick(NamedTuple):
    """The TODO file's tasks to retry, by kind (each sorted, no duplicates)."""

    failed: tuple[int, ...]
    blocked_by_run: tuple[int, ...]  # blocked with a reason batchaction wrote
    blocked_other: tuple[int, ...]  # blocked for another reason: only with ``--all``

    def selection(self, request: RetryRequest, max_tasks: int | None = None) -> list[int]:
        """The task numbers ``request`` selects, sorted (empty: nothing to retry). Raises
        BatchError (exit 2) past ``max_tasks``."""
        others = self.blocked_other if request.every_blocked else ()
        chosen = sorted({*self.failed, *self.blocked_by_run, *others})
        if max_tasks is not None and len(chosen) > max_tasks:
            raise BatchError(
                f"`{request.text()}` selects {len(chosen)} tasks, over the cap of {max_tasks}: "
                "select fewer tasks by number or raise max-tasks"
            )
        return chosen


def parse_retry(text: str) -> RetryRequest | None:
    """``"failed"`` -> ``RetryRequest()``; ``"failed --all"`` -> ``RetryRequest(True)`` (any
    case); None when the first word is not ``failed`` (a selection of numbers). Raises
    BatchError (exit 2) for anything else after ``failed`` (``failed --bogus``, ``failed 63``)."""
    words = text.split()
    if not words or words[0].lower() != WORD:
        return None
    rest = [word.lower() for word in words[1:]]
    if rest in ([], [ALL_FLAG]):
        return RetryRequest(every_blocked=bool(rest))
    extra = " ".join(words[1:])
    raise BatchError(
        f"unexpected {extra!r} after {WORD!r}: write `{WORD}` (failed tasks and those a "
        f"failure blocked) or `{WORD} {ALL_FLAG}` (every blocked task too)"
    )


def own_reason(reason: str) -> bool:
    """Whether a ``Blocking Reason`` value is one batchaction writes (module docstring)."""
    text = reason.strip()
    if any(pattern.fullmatch(text) for pattern in _OWN_REASONS):
        return True
    return len(text) == MAX_REASON and _OWN_CUT.fullmatch(text) is not None


def _is(status: str, word: str, marker: str | None) -> bool:
    """Whether a Status value says ``word`` (``FAILED``), or the configured ``marker``."""
    text = visible_status(status)
    words = marker_words(status_head(text))
    if words[:1] == (word,):
        return True
    if marker is None:
        return False
    wanted = marker_words(status_head(marker))
    return text == marker.strip() or (bool(wanted) and words[: len(wanted)] == wanted)


def pick_retry(tasks: Iterable[Task], markers: Mapping[str, str] | None = None) -> RetryPick:
    """Sort the open tasks of a TODO file (``TodoDocument.tasks``, parsed with the project's
    status table) into failed, blocked by batchaction and blocked otherwise. ``markers`` is
    ``status-markers`` (``{"failed": "❌ Failed", ...}``): the values batchaction writes."""
    markers = markers or {}
    failed: set[int] = set()
    own: set[int] = set()
    other: set[int] = set()
    for task in tasks:
        if task.state != "open":
            continue
        if _is(task.status, "FAILED", markers.get("failed")):
            failed.add(task.number)
        elif _is(task.status, "BLOCKED", markers.get("blocked")):
            reason = task.field("blocking reason")
            (own if reason is not None and own_reason(reason.value) else other).add(task.number)
    # A number defined twice lands where its first definition says; the planner refuses it.
    own -= failed
    other -= failed | own
    return RetryPick(tuple(sorted(failed)), tuple(sorted(own)), tuple(sorted(other)))


def parse_request(text: str, max_tasks: int = DEFAULT_MAX_TASKS) -> list[int] | RetryRequest:
    """A command's selection: ``failed [--all]`` (``parse_retry``), resolved later on the TODO
    file, or task numbers (``selection.parse_selection``). Raises BatchError (exit 2)."""
    retry = parse_retry(text)
    return retry if retry is not None else parse_selection(text, max_tasks)


def retry_selection(
    tasks: Iterable[Task],
    request: RetryRequest,
    markers: Mapping[str, str] | None = None,
    max_tasks: int | None = None,
) -> list[int]:
    """The task numbers ``request`` selects among ``tasks`` (``pick_retry``), sorted; empty
    when nothing is to be retried. Raises BatchError (exit 2) past ``max_tasks``."""
    return pick_retry(tasks, markers).selection(request, max_tasks)


def nothing_to_retry(pick: RetryPick, request: RetryRequest, command: str) -> str:
    """Why ``request`` selects nothing, and what to write instead (Markdown, batchaction's
    own words only)."""
    text = (
        "no task is failed or blocked"
        if request.every_blocked
        else "no task is failed or blocked by batchaction"
    )
    advice = [f"select tasks by number: `{command} 63, 65-67`"]
    if not request.every_blocked and pick.blocked_other:
        count = len(pick.blocked_other)
        advice.insert(
            0,
            f"{count} task{'s are' if count != 1 else ' is'} blocked for another reason: "
            f"`{command} {WORD} {ALL_FLAG}` retries {'them' if count != 1 else 'it'} too",
        )
    return f"{text}; " + "; or ".join(advice) + "."
