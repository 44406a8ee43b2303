"""Workspaces: where each task runs, and how its work reaches the branch (``--isolation``).

With ``worktree`` isolation every task runs in a worktree of its own (``worktrees.py``), started
at the integration tip, which holds the integrated work of every task that finished before it
(its dependencies included). When the task ends, what it left is committed on its behalf, its
edits to its TODO copy are merged into the shared file (``todomerge.py``), and its commits are
replayed onto the tip (``integration.py``) before any dependent starts. Work that is not
integrated (failed, timed out, conflicting, cancelled) is kept on
``batchaction/<run-id>/task-<n>``. At the end the current branch is fast-forwarded to the tip,
or, when that cannot be done safely, the tip is left on ``batchaction/<run-id>``.

Every git call on the main repository happens under one lock.
"""

from __future__ import annotations

import os
import shlex
import threading
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

from batchaction.gitops import GitError, current_branch, git
from batchaction.integration import IntegrationRef
from batchaction.lockwait import lock_or_go_on
from batchaction.repo import new_run_id
from batchaction.salvage import salvage_orphans
from batchaction.textlines import regular_bytes
from batchaction.todomerge import merge_task_edits
from batchaction.worktrees import Worktree, WorktreePool, commit_leftovers
from batchaction.writeback import atomic_replace, lock_path

IDENTITY_NAME = "batchaction"
IDENTITY_EMAIL = "batchaction@users.noreply.github.com"


def _identity(repo: Path, author: str | None) -> dict[str, str]:
    """Commit identity: ``author`` ("Name <email>") or the repository's user, else batchaction."""
    name = git("config", "user.name", cwd=repo, check=False).stdout.strip()
    email = git("config", "user.email", cwd=repo, check=False).stdout.strip()
    if author and "<" in author:
        name, _, rest = author.partition("<")
        name, email = name.strip(), rest.rstrip(">").strip()
    name, email = name or IDENTITY_NAME, email or IDENTITY_EMAIL
    return {
        "GIT_AUTHOR_NAME": name,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_COMMITTER_NAME": name,
        "GIT_COMMITTER_EMAIL": email,
    }


@dataclass
class TaskWork:
    """What became of one task's work."""

    integrated: tuple[str, ...] = ()  # new commits on the integration tip
    conflicts: tuple[str, ...] = ()
    branch: str | None = None  # where work that was not integrated is kept
    todo_conflict: str | None = None
    candidate: str | None = None  # the tip with this work replayed, awaiting verification
    head: str = ""  # the task's own last commit (kept on its branch if verification fails)
    kept_as: str = ""  # the branch name for that
    start: str = ""  # the commit the task started from
    base: str = ""  # the tip the candidate was made on


