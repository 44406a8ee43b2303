"""The context of one action run: its environment, workflow commands, workspace, token, API
client and trigger, with the few things every phase does with them (react, reply, refuse, the
fetch/push credentials)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from batchaction import gitops
from batchaction.approval import Approval
from batchaction.checkrun import CheckRun, conclusion_of
from batchaction.credentials import RemoteAccess
from batchaction.errors import EXIT_OK
from batchaction.ghevent import Trigger
from batchaction.github import GitHub, GitHubError
from batchaction.inert import inert, redact, secret_forms
from batchaction.livecomment import COMMENT_LIMIT, LiveComment
from batchaction.remoteconfig import ConfigGuard
from batchaction.summary import truncate_markdown
from batchaction.workflow import Workflow


@dataclass
class Context:
    """One action run's shared state (see the module docstring)."""

    env: Mapping[str, str]
    wf: Workflow
    workspace: Path
    token: str | None
    gh: GitHub | None
    trigger: Trigger
    approval: Approval | None = None  # the head the comment approved, once checked
    guard: ConfigGuard | None = None  # the fetch/push configuration before any task ran
    live: LiveComment | None = None  # the progress comment, once the run was accepted
    check: CheckRun | None = None  # the check run (``check-run: true``), once accepted
    # Pushes whose push-token was refused, made with the github-token (gitops.git).
    push_refused: list[str] = field(default_factory=list)
    push_token: str | None = field(default=None, repr=False)  # pushes to the PR's branch

    def react(self, content: str) -> None:
        if self.gh is None or self.trigger.comment_id is None:
            return
        try:
            self.gh.react(self.trigger.owner, self.trigger.repo, self.trigger.comment_id, content)
        except GitHubError as exc:
            self.wf.command("warning", f"could not add a reaction: {exc}")

    def reply(self, body: str) -> None:
        """Answer on the pull request: the live progress comment's final edit once there is
        one (a new comment when that edit fails), else a new comment."""
        if self.gh is None or self.trigger.pr_number is None:
            return
        if len(body) > COMMENT_LIMIT:
            note = f"…(truncated: the whole summary is in [the run]({self.run_url()}))"
            body = truncate_markdown(body, COMMENT_LIMIT, note)
        live = self.live if self.live is not None and self.live.comment_id is not None else None
        if live is not None and live.final(body):
            return
        try:
            self.gh.comment(self.trigger.owner, self.trigger.repo, self.trigger.pr_number, body)
        except GitHubError as exc:
            self.wf.command("warning", f"could not reply on the pull request: {exc}")
            return
        if live is not None:  # the progress comment must not say "running": one more try
            live.final("**batchaction**: this run has ended; its summary is in a later comment.")
            live.comment_id = None  # a later reply is not put back in it (two summaries)

    def conclude(
        self, summary: Mapping[str, Any], markdown: str, pushed_sha: str | None = None
    ) -> None:
        """Complete the check run (when there is one) with the summary's conclusion."""
        if self.check is None:
            return
        title = markdown.split("\n", 1)[0].replace("**", "")
        self.check.complete(conclusion_of(summary), title, markdown, pushed_sha)

    def abandon(self, why: str, conclusion: str = "failure") -> None:
        """On an error that ends the action after the run was accepted: the live comment and
        the check run say so, instead of "running" forever."""
        why = redact(why, self.secret_forms())
        text = f"❌ **batchaction** stopped before it could report: {inert(why)}"
        if self.live is not None and not self.live.finished:
            self.reply(f"{text}\n\n[Run log]({self.run_url()})\n")
        if self.check is not None and self.check.completed is None:
            self.check.complete(conclusion, "batchaction stopped before it could report", text)

    def run_url(self) -> str:
        server = self.env.get("GITHUB_SERVER_URL", "https://github.com")
        repo = self.env.get("GITHUB_REPOSITORY", f"{self.trigger.owner}/{self.trigger.repo}")
        return f"{server}/{repo}/actions/runs/{self.env.get('GITHUB_RUN_ID', '')}"

    def refuse(self, why: str, code: int = EXIT_OK, *, advice: str = "") -> int:
        """Say no on the PR (😕) and in the log; run nothing, push nothing. ``advice`` is
        batchaction's own text, not made inert (a command to copy)."""
        self.wf.notice(f"batchaction did not run: {why} {advice}".rstrip())
        self.react("confused")
        self.reply(f"😕 **batchaction** did not run: {inert(why)} {advice}".rstrip())
        return code

    def persisted_headers(self) -> list[str]:
        """The ``http.*.extraheader`` keys the workspace's git config holds (what
        actions/checkout leaves unless ``persist-credentials: false``), as git names them."""
        existing = gitops.git(
            "config", "-z", "--name-only", "--get-regexp", r"^http\..*\.extraheader$",
            cwd=self.workspace, check=False,
        )  # fmt: skip
        return [key for key in existing.stdout.split("\0") if key.strip()]

    def persisted_credentials(self) -> bool:
        """Whether the workspace's git config holds an ``http.*.extraheader``."""
        return bool(self.persisted_headers())

    def remote_access(self) -> RemoteAccess:
        """Fetch/push credentials: the token through a pipe (none when the checkout left its
        own), refused once the git configuration changed (credentials, remoteconfig)."""
        token = None if self.persisted_credentials() else self.token
        server = self.env.get("GITHUB_SERVER_URL", "https://github.com")
        return RemoteAccess(server, token, self.guard.problem if self.guard else None)

    def push_access(self) -> RemoteAccess:
        """For pushes to the pull request's branch: ``remote_access``, whose ``git push``
        uses the ``push-token`` when one was given. It wins over the checkout's persisted
        credentials, whose ``extraheader`` keys are emptied for that push (credentials)."""
        access = self.remote_access()
        if not self.push_token:
            return access
        headers = tuple(key for key in self.persisted_headers() if "=" not in key)
        return replace(
            access, push_token=self.push_token, reset_headers=headers, refused=self.push_refused
        )

    def secret_forms(self) -> list[str]:
        """Every form of both tokens (``inert.secret_forms``): what is masked and redacted."""
        return secret_forms(self.token or "") + secret_forms(self.push_token or "")
