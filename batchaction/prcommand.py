"""The pull request commands read on the head's TODO.md (SPEC 8): ``/task plan SEL`` replies
with the plan and runs nothing; ``failed [--all]`` becomes task numbers once the head is
checked out (``retry``).

``/task plan`` passes the gate of a run for permission and fork policy (``gate.gate_comment``
with ``runs=False``: a fork's head needs ``allow-forks`` but no pin, since nothing runs; a pin
is accepted and not used), fetches and checks out the head, plans, and replies with
``planreply.plan_markdown``. Nothing runs, nothing is committed or pushed.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from batchaction.commandhelp import usage
from batchaction.errors import EXIT_INVALID_INPUT, EXIT_OK, EXIT_TASKS_FAILED, BatchError
from batchaction.gate import checkout_head, gate_comment
from batchaction.gitenv import git_environment, own_git
from batchaction.loading import dependency_fields, read_and_plan, read_document, status_table
from batchaction.planreply import code, plan_markdown
from batchaction.retry import RetryRequest, nothing_to_retry, parse_request, pick_retry
from batchaction.selection import format_selection
from batchaction.settings import Settings, find_todo
from batchaction.textlines import decode_todo
from batchaction.todo import Task, parse_todo

if TYPE_CHECKING:
    from batchaction.actioncontext import Context


def head_todo(workspace: Path, settings: Settings) -> Path:
    """The TODO file in the checked-out workspace; BatchError (exit 2) when it is missing or
    its path leads outside the workspace (a symbolic link on the head)."""
    todo = find_todo(settings.todo_path, base=workspace)
    real = Path(os.path.realpath(todo))
    if real != workspace and workspace not in real.parents:
        named = settings.todo_path or os.path.relpath(todo, workspace)
        raise BatchError(
            f"todo-path {named!r} leads outside the workspace: use a path inside the repository"
        )
    return todo


def _approved_tasks(ctx: Context, settings: Settings, todo: Path, todo_rel: str) -> list[Task]:
    """The tasks of the TODO file the comment approved: ``ctx.approval.approved``'s when status
    commits followed it (statuses someone pushed after the approval do not choose what runs),
    else the checked-out file's. BatchError (exit 2) when that version cannot be read."""
    approval = ctx.approval
    if approval is None or approval.approved == approval.head:
        return list(read_document(settings, todo).tasks)
    shown = subprocess.run(
        own_git("cat-file", "blob", f"{approval.approved}:{todo_rel}"),
        cwd=ctx.workspace, env=git_environment(), capture_output=True, check=False,
    )  # fmt: skip
    if shown.returncode != 0:
        raise BatchError(f"cannot read {todo_rel} at the approved commit {approval.approved[:12]}")
    text = decode_todo(shown.stdout, todo_rel)
    fields = dependency_fields(settings)
    return list(parse_todo(text, status_table(settings), dependency_fields=fields).tasks)


def resolve_retry(
    ctx: Context, settings: Settings, todo: Path, request: RetryRequest, sha: str
) -> list[int] | int:
    """``failed [--all]``: the task numbers to run, read from ``todo`` (the head at ``sha``,
    checked out), or from the commit the comment approved when status commits followed it
    (``_approved_tasks``); or, after replying, an exit code: 0 when there is nothing to retry
    (the reply says so and how else to select), the error's code when the file cannot be
    read."""
    todo_rel = os.path.relpath(os.path.realpath(todo), ctx.workspace)
    try:
        pick = pick_retry(
            _approved_tasks(ctx, settings, todo, todo_rel), dict(settings.status_markers)
        )
        chosen = pick.selection(request, settings.max_tasks)
    except BatchError as exc:
        return ctx.refuse(str(exc), exc.exit_code)
    if chosen:
        ctx.wf.notice(f"batchaction: `{request.text()}` selects {format_selection(chosen)}")
        return chosen
    why = nothing_to_retry(pick, request, settings.command)
    ctx.wf.notice(f"batchaction: nothing to retry in {todo_rel} on {sha[:12]}: {why}")
    ctx.reply(f"**batchaction**: nothing to retry in {code(todo_rel)} on `{sha[:12]}`: {why}\n")
    return EXIT_OK


def answer_plan(ctx: Context, settings: Settings, text: str) -> int:
    """``/task plan TEXT`` (``TEXT``: numbers and ranges, or ``failed [--all]``): reply with
    the plan read from the PR head's TODO.md (module docstring). Exit 0 after the reply; 2
    with the usage line for a bad selection; a refusal's code otherwise."""
    gated = gate_comment(ctx, settings, runs=False)
    if isinstance(gated, int):
        return gated
    head = gated
    try:
        request = parse_request(text, settings.max_tasks)
    except BatchError as exc:
        return ctx.refuse(str(exc), EXIT_INVALID_INPUT, advice=usage(settings.command))
    problem = checkout_head(ctx, head)
    if problem:
        return ctx.refuse(problem, EXIT_TASKS_FAILED)
    try:
        todo = head_todo(ctx.workspace, settings)
    except BatchError as exc:
        return ctx.refuse(str(exc), exc.exit_code)
    if isinstance(request, RetryRequest):
        picked = resolve_retry(ctx, settings, todo, request, head.sha)
        if isinstance(picked, int):
            return picked
        request = picked
    todo_rel = os.path.relpath(os.path.realpath(todo), ctx.workspace)
    try:  # named as in the repository, not by the runner's path, in the reply's warnings
        _, the_plan = read_and_plan(settings, ctx.workspace / todo_rel, request, todo_rel)
    except BatchError as exc:
        return ctx.refuse(str(exc), exc.exit_code)
    for warning in the_plan.warnings:
        ctx.wf.command("warning", warning)
    # A fork's head runs only with a pin: the command to copy carries it.
    pin = f" @{head.sha[:12]}" if head.fork else ""
    command = f"{settings.command} {format_selection(the_plan.selection)}{pin}"
    body = plan_markdown(the_plan, todo_rel, command, head.sha)
    pinned = ctx.trigger.pin
    if pinned is not None and not head.sha.startswith(pinned.lower()):
        body += (
            f"\n⚠️ The head is `{head.sha[:12]}`, not the commit you pinned "
            f"({code(pinned[:40])}): the plan is read from the head; review it before running.\n"
        )
    elif pinned is not None:
        body += f"\n`plan` does not use a pin: the plan is read from the head, `{head.sha[:12]}`.\n"
    if head.fork and the_plan.waves:
        body += (
            f"\nThat command pins the fork's head, `{head.sha[:12]}`: comment it only after "
            "reviewing that commit.\n"
        )
    ctx.reply(body)
    ctx.wf.notice(
        f"batchaction: replied with the plan for {format_selection(the_plan.selection)} "
        f"on {head.sha[:12]}; nothing was run"
    )
    return EXIT_OK
