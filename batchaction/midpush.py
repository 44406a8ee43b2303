"""The action's work reaches GitHub while the batch runs, not only at its end.

With tasks in worktrees, integrated work (the integration tip's task commits, plus a status
commit of TODO.md as it stands) is pushed to the pull request's branch as it accumulates, at
most once per ``push-every``, so a job that is killed loses at most that much. Each push goes
only onto the tip this run last pushed (``--force-with-lease=<branch>:<tip>``, a fast-forward);
a branch that moved meanwhile stops these pushes, and the final commit-back handles the race as
it always does (``gitops.commit_back``), starting from the tip last pushed.

On the first interrupt (``RunLimits.on_interrupt``) the same thread pushes at once, then
publishes what the run has (outputs, job summary, reply) before the grace period is waited out:
GitHub sends SIGKILL 10 s after a cancelled job's SIGINT.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from batchaction import gitops
from batchaction.inert import redact
from batchaction.lockwait import install
from batchaction.runlimits import RunLimits
from batchaction.settings import Settings
from batchaction.writeback import PatchResult, StatusChange

if TYPE_CHECKING:
    from batchaction.actioncontext import Context
    from batchaction.workspaces import Workspaces


class MidPush:
    """One thread for one action run: periodic pushes of integrated work, and the early
    publication on the first interrupt. ``applied`` and ``status_commits`` are the action's
    (shared: a status commit made here is replayed like any other on a lost push race)."""

    def __init__(
        self,
        ctx: Context,
        settings: Settings,
        workspaces: Workspaces | None,
        *,
        branch: str | None,
        base: str,
        applied: list[StatusChange],
        status_commits: dict[str, gitops.StatusCommit],
        todo_rel: str,
    ) -> None:
        self.ctx, self.settings, self.workspaces = ctx, settings, workspaces
        self.branch, self.base, self.todo_rel = branch, base, todo_rel
        self.applied, self.status_commits = applied, status_commits
        self.every = settings.push_every
        self.pushed: str | None = None  # the branch's tip as this run last pushed it
        self.pushes = 0
        self.stopped_why: str | None = None  # why intermediate pushes stopped
        self.replied = False
        self.summary_at: int | None = None  # GITHUB_STEP_SUMMARY's size before our first write
        self._recorded = 0  # how many of ``applied`` the status commits made here hold
        self._cond = threading.Condition()
        self._dirty = False
        self._urgent: dict[str, Any] | None = None
        self._stop = False
        self._next = time.monotonic() + self.every
        self._thread = threading.Thread(target=self._run, name="mid-push", daemon=True)

    @property
    def pushing(self) -> bool:
        """Whether this run pushes while it goes (worktrees, a branch of this repository)."""
        return self.workspaces is not None and bool(self.branch) and self.stopped_why is None

    def limits(self, announce: Callable[[str], None]) -> RunLimits:
        """The run's limits, with this thread hearing of the first interrupt and stopping with
        the scheduler; starts the thread."""
        limits = RunLimits.from_settings(self.settings, announce)
        install(limits.lock)  # the commit after the run draws on the same budget
        limits.on_interrupt, limits.on_stop = self.interrupt, self.stop
        self._thread.start()
        return limits

    def watch(self, on_write: Callable[[PatchResult], None]) -> Callable[[PatchResult], None]:
        """``on_write`` that also tells this thread the TODO file (and so maybe the tip) moved."""

        def written(patch: PatchResult) -> None:
            on_write(patch)
            with self._cond:
                self._dirty = True
                self._cond.notify_all()

        return written

    def interrupt(self, _signum: int, summary: dict[str, Any]) -> None:
        with self._cond:
            self._urgent = summary
            self._cond.notify_all()

    def stop(self) -> None:
        """Stop the thread (an early publication under way is finished first)."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._due():
                    self._cond.wait(timeout=self._wait())
                if self._stop:
                    return
                urgent, self._urgent = self._urgent, None
                due = self._dirty and time.monotonic() >= self._next
                if urgent is not None or due:
                    self._dirty = False
            if urgent is not None:
                self._push()
                self._publish(urgent)
            elif due:
                self._next = time.monotonic() + self.every
                self._push()

    def _due(self) -> bool:
        if self._stop or self._urgent is not None:
            return True
        return self._dirty and time.monotonic() >= self._next

    def _wait(self) -> float | None:
        return max(0.0, self._next - time.monotonic()) if self._dirty else None

    # -- pushing ------------------------------------------------------------------------------

    def _push(self) -> None:
        """A status commit of the TODO file on the integration tip, then the tip pushed."""
        ws = self.workspaces
        if not self.pushing or ws is None or ws.ref is None:
            return
        ctx = self.ctx
        changes = list(self.applied)
        fresh = changes[self._recorded :]
        outcomes = {c.number: c.outcome for c in fresh}
        message = gitops.commit_message(outcomes, self.settings.commit_message)
        try:
            made = ws.commit_todo(message, gitops.identity_env())
        except (gitops.GitError, OSError, UnicodeDecodeError) as exc:
            ctx.wf.command("warning", f"could not commit the statuses for a push: {exc}")
            made = None
        if made is not None:
            self.status_commits[made] = (fresh, message)
            self._recorded = len(changes)
        with ws.lock:
            tip = ws.ref.tip
        lease = self.pushed or self.base
        if tip == lease:
            return
        assert self.branch is not None
        proc = gitops.push_fast_forward(
            ctx.workspace, self.branch, lease, tip, access=ctx.push_access()
        )
        if proc.returncode == 0:
            self.pushed = tip
            self.pushes += 1
            print(f"batchaction: pushed the integrated work to {self.branch} ({tip[:12]})")
            return
        self.stopped_why = (proc.stderr + proc.stdout).strip()[-300:]
        ctx.wf.command(
            "warning",
            f"pushing the integrated work to {self.branch} during the run was refused (the "
            f"branch moved?); it is pushed at the end instead: {self.stopped_why}",
        )

    def base_for(self, original: str) -> str:
        """The tip the final commit-back builds on: the one last pushed, when the workspace's
        HEAD holds it (else ``original``: the push is then a race, replayed onto the remote)."""
        if self.pushed is None:
            return original
        held = gitops.git(
            "merge-base", "--is-ancestor", self.pushed, "HEAD", cwd=self.ctx.workspace, check=False
        )
        return self.pushed if held.returncode == 0 else original

    def settle(self, committed: gitops.CommitResult) -> gitops.CommitResult:
        """The final commit-back's result, counting what was pushed during the run: nothing
        left to push after an intermediate push is still pushed work."""
        if committed.sha is None and committed.error is None and self.pushed is not None:
            return gitops.CommitResult(self.pushed, True, self.pushes, self.branch)
        return committed

    # -- publishing ---------------------------------------------------------------------------

    def _publish(self, summary: dict[str, Any]) -> None:
        """Outputs, job summary, reaction and reply, from the run as it stands."""
        from batchaction.publishing import output_summary  # noqa: PLC0415
        from batchaction.selection import format_selection  # noqa: PLC0415
        from batchaction.summary import render_markdown  # noqa: PLC0415

        ctx = self.ctx
        summary = redact(summary, ctx.secret_forms())
        summary["todo"] = self.todo_rel
        summary["result"] = "interrupted"
        summary["commit"] = {
            "sha": self.pushed,
            "pushed": self.pushed is not None,
            "attempts": self.pushes,
            "branch": self.branch,
            "error": None,
        }
        tasks = summary["tasks"]

        def numbers(*outcomes: str) -> str:
            return format_selection(t["number"] for t in tasks if t["outcome"] in outcomes)

        markdown = render_markdown(summary)
        ctx.wf.set_outputs(
            {
                "result": "interrupted",
                "completed": numbers("completed"),
                "failed": numbers("failed", "timed-out"),
                "blocked": numbers("blocked"),
                "waves": json.dumps(summary["waves"]),
                "summary-json": output_summary(summary),
                "commit-sha": self.pushed or "",
                "pushed": "true" if self.pushed else "false",
            }
        )
        self.summary_at = _size(ctx.env.get("GITHUB_STEP_SUMMARY"))
        ctx.wf.step_summary(markdown)
        if ctx.trigger.kind == "comment":
            ctx.react("confused")
            ctx.conclude(summary, markdown)  # first: the reply can wait on a slow edit
            ctx.reply(markdown + f"\n[Run log]({ctx.run_url()})\n")
            self.replied = True
        print("batchaction: interrupted: published the run as it stands; stopping the tasks")

    def rewind(self) -> None:
        """Before the final job summary: take back the early one (the final one replaces it)."""
        path = self.ctx.env.get("GITHUB_STEP_SUMMARY")
        if self.summary_at is None or not path:
            return
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW)
        except OSError:
            return
        try:
            os.ftruncate(fd, self.summary_at)
        except OSError:
            pass
        finally:
            os.close(fd)


def _size(path: str | None) -> int | None:
    try:
        return os.stat(path).st_size if path else None
    except OSError:
        return None


def for_action(
    ctx: Context,
    settings: Settings,
    workspaces: Workspaces | None,
    *,
    branch: str | None,
    sha: str,
    fork: str | None,
    lists: tuple[list[StatusChange], dict[str, gitops.StatusCommit]],
    todo_rel: str,
) -> MidPush:
    """The action's MidPush: pushing only with worktrees, a branch of this repository and
    ``commit`` not ``never``; publishing early in every case."""
    pushes = workspaces is not None and fork is None and settings.commit != "never"
    return MidPush(
        ctx, settings, workspaces if pushes else None,
        branch=branch if pushes else None, base=sha,
        applied=lists[0], status_commits=lists[1], todo_rel=todo_rel,
    )  # fmt: skip