@dataclass
class Workspaces:
    """One run's worktrees and integration ref. ``todo`` is the shared TODO file (absolute);
    ``started_in`` the directory ``run`` started in (for relative executor paths)."""

    repo: Path
    todo: Path
    max_parallel: int
    started_in: Path
    copy: tuple[str, ...] = ()
    link: tuple[str, ...] = ()
    author: str | None = None
    branch_prefix: str | None = None  # default batchaction/<run-id>
    committer: dict[str, str] | None = None  # GIT_COMMITTER_* of replayed and status commits
    run_id: str = field(default_factory=new_run_id)
    token: str = ""  # the run's BATCH_RUN_TOKEN prefix, recorded for a later salvage
    lock: threading.Lock = field(default_factory=threading.Lock)
    notices: list[str] = field(default_factory=list)
    branches: dict[int, str] = field(default_factory=dict)
    start_sha: str = ""
    ref: IntegrationRef | None = None
    pool: WorktreePool | None = None
    identity: dict[str, str] = field(default_factory=dict)
    commands: dict[str, str] = field(default_factory=dict)  # executor command -> resolved
    pending: dict[int, TaskWork] = field(default_factory=dict)  # awaiting verification

    def _opened(self) -> tuple[WorktreePool, IntegrationRef]:
        if self.pool is None or self.ref is None:
            raise RuntimeError("Workspaces.open() was not called")
        return self.pool, self.ref

    @property
    def prefix(self) -> str:
        return self.branch_prefix or f"batchaction/{self.run_id}"

    @property
    def todo_rel(self) -> str:
        return Path(os.path.relpath(self.todo, self.repo)).as_posix()

    def open(self, tasks: int = 0) -> None:
        """Salvage killed runs' worktrees, note uncommitted tracked changes, make the ref, and
        the worktrees the first ``tasks`` tasks will take (at most ``max_parallel``), at once."""
        ident = self.identity = _identity(self.repo, self.author)
        with self.lock:
            self.notices += salvage_orphans(self.repo, self.todo_rel, ident)
            dirty = git("diff", "--name-only", "HEAD", cwd=self.repo).stdout.split()
            dirty = [p for p in dirty if p not in (self.todo_rel, self.todo_rel + ".lock")]
            if dirty:
                self.notices.append(
                    "uncommitted changes to tracked files are not in the tasks' worktrees: "
                    + ", ".join(dirty[:10])
                    + (" ..." if len(dirty) > 10 else "")
                    + " (commit them first for the tasks to see them)"
                )
            self.start_sha = git("rev-parse", "HEAD", cwd=self.repo).stdout.strip()
            self.ref = IntegrationRef(
                self.repo,
                f"refs/batchaction/{self.run_id}/tip",
                self.start_sha,
                strip=[self.todo_rel, self.todo_rel + ".lock"],
                committer=self.committer
                or {k: v for k, v in ident.items() if k.startswith("GIT_COMMITTER")},
            )
            self.pool = WorktreePool(
                self.repo, self.run_id, self.max_parallel, self.todo_rel, self.copy, self.link
            )
            self.pool.open(self.token)
            self.pool.prepare(tasks, self.start_sha)

    # -- per task -----------------------------------------------------------------------------

    def start(self, number: int) -> Worktree:
        """A worktree at the current tip with the shared TODO file as it is now."""
        pool, ref = self._opened()
        with self._todo_lock():
            todo_text = regular_bytes(self.todo, follow=False).decode("utf-8")
        with self.lock:
            return pool.acquire(number, ref.tip, todo_text)

    def command(self, command: str) -> str:
        """The executor command with its first word resolved against where ``run`` started,
        when it is a path (has a ``/``) that is not a tracked file of the repository."""
        if command not in self.commands:
            self.commands[command] = self._resolve(command)
        return self.commands[command]

    def _resolve(self, command: str) -> str:
        try:
            words = shlex.split(command)
        except ValueError:
            return command
        if not words or "/" not in words[0]:
            return command
        first = words[0]
        if Path(first).is_absolute():
            return command
        rel = os.path.relpath((self.started_in / first).resolve(), self.repo)
        with self.lock:
            tracked = git("ls-files", "--error-unmatch", "--", rel, cwd=self.repo, check=False)
        if tracked.returncode == 0 and not rel.startswith(".."):
            return command
        resolved = shlex.quote(str((self.started_in / first).resolve()))
        return (
            resolved + command[command.index(first) + len(first) :] if first in command else command
        )

    def path_of(self, number: int) -> Path:
        """The worktree task ``number`` holds. Raises KeyError when it holds none."""
        pool, _ = self._opened()
        return pool.busy[number].path

    def busy_numbers(self) -> set[int]:
        return set(self.pool.busy) if self.pool is not None else set()

    def environment(self, tree: Worktree) -> dict[str, str]:
        return {"BATCH_WORKTREE": str(tree.path), "BATCH_BASE_SHA": tree.start}

    def finish(self, number: int, title: str, integrate: bool, keep: bool) -> TaskWork:
        """Commit the task's leftovers, merge its TODO edits, then integrate its commits
        (``integrate``) or keep them on the task's branch (``keep``); frees the worktree.

        Whatever fails on the way, what the task made is kept on its branch if it can be read
        at all, and a worktree that could not be read is dropped from the pool. Raises
        GitError only when nothing of the task's work could be saved.
        """
        return self._collect(number, title, "integrate" if integrate else "keep" if keep else "")

    def prepare(self, number: int, title: str) -> TaskWork:
        """``finish`` for a task whose work is verified before it is integrated: its commits
        are replayed onto the tip without moving it, and its worktree is checked out at that
        candidate (``TaskWork.candidate``) and stays the task's until ``accept`` or ``reject``.
        With nothing to verify (no commits, or a conflict) the worktree is freed at once and
        ``candidate`` is None. Raises GitError as ``finish`` does."""
        return self._collect(number, title, "candidate")

    def accept(self, number: int) -> TaskWork:
        """The verification passed: the tip moves to the task's candidate; frees the worktree."""
        pool, ref = self._opened()
        pending = self.pending.pop(number)
        try:
            with self.lock:
                if ref.tip == pending.base:
                    ref.advance(pending.candidate or ref.tip)
                else:
                    # Only status commits (``commit: each``) can have moved the tip meanwhile:
                    # they change the TODO file alone, which task commits never touch.
                    again = ref.integrate(0, "", pending.start, pending.head)
                    pending.integrated = again.commits
                self._drop_branch(number)
        finally:
            with self.lock:
                pool.release(number)
        return TaskWork(integrated=pending.integrated, todo_conflict=pending.todo_conflict)

    def reject(self, number: int) -> TaskWork:
        """The verification failed (or was interrupted): the task's own commits are kept on
        its branch, the tip stays; frees the worktree."""
        pool, _ = self._opened()
        pending = self.pending.pop(number)
        try:
            with self.lock:
                git("branch", "--force", pending.kept_as, pending.head, cwd=self.repo)
                pending.branch = self.branches[number] = pending.kept_as
        finally:
            with self.lock:
                pool.release(number)
        return TaskWork(branch=pending.branch, todo_conflict=pending.todo_conflict)

    def _collect(self, number: int, title: str, mode: str) -> TaskWork:
        pool, ref = self._opened()
        tree = pool.busy[number]
        work = TaskWork()
        branch = f"{self.prefix}/task-{number}"
        broken = held = False
        head = ""
        try:
            tree.repair()  # a task that deleted its .git file still has its work read
            todo_copy = self._todo_copy(tree)
            work.todo_conflict = self._merge_todo(number, tree, todo_copy)
            keep_todo = {self.todo_rel: todo_copy} if work.todo_conflict and todo_copy else None
            head = commit_leftovers(
                tree.path, f"task {number}: {title}", self.identity,
                exclude=pool.excluded(), extra=None,
            )  # fmt: skip
            with self.lock:
                if mode in ("integrate", "candidate"):
                    result = ref.integrate(
                        number, title, tree.start, head, advance=mode != "candidate"
                    )
                    work.integrated, work.conflicts = result.commits, result.conflicts
                    if not work.conflicts and mode == "integrate":
                        self._drop_branch(number)
                    if mode == "candidate" and result.commits:
                        pool.checkout(tree, result.tip)
                        work.candidate, work.head, work.kept_as = result.tip, head, branch
                        work.start, work.base = tree.start, ref.tip
                        self.pending[number] = work
                        held = True
                        return work
                keep = mode == "keep"
                if (keep or work.conflicts or keep_todo) and (head != tree.start or keep_todo):
                    kept = head
                    if keep_todo:  # the TODO edits that were not merged go on the branch too
                        kept = commit_leftovers(
                            tree.path, f"task {number}: its TODO.md edits (not merged)",
                            self.identity, exclude=pool.excluded(), extra=keep_todo,
                        )  # fmt: skip
                    git("branch", "--force", branch, kept, cwd=self.repo)
                    work.branch = self.branches[number] = branch
        except (GitError, OSError, UnicodeDecodeError) as exc:
            broken = True
            held = False
            self.pending.pop(number, None)
            if not head:  # its leftovers could not be committed: its own commits, at least
                saved = git(
                    "rev-parse", "--verify", "-q", "HEAD^{commit}", cwd=tree.path, check=False
                )
                head = saved.stdout.strip() if saved.returncode == 0 else ""
            if head and head != tree.start:
                git("branch", "--force", branch, head, cwd=self.repo, check=False)
                work.branch = self.branches[number] = branch
            work.conflicts = ()
            raise GitError(
                ["(collect task work)"],
                1,
                f"{exc}" + (f" (its commits are kept on {work.branch})" if work.branch else ""),
            ) from None
        finally:
            if not held:
                with self.lock:
                    pool.release(number, broken=broken)
        return work

    def _drop_branch(self, number: int) -> None:
        """A retry's work was integrated: the branch kept from its failed attempt goes."""
        kept = self.branches.pop(number, None)
        if kept is not None:
            git("branch", "--delete", "--force", kept, cwd=self.repo, check=False)

    def _todo_lock(self) -> AbstractContextManager[bool]:
        """The shared TODO file's lock, as the status writer takes it, under the run's
        ``lock-timeout``; once that is spent, this work goes on without it (``lockwait.py``)."""
        return lock_or_go_on(lock_path(self.todo))

    def _todo_copy(self, tree: Worktree) -> str | None:
        """The task's TODO copy as it left it, or None (deleted, unreadable, not UTF-8)."""
        try:
            return regular_bytes(tree.path / self.todo_rel).decode("utf-8")
        except (OSError, UnicodeDecodeError):
            return None

    def _merge_todo(self, number: int, tree: Worktree, theirs: str | None) -> str | None:
        if theirs is None or theirs == tree.todo_copy:
            return None  # unchanged, deleted or unreadable: nothing of it is merged
        with self._todo_lock():
            ours = regular_bytes(self.todo, follow=False).decode("utf-8")
            merged = merge_task_edits(tree.todo_copy, theirs, ours, number)
            if merged.changed:
                atomic_replace(self.todo, merged.text.encode("utf-8"), resolve=False)
        return merged.conflict

    def commit_todo(self, message: str, author: dict[str, str]) -> str | None:
        """Commit the shared TODO file as it is now on the integration tip (``commit: each``):
        the new tip, or None when the tip already holds that text."""
        _, ref = self._opened()
        text = regular_bytes(self.todo, follow=False).decode("utf-8")
        with self.lock:
            before = ref.tip
            made = ref.commit_file(self.todo_rel, text, message, author)
        return made if made != before else None

    # -- end ----------------------------------------------------------------------------------

    def close(self) -> dict[str, str | None]:
        """Remove the worktrees and the private ref; bring the branch to the tip.

        Returns ``{"tip", "branch", "result_branch", "message"}`` for the summary.
        """
        pool, ref = self._opened()
        with self.lock:
            pool.close()
            tip = ref.tip
            ref.delete()
            final: dict[str, str | None] = {"tip": tip, "branch": None, "result_branch": None}
            if tip == self.start_sha:
                final["message"] = None
                return final
            branch = current_branch(self.repo)
            head = git("rev-parse", "HEAD", cwd=self.repo).stdout.strip()
            moved = None
            if branch and head == self.start_sha:
                moved = self._fast_forward(tip)
            if moved:
                final["branch"] = branch
                final["message"] = f"{branch} fast-forwarded to {tip[:12]}"
            else:
                # Not the prefix itself: a ref cannot sit beside refs under it (task-<n>).
                result = f"{self.prefix}/integrated"
                git("branch", "--force", result, tip, cwd=self.repo)
                final["result_branch"] = result
                diverged = head != self.start_sha or not branch
                how = f"git merge {result}" if diverged else f"git merge --ff-only {result}"
                if not branch:
                    why = "HEAD is detached"
                elif diverged:
                    why = f"{branch} moved during the run"
                else:
                    why = "local changes overlap it"
                final["message"] = (
                    f"the integrated work is on {result}, not on your branch ({why}): "
                    f"take it with {how}"
                )
            return final

    def _fast_forward(self, tip: str) -> bool:
        """``git merge --ff-only tip`` in the main work tree. Status commits on the tip change
        the TODO file, which the run has rewritten in the work tree: its text is set aside,
        the file put back as committed for the merge, and the text written again after it,
        whatever the merge did (the text holds every status and is the newer)."""
        changed = git(
            "diff", "--quiet", self.start_sha, tip, "--", self.todo_rel, cwd=self.repo, check=False
        ).returncode
        if changed == 0:
            merged = git("merge", "--ff-only", "--quiet", tip, cwd=self.repo, check=False)
            return merged.returncode == 0

        with self._todo_lock():
            saved = self.todo.read_bytes()
            try:
                git("checkout", "--quiet", self.start_sha, "--", self.todo_rel, cwd=self.repo)
                merged = git("merge", "--ff-only", "--quiet", tip, cwd=self.repo, check=False)
            finally:
                atomic_replace(self.todo, saved)
        return merged.returncode == 0
