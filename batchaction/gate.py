"""The gate of a comment-triggered run: who may start it, and on which head (SPEC 8).

The commenter's permission is read from the API and compared with ``permission``; a pull
request from a fork runs only with ``allow-forks`` (and is never pushed to); the head is
fetched by the sha the API returned and checked out on its branch.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from batchaction import gitops
from batchaction.approval import approve, force_push_after, how_to_pin, pin_problem
from batchaction.commandhelp import help_text
from batchaction.errors import EXIT_INVALID_INPUT, EXIT_OK, EXIT_TASKS_FAILED, BatchError
from batchaction.ghevent import ROLE_RANK, permission_rank
from batchaction.github import GitHubError
from batchaction.retry import parse_retry
from batchaction.selection import format_selection, parse_selection
from batchaction.settings import Settings

if TYPE_CHECKING:
    from batchaction.actioncontext import Context


def ensure_safe_directory(workspace: Path) -> None:
    listed = gitops.git(
        "config", "--global", "--get-all", "safe.directory", cwd=workspace, check=False
    )
    if str(workspace) not in listed.stdout.split("\n") and "*" not in listed.stdout.split("\n"):
        gitops.git("config", "--global", "--add", "safe.directory", str(workspace), cwd=workspace)


class Head(NamedTuple):
    """What to run on: the PR head's branch and sha, the ref to fetch it by, and its fork."""

    branch: str
    sha: str
    fetch_ref: str
    fork: str | None = None  # "owner/repo" of a fork head; nothing is pushed there


def answer_help(ctx: Context, settings: Settings) -> int:
    """``/task help``: the grammar as a reply, to someone with the permission (no one else
    gets the bot to post); nothing is checked out or run. Exit 0."""
    refused = _check_permission(ctx, settings)
    if refused is not None:
        return refused
    ctx.reply(help_text(settings.command))
    return EXIT_OK


def gate_comment(ctx: Context, settings: Settings, *, runs: bool = True) -> Head | int:
    """Permission and fork checks; the PR head to run on, or an exit code after refusing.
    ``runs=False`` (``/task plan``): nothing will run, so a fork's head needs no pin, a pin
    is not read, and the timeline is not checked for a force-push after the comment."""
    trigger = ctx.trigger
    assert ctx.gh is not None
    assert trigger.pr_number is not None
    refused = _check_permission(ctx, settings)
    if refused is not None:
        return refused
    try:
        pull = ctx.gh.pull(trigger.owner, trigger.repo, trigger.pr_number)
    except GitHubError as exc:
        return ctx.refuse(f"could not read pull request #{trigger.pr_number} ({exc})")
    head = pull.get("head") or {}
    head_repo = (head.get("repo") or {}).get("full_name")
    base_repo = ((pull.get("base") or {}).get("repo") or {}).get("full_name")
    ref, sha = head.get("ref"), head.get("sha")
    if not isinstance(ref, str) or not isinstance(sha, str):
        return ctx.refuse(f"pull request #{trigger.pr_number} has no head branch")
    if pull.get("state") not in (None, "open"):
        return ctx.refuse(f"pull request #{trigger.pr_number} is {pull.get('state')}")
    if head_repo is None:
        return ctx.refuse(
            f"the head repository of #{trigger.pr_number} was deleted; nothing to run on"
        )
    pin = trigger.pin if runs else None
    if pin is not None and (problem := pin_problem(pin)):
        return ctx.refuse(problem, EXIT_INVALID_INPUT)
    if head_repo != base_repo:
        if not settings.allow_forks:
            return ctx.refuse(
                f"the head of #{trigger.pr_number} is in a fork ({head_repo}); "
                "set `allow-forks: true` to run tasks on fork branches (they are not pushed)"
            )
        if pin is None and runs:
            return _refuse_unpinned(ctx, settings, head_repo, sha)
    if pin is None and runs:
        try:
            events = ctx.gh.timeline(trigger.owner, trigger.repo, trigger.pr_number)
        except GitHubError as exc:
            return ctx.refuse(f"could not read the timeline of #{trigger.pr_number} ({exc})")
        pushed = force_push_after(events, trigger.commented_at or "")
        if pushed is not None:
            return ctx.refuse(
                f"the head of #{trigger.pr_number} was force-pushed at {pushed}, after the "
                "comment: review it, then comment again, pinning the head you reviewed",
                EXIT_TASKS_FAILED,
            )
    if head_repo != base_repo:
        # GitHub keeps every pull request's head in the base repository as refs/pull/N/head.
        return Head(
            f"pr-{trigger.pr_number}", sha, f"refs/pull/{trigger.pr_number}/head", head_repo
        )
    return Head(ref, sha, f"refs/heads/{ref}")


