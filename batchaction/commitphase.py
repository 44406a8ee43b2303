"""The action's closing phase: the status commits made as statuses change (``commit:
each``), then the commit-back to the pull request's branch and the publication of the outputs,
job summary, reaction and reply, which happen whatever the commit-back's fate."""

from __future__ import annotations

import signal
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batchaction import gitops
from batchaction.errors import EXIT_OK, EXIT_TASKS_FAILED
from batchaction.keptwork import keep_branches
from batchaction.midpush import MidPush
from batchaction.publishing import changed_paths, publish
from batchaction.settings import Settings
from batchaction.status import StatusTable
from batchaction.summary import render_markdown
from batchaction.workspaces import Workspaces
from batchaction.writeback import PatchResult, StatusChange

if TYPE_CHECKING:
    from batchaction.actioncontext import Context


def collector(
    ctx: Context,
    settings: Settings,
    applied: list[StatusChange],
    todo_rel: str,
    status_commits: dict[str, gitops.StatusCommit],
    *,
    workspaces: Workspaces | None,
) -> Callable[[PatchResult], None]:
    """Record each applied status change; with ``commit: each`` also commit it, on the
    integration tip when tasks run in worktrees (the workspace's branch moves to that tip at
    the end), else in the workspace."""

    def collect(patch: PatchResult) -> None:
        applied.extend(patch.applied)
        if settings.commit == "each" and patch.applied:
            outcomes = {c.number: c.outcome for c in patch.applied}
            message = gitops.commit_message(outcomes, settings.commit_message)
            bot = gitops.identity_env()
            todo = workspaces.todo if workspaces is not None else ctx.workspace / todo_rel
            if problem := gitops.todo_problem(todo):
                ctx.wf.command("warning", f"could not commit a status change: {problem}")
                return
            try:
                if workspaces is not None:
                    sha = workspaces.commit_todo(message, bot)
                else:
                    sha = gitops.commit_paths(ctx.workspace, [todo_rel], message, bot, text=True)
            except (gitops.GitError, OSError, UnicodeDecodeError) as exc:
                ctx.wf.command("warning", f"could not commit a status change: {exc}")
                return
            if sha is not None:
                # Kept so that a lost push race re-applies these changes, never rebases them.
                status_commits[sha] = (patch.applied, message)

    return collect


def commit_and_publish(
    ctx: Context,
    settings: Settings,
    *,
    summary: dict[str, Any],
    applied: list[StatusChange],
    status_commits: Mapping[str, gitops.StatusCommit],
    branch: str,
    sha: str,
    fork: str | None,
    todo_rel: str,
    code: int,
    table: StatusTable,
    received: list[int],
    early: MidPush,
) -> int:
    """Commit, push and publish; an interrupt here stops retries but never cuts a step."""
    wf, workspace, trigger = ctx.wf, ctx.workspace, ctx.trigger

    def stop_if_interrupted() -> None:
        if received:
            raise gitops.GitError(("push",), 128 + received[0], "interrupted: push abandoned")

    if fork is not None and settings.commit != "never":
        wf.command(
            "warning",
            f"the tasks ran on a head in the fork {fork}: the status changes were not pushed "
            "(this repository's token cannot push there)",
        )
    elif settings.commit != "never" and branch:
        outcomes = {t["number"]: t["outcome"] for t in summary["tasks"]}
        try:
            committed = gitops.commit_back(
                workspace,
                todo=Path(todo_rel),
                base=sha,
                branch=branch,
                changes=applied,
                message=gitops.commit_message(outcomes, settings.commit_message),
                extra_paths=changed_paths(workspace, settings.add_paths, todo_rel),
                table=table,
                markers=dict(settings.status_markers),
                access=ctx.push_access(),  # the push-token, when given
                status_commits=status_commits,
                before_push=stop_if_interrupted,
            )
        except (gitops.GitError, OSError) as exc:
            # A leftover index.lock, an unmerged index, a full disk: reported, and the
            # outputs, job summary and reply below are still produced.
            message = exc.message if isinstance(exc, gitops.GitError) else str(exc)
            committed = gitops.CommitResult(None, False, 0, branch, f"could not commit: {message}")
        summary["commit"] = early.settle(committed).as_summary()
        if ctx.push_refused:  # pushed all the same, with the github-token: no CI runs on it
            summary["commit"]["push_token_refused"] = True
            summary["warnings"].append(ctx.push_refused[-1])
        if committed.error:
            wf.error(f"the status commit was not pushed: {committed.error}")
            code = max(code, EXIT_TASKS_FAILED)
            if summary["result"] == "success":
                summary["result"] = "failure"
        code = max(code, keep_branches(ctx, settings, summary, lambda: bool(received)))
    elif settings.commit != "never":
        wf.command("warning", "not on a branch: the status changes were not committed")
    if received and summary.get("interrupted_by") is None:
        # The tasks had finished; the step itself was interrupted (it exits 128+N).
        summary["interrupted_by"] = signal.Signals(received[0]).name
        summary["result"] = "interrupted"
    markdown = render_markdown(summary)
    early.rewind()  # the job summary published at the interrupt is replaced by this one
    publish(ctx, summary, markdown, workspace / todo_rel, todo_rel, excerpt=settings.log_excerpt)
    if trigger.kind == "comment":
        ctx.react("rocket" if code == EXIT_OK and not received else "confused")
        ran_on = f"{ctx.approval.describe()} " if ctx.approval else ""
        # One reply: the one made at the interrupt stands, unless it is the live comment,
        # which the final summary replaces.
        live = ctx.live is not None and ctx.live.comment_id is not None
        if not early.replied or live:
            ctx.reply(markdown + f"\n{ran_on}[Run log]({ctx.run_url()})\n")
        commit = summary["commit"]
        ctx.conclude(summary, markdown, commit["sha"] if commit["pushed"] else None)
    return code
