"""The context of one action run: its environment, workflow commands, workspace, token, API
client and trigger, with the few things every phase does with them (react, reply, refuse, the
fetch/push credentials)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from batchaction import gitops
from batchaction.approval import Approval
from batchaction.credentials import RemoteAccess
from batchaction.errors import EXIT_OK
from batchaction.ghevent import Trigger
from batchaction.github import GitHub, GitHubError
from batchaction.inert import inert
from batchaction.remoteconfig import ConfigGuard
from batchaction.workflow import Workflow

COMMENT_LIMIT = 65_000


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

    def refuse(self, why: str, code: int = EXIT_OK, *, advice: str = "") -> int:
        """Say no on the PR (😕) and in the log; run nothing, push nothing. ``advice`` is
        batchaction's own text, not made inert (a command to copy)."""
        self.wf.notice(f"batchaction did not run: {why} {advice}".rstrip())
        self.react("confused")
        self.reply(f"😕 **batchaction** did not run: {inert(why)} {advice}".rstrip())
        return code

    def persisted_credentials(self) -> bool:
        """Whether the workspace's git config holds an ``http.*.extraheader`` (what
        actions/checkout leaves unless ``persist-credentials: false``)."""
        existing = gitops.git(
            "config", "--get-regexp", r"^http\..*\.extraheader$", cwd=self.workspace, check=False
        )
        return bool(existing.stdout.strip())

    def remote_access(self) -> RemoteAccess:
        """Fetch/push credentials: the token through a pipe (none when the checkout left its
        own), refused once the git configuration changed (credentials, remoteconfig)."""
        token = None if self.persisted_credentials() else self.token
        server = self.env.get("GITHUB_SERVER_URL", "https://github.com")
        return RemoteAccess(server, token, self.guard.problem if self.guard else None)