def _check_permission(ctx: Context, settings: Settings) -> int | None:
    """None when the commenter's permission reaches ``permission``; else the refusal's code."""
    trigger = ctx.trigger
    assert ctx.gh is not None
    try:
        answer = ctx.gh.permission(trigger.owner, trigger.repo, trigger.sender)
    except GitHubError as exc:
        return ctx.refuse(f"could not verify the permission of @{trigger.sender} ({exc})")
    if permission_rank(answer) < ROLE_RANK[settings.permission]:
        role = answer.get("role_name") or answer.get("permission") or "no"
        return ctx.refuse(
            f"@{trigger.sender} has {role} permission on this repository; "
            f"`{settings.permission}` is needed to run tasks"
        )
    return None


def _refuse_unpinned(ctx: Context, settings: Settings, fork: str, sha: str) -> int:
    """A fork's head runs only when the comment pins it: say how."""
    try:
        retry = parse_retry(ctx.trigger.selection)  # ``failed``: resolved on the head later
        selection = (
            retry.text()
            if retry is not None
            else format_selection(parse_selection(ctx.trigger.selection, settings.max_tasks))
        )
    except BatchError:
        selection = "<tasks>"
    return ctx.refuse(
        f"the head of #{ctx.trigger.pr_number} is in a fork ({fork}): a run on a fork's head "
        "must pin the commit you reviewed, so that nothing pushed after your comment runs.",
        advice=(
            f"After reviewing commit `{sha[:12]}`, comment "
            f"{how_to_pin(selection, settings.command, sha)}."
        ),
    )


def approve_head(ctx: Context, head: Head, todo: Path, command: str) -> int | None:
    """Check that the checked-out head is the one the comment approved (approval.approve);
    record it on ``ctx`` for the reply, or refuse and return the exit code."""
    todo_rel = os.path.relpath(os.path.realpath(todo), ctx.workspace)
    try:
        found = approve(
            ctx.workspace, head.sha, todo_rel,
            pin=ctx.trigger.pin.lower() if ctx.trigger.pin else None,
            commented_at=ctx.trigger.commented_at,
        )  # fmt: skip
    except gitops.GitError as exc:
        return ctx.refuse(f"could not check the head against the comment: {exc}")
    if isinstance(found, str):
        return ctx.refuse(found, EXIT_TASKS_FAILED)
    ctx.approval = found
    ctx.wf.notice(f"batchaction: {found.describe()}")
    return None


def checkout_head(ctx: Context, head: Head) -> str | None:
    """Put the workspace on the head's branch at its sha; an error message on failure."""
    branch, sha = head.branch, head.sha
    fetched = gitops.git(
        "fetch",
        "--quiet",
        "--no-tags",
        "origin",
        f"+{head.fetch_ref}:refs/remotes/origin/{branch}",
        cwd=ctx.workspace,
        check=False,
        access=ctx.remote_access(),
    )
    if fetched.returncode != 0:
        return f"could not fetch {head.fetch_ref}: {fetched.stderr.strip()[-500:]}"
    # The head must be the fetched tip or an ancestor of it: that a commit is in the object
    # store proves nothing (with fetch-depth: 0 it holds every commit ever fetched).
    on_branch = gitops.git(
        "merge-base", "--is-ancestor", sha, f"refs/remotes/origin/{branch}",
        cwd=ctx.workspace, check=False,
    )  # fmt: skip
    if on_branch.returncode != 0:
        return f"commit {sha[:12]} of {branch} is no longer on the branch (force-pushed?)"
    switched = gitops.git("checkout", "--quiet", "-B", branch, sha, cwd=ctx.workspace, check=False)
    if switched.returncode != 0:
        return f"could not check out {branch}: {switched.stderr.strip()[-500:]}"
    return None
