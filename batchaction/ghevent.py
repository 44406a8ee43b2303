"""What a GitHub event asks for: pure functions over the webhook payload (SPEC 8)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, NamedTuple

from batchaction.errors import BatchError

ROLE_RANK = {"none": 0, "read": 1, "triage": 2, "write": 3, "maintain": 4, "admin": 5}


class Trigger(NamedTuple):
    """The decision: ``run`` (with a selection), or ``ignore`` (with the reason for the log)."""

    kind: Literal["comment", "dispatch", "ignore"]
    reason: str = ""
    selection: str = ""
    owner: str = ""
    repo: str = ""
    pr_number: int | None = None
    comment_id: int | None = None
    sender: str = ""
    branch: str | None = None
    # ``/task 63-65 @1a2b3c4``: the head the maintainer approved, as written (checked later).
    pin: str | None = None
    commented_at: str | None = None  # ISO 8601: when the comment was made (or last edited)


def load_event(path: str | None) -> dict[str, Any]:
    if not path:
        raise BatchError("GITHUB_EVENT_PATH is not set: `batchaction action` runs inside GitHub")
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BatchError(f"{path}: event payload not found") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise BatchError(f"{path}: cannot read the event payload: {exc}") from None
    if not isinstance(data, dict):
        raise BatchError(f"{path}: the event payload is not a JSON object")
    return data


def _get(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def _repo(payload: Mapping[str, Any], env: Mapping[str, str]) -> tuple[str, str]:
    full = _get(payload, "repository", "full_name") or env.get("GITHUB_REPOSITORY", "")
    owner, _, name = str(full).partition("/")
    return owner, name


def command_selection(body: str, command: str) -> str | None:
    """The selection after ``command`` on the comment's first line, or None."""
    first = body.lstrip("\ufeff").split("\n", 1)[0].strip()
    match = re.fullmatch(re.escape(command) + r"(?:[ \t]+(?P<rest>.*))?", first)
    if match is None:
        return None
    return (match["rest"] or "").strip()


def split_pin(selection: str) -> tuple[str, str | None]:
    """``"63-65 @1a2b3c4"`` -> ``("63-65", "1a2b3c4")``; several ``@`` words are returned
    joined by spaces, for the gate to refuse."""
    pins = re.findall(r"(?:^|\s)@(\S*)", selection)
    rest = re.sub(r"(?:^|\s)@\S*", " ", selection).strip()
    return rest, (" ".join(pins) if pins else None)


def is_bot(sender: Mapping[str, Any]) -> bool:
    login = str(sender.get("login") or "")
    return sender.get("type") == "Bot" or login.endswith("[bot]")


def decide(
    event_name: str,
    payload: Mapping[str, Any],
    env: Mapping[str, str],
    *,
    command: str = "/task",
    allow_edits: bool = False,
    tasks_input: str | None = None,
) -> Trigger:
    owner, repo = _repo(payload, env)
    if event_name == "workflow_dispatch":
        selection = tasks_input or _get(payload, "inputs", "tasks")
        if not isinstance(selection, str) or not selection.strip():
            raise BatchError(
                "workflow_dispatch run without tasks: set the action's `tasks` input "
                "(e.g. `tasks: ${{ inputs.tasks }}`)"
            )
        ref = str(payload.get("ref") or env.get("GITHUB_REF", ""))
        branch = ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else None
        return Trigger(
            "dispatch",
            selection=selection,
            owner=owner,
            repo=repo,
            sender=str(_get(payload, "sender", "login") or env.get("GITHUB_ACTOR", "")),
            # A tag (refs/tags/...) is no branch to push to; GITHUB_REF_NAME only stands in
            # when the event names no ref at all.
            branch=branch if ref else (env.get("GITHUB_REF_NAME") or None),
        )
    if event_name != "issue_comment":
        return Trigger("ignore", f"nothing to do for a {event_name or 'unknown'} event")
    action = payload.get("action")
    if action != "created" and not (allow_edits and action == "edited"):
        return Trigger("ignore", f"comment was {action}, not created (see allow-edits)")
    body = _get(payload, "comment", "body")
    selection = command_selection(body, command) if isinstance(body, str) else None
    if selection is None:
        return Trigger("ignore", f"the comment's first line is not a {command} command")
    if not isinstance(_get(payload, "issue", "pull_request"), Mapping):
        return Trigger("ignore", f"{command} works on pull requests; this is a plain issue")
    sender = _get(payload, "sender") or {}
    if not isinstance(sender, Mapping) or is_bot(sender):
        return Trigger("ignore", "comments from bots are ignored")
    number = _get(payload, "issue", "number")
    comment_id = _get(payload, "comment", "id")
    if type(number) is not int or type(comment_id) is not int:  # bool is an int too
        raise BatchError("the issue_comment payload has no issue number or comment id")
    selection, pin = split_pin(selection)
    stamp = _get(payload, "comment", "updated_at" if action == "edited" else "created_at")
    return Trigger(
        "comment",
        selection=selection,
        pin=pin,
        commented_at=stamp if isinstance(stamp, str) else None,
        owner=owner,
        repo=repo,
        pr_number=number,
        comment_id=comment_id,
        sender=str(sender.get("login") or ""),
    )


def permission_rank(answer: Mapping[str, Any]) -> int:
    """Rank from the collaborator-permission answer: ``role_name`` first, then ``permission``."""
    role = answer.get("role_name")
    if isinstance(role, str) and role in ROLE_RANK:
        return ROLE_RANK[role]
    permissions = _get(answer, "user", "permissions")  # ``user`` may be null
    if isinstance(permissions, Mapping):
        for name in ("admin", "maintain", "push", "triage", "pull"):
            if permissions.get(name):
                return ROLE_RANK[{"push": "write", "pull": "read"}.get(name, name)]
    permission = answer.get("permission")
    return ROLE_RANK.get(str(permission), 0)
