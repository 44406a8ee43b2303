"""The live progress comment and check run of an action run: opened when the run is accepted
(``open_live``), and closed by a later step when the job was cancelled (``finalize: true``).

A cancelled job's step gets SIGINT, then SIGKILL about 10 s later; the action uses that time
to finalise both (``midpush``), but a run killed before it could (a runner lost, a second
cancellation) would leave a comment saying "running" and a check run in progress forever. A
step with ``if: cancelled()`` and ``finalize: true`` runs after it: it finds the comments of
this run (``run=<run id>-<attempt>`` in the mark, ``liveview.MARK``) still marked ``running``,
written by a bot (a commenter cannot forge a comment in the bot's name), edits them to say
``cancelled``, and completes the check run named in the mark, once the API confirms the check
run is this run's (its ``external_id``) and still open. It runs no task and pushes nothing.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from batchaction.checkrun import CheckRun
from batchaction.errors import EXIT_OK
from batchaction.github import GitHubError
from batchaction.livecomment import LiveComment
from batchaction.liveview import MARK, Board, mark
from batchaction.planner import Plan
from batchaction.selection import format_selection
from batchaction.settings import Settings
from batchaction.taskrun import Reporter
from batchaction.workflow import run_key

if TYPE_CHECKING:
    from batchaction.actioncontext import Context

CANCELLED = (
    "🚫 **batchaction** cancelled: the job was cancelled before the run could report. Below is "
    "the run's last update; tasks shown running were stopped, and statuses pushed during the "
    "run stay on the branch."
)


def open_live(
    ctx: Context, settings: Settings, plan: Plan, reporter: Reporter, sha: str
) -> Reporter:
    """For a comment-triggered run: create the check run (``check-run``) and post the live
    comment on ``ctx``; the reporter the scheduler should use (``reporter`` otherwise)."""
    trigger = ctx.trigger
    if ctx.gh is None or trigger.kind != "comment" or trigger.pr_number is None:
        return reporter

    def warn(message: str) -> None:
        ctx.wf.command("warning", message)

    board = Board(plan, settings.command, sha, ctx.run_url())
    name = f"{settings.command} {format_selection(plan.selection)}"
    if settings.check_run:
        ctx.check = CheckRun(
            ctx.gh, trigger.owner, trigger.repo, name=name, details_url=ctx.run_url(),
            external_id=run_key(ctx.env), warn=warn,
        )  # fmt: skip
        ctx.check.start(sha, f"Running {name}", f"Running {len(plan.run)} task(s).")
    live = LiveComment(
        ctx.gh, (trigger.owner, trigger.repo, trigger.pr_number), reporter, board,
        interval=settings.progress_interval, run_key=run_key(ctx.env), warn=warn,
        check=ctx.check, secrets=ctx.secret_forms(),
    )  # fmt: skip
    live.open()
    ctx.live = live
    return live


def finalize_cancelled(ctx: Context) -> int:
    """``finalize: true``: mark this run's comments still ``running`` and their check run
    ``cancelled`` (see the module docstring). Exit 0; API errors are warnings."""
    trigger, gh = ctx.trigger, ctx.gh
    if gh is None or trigger.kind != "comment" or trigger.pr_number is None:
        ctx.wf.notice("batchaction: finalize: not a comment-triggered run; nothing to finalise")
        return EXIT_OK
    key = run_key(ctx.env)
    since = trigger.commented_at or (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    try:
        comments = gh.comments_since(trigger.owner, trigger.repo, trigger.pr_number, since)
    except GitHubError as exc:
        ctx.wf.command("warning", f"finalize: could not list the comments: {exc}")
        return EXIT_OK
    done = 0
    for comment in comments:
        found = _running_mark(comment, key)
        if found is None:
            continue
        check_id, rest = found
        body = f"{mark(key, 'cancelled', check_id)}\n{CANCELLED}\n\n{rest}"
        try:
            gh.edit_comment(trigger.owner, trigger.repo, int(comment["id"]), body)
            done += 1
        except GitHubError as exc:
            ctx.wf.command("warning", f"finalize: could not edit the progress comment: {exc}")
        if check_id is not None:
            _cancel_check(ctx, check_id, key)
    ctx.wf.notice(f"batchaction: finalize: {done} progress comment(s) marked cancelled")
    return EXIT_OK


def _running_mark(comment: dict[str, Any], key: str) -> tuple[int | None, str] | None:
    """(check run id, the body after the mark and the header line) of a bot's comment of run
    ``key`` still marked ``running``; None for any other comment."""
    user = comment.get("user") or {}
    body = comment.get("body")
    if not isinstance(user, dict) or user.get("type") != "Bot" or not isinstance(body, str):
        return None
    if type(comment.get("id")) is not int:
        return None
    lines = body.split("\n")
    for index, line in enumerate(lines[:2]):  # after gh.comment's own marker, if any
        match = MARK.fullmatch(line.strip())
        if match is not None:
            if match["run"] != key or match["state"] != "running":
                return None
            rest = "\n".join(lines[index + 2 :]).lstrip("\n")  # the "running" header goes
            return (int(match["check"]) if match["check"] else None), rest
    return None


def _cancel_check(ctx: Context, check_id: int, key: str) -> None:
    assert ctx.gh is not None
    owner, repo = ctx.trigger.owner, ctx.trigger.repo
    try:
        found = ctx.gh.check_run(owner, repo, check_id)
        if found.get("external_id") != key or found.get("status") == "completed":
            return
        ctx.gh.update_check_run(owner, repo, check_id, {
            "status": "completed", "conclusion": "cancelled",
            "completed_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "output": {"title": "Cancelled", "summary": CANCELLED},
        })  # fmt: skip
    except GitHubError as exc:
        ctx.wf.command("warning", f"finalize: could not complete the check run: {exc}")
