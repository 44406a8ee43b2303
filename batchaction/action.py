"""``batchaction action``: the container entrypoint (SPEC 8).

Reads ``GITHUB_*`` and ``INPUT_*``; decides whether the event asks for a run; gates it on the
commenter's permission and the pull request's origin; runs the batch on the PR head; commits
the statuses back; publishes outputs, the job summary, annotations and a reply.
"""

from __future__ import annotations

import base64
import os
import signal
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from batchaction import gitops
from batchaction.errors import EXIT_INVALID_INPUT, EXIT_OK, EXIT_TASKS_FAILED, BatchError
from batchaction.executor import WORKFLOW_FILE_VARIABLES
from batchaction.gate import Head, checkout_head, ensure_safe_directory, gate_comment
from batchaction.ghevent import Trigger, decide, load_event
from batchaction.github import GitHub, GitHubError
from batchaction.inert import inert, redact, secret_forms
from batchaction.keptwork import branch_prefix, keep_branches
from batchaction.loading import read_and_plan, status_table
from batchaction.progress import HumanReporter, final_report
from batchaction.publishing import changed_paths, log_dir_for, publish
from batchaction.runner import RunRequest, execute, open_workspaces
from batchaction.selection import parse_selection
from batchaction.settings import Settings, find_todo, resolve
from batchaction.signals import recorded_signals
from batchaction.status import StatusTable
from batchaction.workflow import Workflow
from batchaction.workspaces import Workspaces
from batchaction.writeback import PatchResult, StatusChange

COMMENT_LIMIT = 65_000
# Inputs that are not Settings keys.
ACTION_ONLY = ("github-token", "config")


def read_inputs(env: Mapping[str, str]) -> dict[str, str]:
    """``INPUT_MAX-PARALLEL`` -> ``{"max-parallel": ...}``; empty inputs count as unset."""
    keys = [name.replace("_", "-") for name in Settings.__dataclass_fields__] + list(ACTION_ONLY)
    values = {}
    for key in keys:
        value = env.get(f"INPUT_{key.upper()}") or env.get(f"INPUT_{key.upper().replace('-', '_')}")
        if value is not None and value.strip():
            values[key] = value.strip() if key != "executor" else value
    return values


def inside(path: Path, root: Path) -> bool:
    real = Path(os.path.realpath(path))
    return real == root or root in real.parents


@dataclass
class Context:
    env: Mapping[str, str]
    wf: Workflow
    workspace: Path
    token: str | None
    gh: GitHub | None
    trigger: Trigger

    def react(self, content: str) -> None:
        if self.gh is None or self.trigger.comment_id is None:
            return
        try:
            self.gh.react(self.trigger.owner, self.trigger.repo, self.trigger.comment_id, content)
        except GitHubError as exc:
            self.wf.command("warning", f"could not add a reaction: {exc}")

    def reply(self, body: str) -> None:
        if self.gh is None or self.trigger.pr_number is None:
            return
        if len(body) > COMMENT_LIMIT:
            link = self.run_url()
            body = body[: COMMENT_LIMIT - 300].rsplit("\n", 1)[0] + (
                f"\n\n…(truncated: the whole summary is in [the run]({link}))\n"
            )
        try:
            self.gh.comment(self.trigger.owner, self.trigger.repo, self.trigger.pr_number, body)
        except GitHubError as exc:
            self.wf.command("warning", f"could not reply on the pull request: {exc}")

    def run_url(self) -> str:
        server = self.env.get("GITHUB_SERVER_URL", "https://github.com")
        repo = self.env.get("GITHUB_REPOSITORY", f"{self.trigger.owner}/{self.trigger.repo}")
        return f"{server}/{repo}/actions/runs/{self.env.get('GITHUB_RUN_ID', '')}"

    def refuse(self, why: str, code: int = EXIT_OK) -> int:
        """Say no on the PR (😕) and in the log; run nothing, push nothing."""
        self.wf.notice(f"batchaction did not run: {why}")
        self.react("confused")
        self.reply(f"😕 **batchaction** did not run: {inert(why)}")
        return code

    def persisted_credentials(self) -> bool:
        """Whether the workspace's git config holds an ``http.*.extraheader`` (what
        actions/checkout leaves unless ``persist-credentials: false``)."""
        existing = gitops.git(
            "config", "--get-regexp", r"^http\..*\.extraheader$", cwd=self.workspace, check=False
        )
        return bool(existing.stdout.strip())

    def git_auth_env(self) -> dict[str, str]:
        """Token auth for fetch/push, passed per command so it is never stored in .git/config."""
        if not self.token:
            return {}
        if self.persisted_credentials():
            return {}  # the checkout left credentials: use them
        server = self.env.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
        basic = base64.b64encode(f"x-access-token:{self.token}".encode()).decode()
        return {
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": f"http.{server}/.extraheader",
            "GIT_CONFIG_VALUE_0": f"AUTHORIZATION: basic {basic}",
        }


