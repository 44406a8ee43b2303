"""Salvage: the worktrees of a run that was killed outright (SIGKILL, a lost runner).

Such a run leaves its worktrees, its private ref and its executors behind. The next run finds
its directory by ``owner.json`` (the pid and start time of a process that no longer exists),
stops the executors that still carry its ``BATCH_RUN_TOKEN``, commits what each worktree
holds to ``batchaction/<run-id>/task-<n>`` (and integrated work that never reached the branch
to ``batchaction/<run-id>/integrated``), then removes the worktrees and the ref. A live run's
worktrees are never touched.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
from pathlib import Path

from batchaction.gitops import GitError, current_branch, git
from batchaction.worktrees import commit_leftovers, common_dir, process_start_time


def orphaned_runs(repo: Path) -> list[Path]:
    """Run directories whose owner process is gone (killed runs): their worktrees hold work."""
    base = common_dir(repo) / "batchaction" / "worktrees"
    found: list[Path] = []
    for run_dir in sorted(base.glob("*")) if base.is_dir() else []:
        try:
            owner = json.loads((run_dir / "owner.json").read_text(encoding="utf-8"))
            pid, start = int(owner["pid"]), owner.get("start")
        except (OSError, ValueError, KeyError, TypeError):
            found.append(run_dir)
            continue
        if process_start_time(pid) is None or process_start_time(pid) != start:
            found.append(run_dir)
    return found


def salvage_orphans(repo: Path, todo: str, committer: dict[str, str]) -> list[str]:
    """Commit the work left in killed runs' worktrees to ``batchaction/<run-id>/task-<n>``
    (their executors, which outlive a SIGKILLed run, are stopped first), bring the branch to
    the work they had integrated, then remove those worktrees. Never raises for one broken
    worktree: what can be saved is saved. Returns what was done, one sentence each."""
    messages: list[str] = []
    for run_dir in orphaned_runs(repo):
        token = _owner(run_dir).get("token")
        if isinstance(token, str) and token:
            _kill_marked(f"BATCH_RUN_TOKEN={token}:")
        for slot in sorted(run_dir.glob("slot-*.json")):
            try:
                info = json.loads(slot.read_text(encoding="utf-8"))
                number = int(info["task"])
            except (OSError, ValueError, KeyError, TypeError):
                continue
            tree = run_dir / slot.stem
            if not tree.is_dir():
                continue
            branch = f"batchaction/{run_dir.name}/task-{number}"
            with contextlib.suppress(GitError, OSError):
                try:
                    head = commit_leftovers(
                        tree, f"task {number}: work left by a killed run", committer,
                        exclude=[f"{todo}.lock"],
                    )  # fmt: skip
                except GitError:
                    head = git("rev-parse", "--verify", "HEAD^{commit}", cwd=tree).stdout.strip()
                git("branch", "--force", branch, head, cwd=repo)
                messages.append(f"work left by a killed run was saved on {branch}")
        ref = f"refs/batchaction/{run_dir.name}/tip"
        tip = git("rev-parse", "--verify", "-q", ref, cwd=repo, check=False).stdout.strip()
        if tip:
            messages += _integrated_work(repo, run_dir.name, tip)
            git("update-ref", "-d", ref, cwd=repo, check=False)
        shutil.rmtree(run_dir, ignore_errors=True)
    git("worktree", "prune", cwd=repo, check=False)
    return messages


def _integrated_work(repo: Path, run_id: str, tip: str) -> list[str]:
    """A killed run's integration tip that never reached the branch. That run had already
    written its tasks ``completed`` in the TODO file: the branch is fast-forwarded to the tip,
    as the run would have done at its end; when it cannot be (it moved, or local changes
    overlap), the tip is kept on ``batchaction/<run-id>/integrated`` and the message says
    that the TODO file names work that is not on the branch."""
    if git("merge-base", "--is-ancestor", tip, "HEAD", cwd=repo, check=False).returncode == 0:
        return []
    branch = current_branch(repo)
    if branch and git("merge", "--ff-only", "--quiet", tip, cwd=repo, check=False).returncode == 0:
        return [f"{branch} fast-forwarded to the work a killed run had integrated ({tip[:12]})"]
    kept = f"batchaction/{run_id}/integrated"  # beside the task branches
    git("branch", "--force", kept, tip, cwd=repo, check=False)
    return [
        f"a killed run integrated work that is not on your branch: it is on {kept}, and the "
        f"TODO file may already mark those tasks completed: take it with git merge {kept}"
    ]


def _owner(run_dir: Path) -> dict[str, object]:
    try:
        data = json.loads((run_dir / "owner.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _kill_marked(marker: str) -> None:
    """SIGKILL every process whose environment holds ``marker`` (a dead run's executors)."""
    wanted = marker.encode()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if wanted in Path(f"/proc/{name}/environ").read_bytes():
                os.kill(int(name), signal.SIGKILL)
