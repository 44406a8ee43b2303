"""``batchaction action``: the container entrypoint (SPEC 8).

Reads ``GITHUB_*`` and ``INPUT_*``; decides whether the event asks for a run; gates it on the
commenter's permission and the pull request's origin; runs the batch on the PR head; commits
the statuses back; publishes outputs, the job summary, annotations and a reply.
"""

from __future__ import annotations

import base64
import dataclasses
import fnmatch
import json
import os
import signal
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, TextIO

from batchaction import gitops
from batchaction.errors import EXIT_INVALID_INPUT, EXIT_OK, EXIT_TASKS_FAILED, BatchError
from batchaction.executor import WORKFLOW_FILE_VARIABLES
from batchaction.ghevent import ROLE_RANK, Trigger, decide, load_event, permission_rank
from batchaction.github import GitHub, GitHubError
from batchaction.loading import read_and_plan, status_table
from batchaction.progress import HumanReporter, final_report
from batchaction.runner import RunRequest, execute
from batchaction.selection import format_selection, parse_selection
from batchaction.settings import Settings, find_todo, resolve
from batchaction.signals import recorded_signals
from batchaction.status import StatusTable
from batchaction.textlines import read_todo_text
from batchaction.todo import parse_todo
from batchaction.workflow import Workflow
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
        self.reply(f"😕 **batchaction** did not run: {why}")
        return code

    def git_auth_env(self) -> dict[str, str]:
        """Token auth for fetch/push, passed per command so it is never stored in .git/config."""
        if not self.token:
            return {}
        existing = gitops.git(
            "config", "--get-regexp", r"^http\..*\.extraheader$", cwd=self.workspace, check=False
        )
        if existing.stdout.strip():
            return {}  # the checkout left credentials: use them
        server = self.env.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
        basic = base64.b64encode(f"x-access-token:{self.token}".encode()).decode()
        return {
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": f"http.{server}/.extraheader",
            "GIT_CONFIG_VALUE_0": f"AUTHORIZATION: basic {basic}",
        }


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


def gate_comment(ctx: Context, settings: Settings) -> Head | int:
    """Permission and fork checks; the PR head to run on, or an exit code after refusing."""
    trigger = ctx.trigger
    assert ctx.gh is not None
    assert trigger.pr_number is not None
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
    if head_repo != base_repo:
        if not settings.allow_forks:
            return ctx.refuse(
                f"the head of #{trigger.pr_number} is in a fork ({head_repo}); "
                "set `allow-forks: true` to run tasks on fork branches (they are not pushed)"
            )
        # GitHub keeps every pull request's head in the base repository as refs/pull/N/head.
        return Head(
            f"pr-{trigger.pr_number}", sha, f"refs/pull/{trigger.pr_number}/head", head_repo
        )
    return Head(ref, sha, f"refs/heads/{ref}")


def checkout_head(ctx: Context, head: Head) -> str | None:
    """Put the workspace on the head's branch at its sha; an error message on failure."""
    env = ctx.git_auth_env()
    branch, sha = head.branch, head.sha
    fetched = gitops.git(
        "fetch",
        "--quiet",
        "--no-tags",
        "origin",
        f"+{head.fetch_ref}:refs/remotes/origin/{branch}",
        cwd=ctx.workspace,
        env=env,
        check=False,
    )
    if fetched.returncode != 0:
        return f"could not fetch {head.fetch_ref}: {fetched.stderr.strip()[-500:]}"
    known = gitops.git("cat-file", "-e", f"{sha}^{{commit}}", cwd=ctx.workspace, check=False)
    if known.returncode != 0:
        return f"commit {sha[:12]} of {branch} is no longer on the branch (force-pushed?)"
    switched = gitops.git("checkout", "--quiet", "-B", branch, sha, cwd=ctx.workspace, check=False)
    if switched.returncode != 0:
        return f"could not check out {branch}: {switched.stderr.strip()[-500:]}"
    return None