def run_action(env: Mapping[str, str] | None = None, out: TextIO | None = None) -> int:
    env = dict(os.environ if env is None else env)
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
    for form in secret_forms(token or ""):
        wf.mask(form)
    config = inputs.pop("config", None)
    event_name = env.get("GITHUB_EVENT_NAME", "")
    payload = load_event(env.get("GITHUB_EVENT_PATH"))
    # The event decides first: an unrelated event must not fail on configuration. The
    # configuration file may still set `command` and `allow-edits`; when it cannot be read,
    # the inputs and defaults decide and the error is reported once the event matters.
    try:
        settings: Settings | BatchError = resolve(
            inputs, Path(config) if config else None, base=workspace
        )
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
    ctx = Context(env, wf, workspace, token, gh, trigger)
    try:
        return _gated_run(ctx, settings)
    finally:
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
        selection = parse_selection(trigger.selection, settings.max_tasks)
    except BatchError as exc:
        return ctx.refuse(str(exc), EXIT_INVALID_INPUT)
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
    # Look for the TODO file on the PR head, not on the default branch checked out before.
    try:
        todo = find_todo(settings.todo_path, base=workspace)
        if not inside(todo, workspace):
            named = settings.todo_path or os.path.relpath(todo, workspace)
            raise BatchError(
                f"todo-path {named!r} leads outside the workspace: use a path inside the repository"
            )
    except BatchError as exc:
        return ctx.refuse(str(exc), EXIT_INVALID_INPUT)
    table = status_table(settings)
    try:
        doc, the_plan = read_and_plan(settings, todo, selection)
    except BatchError as exc:
        return ctx.refuse(str(exc), exc.exit_code)
    todo_rel = os.path.relpath(os.path.realpath(todo), workspace)
    for warning in the_plan.warnings:
        wf.command("warning", warning)
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
    applied: list[StatusChange] = []
    status_commits: dict[str, gitops.StatusCommit] = {}
    on_write = _collector(ctx, settings, applied, todo_rel, status_commits, workspaces=workspaces)
    result = execute(
        RunRequest(
            settings=settings,
            todo=Path(todo_rel),
            doc=doc,
            plan=the_plan,
            reporter=reporter,
            cwd=workspace,
            secrets=(ctx.token,) if ctx.token else (),
            environ={k: v for k, v in env.items() if k not in WORKFLOW_FILE_VARIABLES},
            on_write=on_write,
            workspaces=workspaces,
            log_dir=log_dir_for(workspace, env),
        )
    )
    # A task can print the token (its parent's /proc/<pid>/environ holds it): nothing of it
    # reaches the summary, the outputs, the reply or the job summary.
    summary = redact(result.summary, secret_forms(ctx.token or ""))
    print(final_report(summary), file=sys.stderr)
    code = result.exit_code
    with recorded_signals() as received:
        code = _commit_and_publish(
            ctx,
            settings,
            summary=summary,
            applied=applied,
            status_commits=status_commits,
            branch=branch,
            sha=sha,
            fork=head.fork if head else None,
            todo_rel=todo_rel,
            code=code,
            table=table,
            received=received,
        )
    if received and code < 128:
        code = 128 + received[0]
    return code


def _collector(
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
            try:
                if workspaces is not None:
                    sha = workspaces.commit_todo(message, bot)
                else:
                    sha = gitops.commit_paths(ctx.workspace, [todo_rel], message, bot)
            except (gitops.GitError, OSError, UnicodeDecodeError) as exc:
                ctx.wf.command("warning", f"could not commit a status change: {exc}")
                return
            if sha is not None:
                # Kept so that a lost push race re-applies these changes, never rebases them.
                status_commits[sha] = (patch.applied, message)

    return collect


def _commit_and_publish(
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
                remote_env=ctx.git_auth_env(),
                status_commits=status_commits,
                before_push=stop_if_interrupted,
            )
        except (gitops.GitError, OSError) as exc:
            # A leftover index.lock, an unmerged index, a full disk: reported, and the
            # outputs, job summary and reply below are still produced.
            message = exc.message if isinstance(exc, gitops.GitError) else str(exc)
            committed = gitops.CommitResult(None, False, 0, branch, f"could not commit: {message}")
        summary["commit"] = committed.as_summary()
        if committed.error:
            wf.error(f"the status commit was not pushed: {committed.error}")
            code = max(code, EXIT_TASKS_FAILED)
        code = max(code, keep_branches(ctx, settings, summary, lambda: bool(received)))
    elif settings.commit != "never":
        wf.command("warning", "not on a branch: the status changes were not committed")
    if received and summary.get("interrupted_by") is None:
        # The tasks had finished; the step itself was interrupted (it exits 128+N).
        summary["interrupted_by"] = signal.Signals(received[0]).name
        summary["result"] = "interrupted"
    from batchaction.summary import render_markdown  # noqa: PLC0415

    markdown = render_markdown(summary)
    publish(ctx, summary, markdown, workspace / todo_rel, todo_rel)
    if trigger.kind == "comment":
        ctx.react("rocket" if code == EXIT_OK and not received else "confused")
        ctx.reply(markdown + f"\n[Run log]({ctx.run_url()})\n")
    return code
