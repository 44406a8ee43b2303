"""Action: the work of a run in worktrees that did not reach the pushed branch.

A task whose work was not integrated (failed, timed out, conflicting, cancelled) has it kept
on ``batchaction/pr-<N>/task-<n>`` in the runner's clone, which the runner throws away. With
``push-failed-branches: true`` those branches are pushed (replacing the last attempt's: the
namespace is batchaction's own), never for a fork's head. When the integrated work itself
could not be brought onto the branch (``result_branch``), the run fails and says so.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from batchaction import gitops
from batchaction.errors import EXIT_OK, EXIT_TASKS_FAILED
from batchaction.settings import Settings

if TYPE_CHECKING:
    from batchaction.actioncontext import Context
    from batchaction.ghevent import Trigger


def keep_branches(
    ctx: Context, settings: Settings, summary: dict[str, Any], interrupted: Callable[[], bool]
) -> int:
    """Push the kept branches when asked to; the exit code this adds (0 or 1). Records the
    pushed names in ``summary["isolation"]["pushed_branches"]``."""
    isolation = summary.get("isolation") or {}
    code = EXIT_OK
    branches = [t["branch"] for t in summary["tasks"] if t.get("branch")]
    if isolation.get("result_branch"):
        ctx.wf.error(f"the integrated work is not on the pushed branch: {isolation['message']}")
        code = EXIT_TASKS_FAILED
        if summary["result"] == "success":  # the exit code, the result and the reply agree
            summary["result"] = "failure"
        branches.append(isolation["result_branch"])
    if not branches or interrupted():
        return code
    if not settings.push_failed_branches:
        ctx.wf.notice(
            "work that was not integrated is on "
            + ", ".join(branches)
            + " in this runner only: set `push-failed-branches: true` to push it"
        )
        return code
    refspecs = [f"+refs/heads/{name}:refs/heads/{name}" for name in branches]
    pushed = gitops.git(
        "push", "--porcelain", "origin", *refspecs,
        cwd=ctx.workspace, check=False, access=ctx.remote_access(),
    )  # fmt: skip
    if pushed.returncode != 0:
        ctx.wf.error(f"could not push the kept branches: {pushed.stderr.strip()[-500:]}")
        return EXIT_TASKS_FAILED
    isolation["pushed_branches"] = branches
    ctx.wf.notice("work that was not integrated was pushed to " + ", ".join(branches))
    return code


def branch_prefix(trigger: Trigger, env: Mapping[str, str]) -> str | None:
    """Where unintegrated work is kept: ``batchaction/pr-<N>`` for a pull request (a rerun
    replaces the last attempt's branches), ``batchaction/run-<id>`` for a dispatched run."""
    if trigger.pr_number is not None:
        return f"batchaction/pr-{trigger.pr_number}"
    run_id = "".join(ch for ch in env.get("GITHUB_RUN_ID", "") if ch.isdigit())
    return f"batchaction/run-{run_id}" if run_id else None
