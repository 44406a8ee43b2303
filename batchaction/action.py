"""``batchaction action``: the container entrypoint (SPEC 8).

Reads ``GITHUB_*`` and ``INPUT_*``; decides whether the event asks for a run; gates it on the
commenter's permission and the pull request's origin; runs the batch on the PR head; commits
the statuses back; publishes outputs, the job summary, annotations and a reply.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from batchaction import executoruser, gate, gitops
from batchaction.actioncontext import Context
from batchaction.commandhelp import is_help, plan_selection, usage
from batchaction.commitphase import collector, commit_and_publish
from batchaction.driverguard import DriverGuard
from batchaction.errors import EXIT_INVALID_INPUT, EXIT_OK, EXIT_TASKS_FAILED, BatchError
from batchaction.executor import WORKFLOW_FILE_VARIABLES
from batchaction.finalize import finalize_cancelled, open_live
from batchaction.gate import Head, checkout_head, ensure_safe_directory, gate_comment
from batchaction.ghevent import decide, load_event
from batchaction.github import GitHub
from batchaction.inert import redact, secret_forms
from batchaction.keptwork import branch_prefix
from batchaction.loading import read_and_plan, status_table
from batchaction.midpush import for_action
from batchaction.prcommand import answer_plan, head_todo, resolve_retry
from batchaction.progress import HumanReporter, final_report
from batchaction.publishing import log_dir_for
from batchaction.remoteconfig import ConfigGuard
from batchaction.retry import RetryRequest, parse_request
from batchaction.runlimits import environment_defaults
from batchaction.runner import RunRequest, execute, open_workspaces
from batchaction.settings import Settings, resolve
from batchaction.signals import recorded_signals
from batchaction.tokenhandoff import received
from batchaction.workflow import Workflow
from batchaction.writeback import StatusChange

# Inputs that are not Settings keys.
ACTION_ONLY = ("github-token", "push-token", "config", "finalize")


def read_inputs(env: Mapping[str, str]) -> dict[str, str]:
    """``INPUT_MAX-PARALLEL`` -> ``{"max-parallel": ...}``; empty inputs count as unset."""
    keys = [name.replace("_", "-") for name in Settings.__dataclass_fields__] + list(ACTION_ONLY)
    values = {}
    for key in keys:
        value = env.get(f"INPUT_{key.upper()}") or env.get(f"INPUT_{key.upper().replace('-', '_')}")
        if value is not None and value.strip():
            values[key] = value.strip() if key != "executor" else value
    return values


def run_action(env: Mapping[str, str] | None = None, out: TextIO | None = None) -> int:
    # The token is not in os.environ: it was handed over through a pipe (tokenhandoff).
    env = dict(os.environ, **received()) if env is None else dict(env)
    wf = Workflow(env, out)
    try:
        return _run(env, wf)
    except BatchError as exc:
        wf.error(str(exc))
        print(f"batchaction: error: {exc}", file=sys.stderr)
        return exc.exit_code


def _run(env: dict[str, str], wf: Workflow) -> int:
    workspace = Path(os.path.realpath(env.get("GITHUB_WORKSPACE") or os.getcwd()))
    os.chdir(workspace)
    inputs = read_inputs(env)
    token = inputs.pop("github-token", None) or env.get("GITHUB_TOKEN") or None
    push_token = inputs.pop("push-token", None)  # for pushes to the PR's branch only
    for form in secret_forms(token or "") + secret_forms(push_token or ""):
        wf.mask(form)
    config = inputs.pop("config", None)
    event_name = env.get("GITHUB_EVENT_NAME", "")
    payload = load_event(env.get("GITHUB_EVENT_PATH"))
    # The event decides first: an unrelated event must not fail on configuration. The
    # configuration file may still set `command` and `allow-edits`; when it cannot be read,
    # the inputs and defaults decide and the error is reported once the event matters.
    try:
        settings: Settings | BatchError = resolve(
            inputs, Path(config) if config else None, base=workspace,
            defaults=environment_defaults(env, action=True),
        )  # fmt: skip
    except BatchError as exc:
        settings = exc
    if isinstance(settings, Settings):
        command, allow_edits = settings.command, settings.allow_edits
    else:
        command = inputs.get("command") or Settings.command
        allow_edits = inputs.get("allow-edits", "").strip().lower() == "true"
    trigger = decide(
        event_name,
        payload,
        env,
        command=command,
        allow_edits=allow_edits,
        tasks_input=inputs.get("tasks"),
    )
    if trigger.kind == "ignore":
        wf.notice(f"batchaction: {trigger.reason}; nothing to run")
        return EXIT_OK
    api = env.get("GITHUB_API_URL", "https://api.github.com")
    gh = GitHub(api, token) if trigger.kind == "comment" else None
    ctx = Context(env, wf, workspace, token, gh, trigger, push_token=push_token)
    if inputs.get("finalize", "").lower() == "true":
        try:
            return finalize_cancelled(ctx)
        finally:
            if gh is not None:
                gh.close()
    try:
        return _gated_run(ctx, settings)
    except KeyboardInterrupt:  # SIGINT before the scheduler handles signals
        ctx.abandon("interrupted before the tasks started", "cancelled")
        raise
    except BaseException as exc:
        # The live comment and the check run must not say "running" after the action ended.
        ctx.abandon(str(exc) if isinstance(exc, BatchError) else f"internal error: {exc!r}")
        raise
    finally:
        if ctx.live is not None:
            ctx.live.close()
        if gh is not None:
            gh.close()


def _gated_run(ctx: Context, settings: Settings | BatchError) -> int:
    env, wf, workspace, trigger = ctx.env, ctx.wf, ctx.workspace, ctx.trigger
    if isinstance(settings, BatchError):
        # Said in the run's log only: a commenter without permission gets no reply.
        wf.error(f"invalid configuration: {settings}")
        return EXIT_INVALID_INPUT
    ensure_safe_directory(workspace)
    head: Head | None = None
    if trigger.kind == "comment" and is_help(trigger.selection):
        return gate.answer_help(ctx, settings)
    if trigger.kind == "comment" and (asked := plan_selection(trigger.selection)) is not None:
        return answer_plan(ctx, settings, asked)
    if trigger.kind == "comment":
        gated = gate_comment(ctx, settings)
        if isinstance(gated, int):
            return gated
        head = gated
        branch, sha = head.branch, head.sha
    else:
        branch = trigger.branch or gitops.current_branch(workspace) or ""
        sha = gitops.head(workspace)
    try:
        selection = parse_request(trigger.selection, settings.max_tasks)  # or `failed`
    except BatchError as exc:
        return ctx.refuse(str(exc), EXIT_INVALID_INPUT, advice=usage(settings.command))
    if not settings.executor:
        return ctx.refuse("no executor: set the action's `executor` input", EXIT_INVALID_INPUT)
    if ctx.persisted_credentials():
        where = (
            "the checkout left the token in .git/config (`http.<url>.extraheader`), where "
            "every executor can read it"
        )
        if settings.allow_forks:
            return ctx.refuse(
                f"{where}: with `allow-forks: true` that is not allowed; set "
                "`persist-credentials: false` on actions/checkout",
                EXIT_INVALID_INPUT,
            )
        wf.command(
            "warning",
            f"{where}: set `persist-credentials: false` on actions/checkout (batchaction "
            "passes its token to git itself)",
        )
    if trigger.kind == "comment":
        ctx.react("eyes")
        assert head is not None
        problem = checkout_head(ctx, head)
        if problem:
            return ctx.refuse(problem, EXIT_TASKS_FAILED)
    ctx.guard = ConfigGuard(workspace)
    gitops.check_drivers(DriverGuard(workspace).problem)  # no task-made filter runs in ours
    # Look for the TODO file on the PR head, not on the default branch checked out before.
    try:
        todo = head_todo(workspace, settings)
        if head is not None:
            refused = gate.approve_head(ctx, head, todo, settings.command)
            if refused is not None:
                return refused
    except BatchError as exc:
        return ctx.refuse(str(exc), EXIT_INVALID_INPUT)
    if isinstance(selection, RetryRequest):  # `failed`: read on the head's TODO file
        picked = resolve_retry(ctx, settings, todo, selection, sha)
        if isinstance(picked, int):
            return picked
        selection = picked
    table = status_table(settings)
    try:
        doc, the_plan = read_and_plan(settings, todo, selection)
    except BatchError as exc:
        return ctx.refuse(str(exc), exc.exit_code)
    todo_rel = os.path.relpath(os.path.realpath(todo), workspace)
    for warning in the_plan.warnings:
        wf.command("warning", warning)
    if problem := executoruser.activate(settings.executor_user, workspace, env):
        return ctx.refuse(problem, EXIT_INVALID_INPUT)
    reporter = HumanReporter(len(the_plan.run) + len(the_plan.blocked), out=sys.stderr)
    try:
        workspaces = open_workspaces(
            settings, workspace, workspace, workspace / todo_rel, reporter,
            branch_prefix=branch_prefix(trigger, env),
            committer={k: v for k, v in gitops.identity_env().items() if "COMMITTER" in k},
            tasks=len(the_plan.run),
        )  # fmt: skip
    except BatchError as exc:
        return ctx.refuse(str(exc), exc.exit_code)
    if workspaces is not None and settings.add_paths:
        wf.command(
            "warning",
            "add-paths is for `isolation: none`: in worktrees everything a task leaves is "
            "committed on its behalf, and nothing else is",
        )
    shown = open_live(ctx, settings, the_plan, reporter, sha)  # + the live comment
    applied: list[StatusChange] = []
    status_commits: dict[str, gitops.StatusCommit] = {}
    on_write = collector(ctx, settings, applied, todo_rel, status_commits, workspaces=workspaces)
    early = for_action(
        ctx, settings, workspaces, branch=branch, sha=sha, todo_rel=todo_rel,
        fork=head.fork if head else None, lists=(applied, status_commits),
    )  # fmt: skip
    result = execute(
        RunRequest(
            settings=settings,
            todo=Path(todo_rel),
            doc=doc,
            plan=the_plan,
            reporter=shown,
            cwd=workspace,
            secrets=tuple(t for t in (ctx.token, ctx.push_token) if t),
            environ={k: v for k, v in env.items() if k not in WORKFLOW_FILE_VARIABLES},
            on_write=early.watch(on_write),
            workspaces=workspaces,
            log_dir=log_dir_for(workspace, env),
            limits=early.limits(reporter.notice),
        )
    )
    # A task can print the token (its parent's /proc/<pid>/environ holds it): nothing of it
    # reaches the summary, the outputs, the reply or the job summary.
    summary = redact(result.summary, ctx.secret_forms())
    print(final_report(summary), file=sys.stderr)
    code = result.exit_code
    with recorded_signals() as received:
        code = commit_and_publish(
            ctx,
            settings,
            summary=summary,
            applied=applied,
            status_commits=status_commits,
            branch=branch,
            sha=early.base_for(sha),  # the tip last pushed during the run, if any
            fork=head.fork if head else None,
            todo_rel=todo_rel,
            code=code,
            table=table,
            received=received,
            early=early,
        )
    if received and code < 128:
        code = 128 + received[0]
    return code