def changed_paths(workspace: Path, patterns: tuple[str, ...], todo_rel: str) -> list[str]:
    if not patterns:
        return []
    status = gitops.git("status", "--porcelain", "-z", "--untracked-files=all", cwd=workspace)
    paths = [entry[3:] for entry in status.stdout.split("\0") if len(entry) > 3]
    return sorted(
        p for p in paths if p != todo_rel and any(fnmatch.fnmatch(p, pat) for pat in patterns)
    )


def publish(
    ctx: Context, summary: dict[str, Any], markdown: str, todo: Path, todo_rel: str
) -> None:
    wf = ctx.wf
    tasks = summary["tasks"]

    def numbers(*outcomes: str) -> str:
        return format_selection(t["number"] for t in tasks if t["outcome"] in outcomes)

    wf.set_outputs(
        {
            "result": summary["result"],
            "completed": numbers("completed"),
            "failed": numbers("failed", "timed-out"),
            "blocked": numbers("blocked"),
            "skipped": format_selection(s["number"] for s in summary["skipped"]),
            "waves": json.dumps(summary["waves"]),
            "summary-json": json.dumps(summary),
            # Only a commit that reached the branch: an unpushed one exists nowhere else.
            "commit-sha": (summary["commit"]["sha"] or "") if summary["commit"]["pushed"] else "",
        }
    )
    wf.step_summary(markdown)
    try:
        doc = parse_todo(read_todo_text(todo))
        lines = {t.number: (t.field("status") or t.fields[0]).line + 1 for t in doc.tasks}
    except BatchError:
        lines = {}
    for task in tasks:
        if task["outcome"] in ("failed", "timed-out"):
            wf.error(
                f"task {task['number']} {task['outcome']}: {task['reason']}",
                file=todo_rel,
                line=lines.get(task["number"]),
            )
        if task["log_path"] and Path(task["log_path"]).is_file():
            with Path(task["log_path"]).open(encoding="utf-8", errors="replace") as log:
                wf.group(f"Task {task['number']}: {task['title']} ({task['outcome']})", log)


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
    if token:
        wf.mask(token)
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
    applied: list[StatusChange] = []
    status_commits: dict[str, gitops.StatusCommit] = {}
    on_write = _collector(ctx, settings, applied, todo_rel, status_commits)
    for warning in the_plan.warnings:
        wf.command("warning", warning)
    if settings.isolation == "worktree":
        wf.command(
            "warning",
            "isolation: worktree is not available in the action yet (its commit-back pushes "
            "the work tree as it is): the tasks share the workspace",
        )
    # Until the commit-back pushes integrated history, the action runs every task in the
    # workspace, as before.
    settings = dataclasses.replace(settings, isolation="none")
    result = execute(
        RunRequest(
            settings=settings,
            todo=Path(todo_rel),
            doc=doc,
            plan=the_plan,
            reporter=HumanReporter(len(the_plan.run) + len(the_plan.blocked), out=sys.stderr),
            cwd=workspace,
            secrets=(ctx.token,) if ctx.token else (),
            environ={k: v for k, v in env.items() if k not in WORKFLOW_FILE_VARIABLES},
            on_write=on_write,
        )
    )
    summary = result.summary
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
) -> Callable[[PatchResult], None]:
    def collect(patch: PatchResult) -> None:
        applied.extend(patch.applied)
        if settings.commit == "each" and patch.applied:
            outcomes = {c.number: c.outcome for c in patch.applied}
            message = gitops.commit_message(outcomes, settings.commit_message)
            try:
                sha = gitops.commit_paths(ctx.workspace, [todo_rel], message, gitops.identity_env())
            except gitops.GitError as exc:
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
        summary["commit"] = committed.as_summary()
        if committed.error:
            wf.error(f"the status commit was not pushed: {committed.error}")
            code = max(code, EXIT_TASKS_FAILED)
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
