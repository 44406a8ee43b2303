"""The ``/task`` command's grammar, as the action explains it on a pull request."""

from __future__ import annotations

PLAN_WORD = "plan"


def is_help(selection: str) -> bool:
    """Whether the comment asks for help: ``/task help`` (any case)."""
    return selection.strip().lower() in ("help", "--help", "-h")


def plan_selection(selection: str) -> str | None:
    """``/task plan 63-67``: the selection after ``plan`` (any case; ``""`` when none is
    given, for the usage reply), or None when the comment does not ask for a plan."""
    words = selection.split(maxsplit=1)
    if not words or words[0].lower() != PLAN_WORD:
        return None
    return words[1].strip() if len(words) > 1 else ""


def usage(command: str) -> str:
    """One line: the forms a ``command`` comment takes."""
    return (
        f"Usage: `{command} 63, 65-67` (task numbers and ranges), "
        f"`{command} 63-65 @1a2b3c4` (pinned to the head commit you reviewed), "
        f"`{command} failed` (retry failed tasks and those they blocked; "
        f"`{command} failed --all`: every blocked task too), "
        f"`{command} plan 63-67` (the plan only, nothing runs), "
        f"`{command} help`."
    )


def help_text(command: str) -> str:
    """The reply to ``/task help``: the grammar and examples, in Markdown."""
    return "\n".join(
        [
            f"**batchaction**: how to use `{command}`",
            "",
            "The first line of a comment on this pull request runs tasks of its TODO.md:",
            "",
            f"- `{command} 63` runs task 63; `{command} 63, 65-67` runs 63, 65, 66 and 67 "
            "(commas, spaces and ranges; `#63` works too).",
            f"- `{command} 63-65 @1a2b3c4` runs them only on that head commit (7 to 40 hex "
            "digits of the commit you reviewed), or on it plus commits that change nothing "
            "but TODO.md statuses. A pull request from a fork needs the pin.",
            f"- `{command} failed` retries the tasks whose status is failed and the tasks "
            f"batchaction blocked (`Blocking Reason: blocked by failed task 64`); "
            f"`{command} failed --all` adds the tasks blocked for any other reason. "
            f"It takes a pin too: `{command} failed @1a2b3c4`.",
            f"- `{command} plan 63-67` (or `{command} plan failed`) replies with the plan: "
            "the waves, skipped and blocked tasks with their reasons, warnings and the "
            "dependency graph, read from the head's TODO.md. Nothing runs, nothing is "
            "committed; a pin is not needed and not used.",
            "- Tasks run in dependency order, several at a time; a failure blocks only the "
            "tasks that depend on it. Statuses are written into TODO.md and pushed to this "
            "branch; the reply shows the summary.",
            f"- `{command} help` shows this.",
            "",
            "Only people with the permission the workflow requires can start a run.",
        ]
    )
