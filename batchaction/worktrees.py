"""Task worktrees: a pool of git worktrees outside the work tree, one per running task.

Worktrees live under ``<git-common-dir>/batchaction/worktrees/<run-id>/slot-<k>`` and share the
repository's object store. At most ``size`` exist; a finished task's worktree is reset to the
next task's start (``checkout --detach --force``, ``clean -ffdx``) instead of checking the
repository out again. ``owner.json`` beside the slots names the run's process (pid and start
time), so a later run recognises the worktrees of a run that was killed and salvages their work
before removing them, and never touches those of a run that is still alive.

Each slot has an index of batchaction's own beside it (``slot-<k>.index``) that only git calls
made here write: the reset and the leftover commit both run on it, so that neither trusts an
index the task may have changed (a stale ``index.lock``, assume-unchanged or skip-worktree
bits), and neither reads an unchanged file's content again (its stat data is kept from task
to task). After a reset a copy of it becomes the worktree's own index, which the task starts
with. Cost: making a slot is the one full checkout (``git worktree add``, its files written by
parallel checkout workers); after that, a task costs four git processes here, ``checkout``
and ``clean`` when it starts, ``add`` and ``diff-index`` when it ends (when it committed its
work, the usual case): its tree's files are stat-ed twice and its directories read twice.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from batchaction.gitops import GitError, git

COMMIT_ID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def process_start_time(pid: int) -> str | None:
    """The start time of ``pid`` in clock ticks since boot (``/proc/PID/stat`` field 22), or
    None when there is no such process: with the pid, it names one process across pid reuse."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]


def common_dir(repo: Path) -> Path:
    path = Path(git("rev-parse", "--git-common-dir", cwd=repo).stdout.strip())
    return path if path.is_absolute() else (repo / path).resolve()


def slot_index(tree: Path) -> Path:
    """The index of batchaction's own for a pooled worktree at ``tree``: ``<tree>.index``."""
    return tree.with_name(tree.name + ".index")


@dataclass
class Worktree:
    path: Path
    slot: int
    start: str = ""  # the commit the current task started from
    number: int | None = None  # the task using it
    todo_copy: str = ""  # the TODO file's text when the task started (for the 3-way merge)
    gitlink: str = ""  # the worktree's ``.git`` file as git wrote it

    def repair(self) -> None:
        """Put back the ``.git`` file a task deleted or replaced, so that its work can be read."""
        link = self.path / ".git"
        try:
            current = link.read_text(encoding="utf-8") if link.is_file() else None
        except OSError:
            current = None
        if self.gitlink and current != self.gitlink:
            if link.is_dir() and not link.is_symlink():
                shutil.rmtree(link, ignore_errors=True)
            else:
                link.unlink(missing_ok=True)
            link.write_text(self.gitlink, encoding="utf-8")

    def git_dir(self) -> Path:
        """The worktree's own git directory (``<common>/worktrees/<name>``), from ``gitlink``."""
        named = Path(self.gitlink.strip().removeprefix("gitdir:").strip())
        return named if named.is_absolute() else (self.path / named).resolve()


@dataclass
class WorktreePool:
    """Worktrees for one run. ``todo`` is the TODO file's path relative to the repository root;
    ``copy`` and ``link`` are glob patterns of untracked files copied or symlinked into every
    worktree from the main work tree. Git failures raise ``GitError`` (exit 1)."""

    repo: Path
    run_id: str
    size: int
    todo: str
    copy: Sequence[str] = ()
    link: Sequence[str] = ()
    free: list[Worktree] = field(default_factory=list)
    busy: dict[int, Worktree] = field(default_factory=dict)
    made: int = 0
    common: Path | None = None  # the git common directory, once asked

    @property
    def root(self) -> Path:
        return self._common_dir() / "batchaction" / "worktrees" / self.run_id

    def _common_dir(self) -> Path:
        if self.common is None:
            self.common = common_dir(self.repo)
        return self.common

    def open(self, token: str = "") -> None:
        """Claim this run's directory: ``owner.json`` with this process's pid and start time,
        and the prefix of its executors' ``BATCH_RUN_TOKEN``."""
        self.root.mkdir(parents=True, exist_ok=True)
        owner = {"pid": os.getpid(), "start": process_start_time(os.getpid()), "token": token}
        (self.root / "owner.json").write_text(json.dumps(owner), encoding="utf-8")

    def acquire(self, number: int, start: str, todo_text: str) -> Worktree:
        """A clean worktree at ``start`` for task ``number``, holding ``todo_text`` as its TODO
        file and the ``copy``/``link`` files. A pooled worktree that cannot be reset (a task
        broke it) is dropped and a new one made."""
        tree = None
        while self.free and tree is None:
            candidate = self.free.pop()
            try:
                self._reset(candidate, start)
                tree = candidate
            except (GitError, OSError):
                self.discard(candidate)
        if tree is None:
            tree = self._make(start)
        tree.start, tree.number, tree.todo_copy = start, number, todo_text
        target = tree.path / self.todo
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("w", encoding="utf-8", newline="") as handle:
            handle.write(todo_text)
        self._bring_files(tree)
        (self.root / f"slot-{tree.slot}.json").write_text(
            json.dumps({"task": number, "start": start}), encoding="utf-8"
        )
        self.busy[number] = tree
        return tree

    def prepare(self, count: int, start: str) -> None:
        """Make up to ``count`` worktrees at ``start`` at once, so the first tasks do not wait
        for them one by one: registered one after another (``git worktree add`` reads every
        other worktree's files, which a concurrent one may be half-way through writing), then
        checked out in threads (each checkout waits mostly on the file system)."""
        wanted = min(count, self.size) - len(self.free) - len(self.busy)
        if wanted <= 0:
            return
        made = [self._register(start) for _ in range(wanted)]
        with ThreadPoolExecutor(max_workers=wanted) as workers:
            list(workers.map(lambda tree: self._populate(tree, start), made))
        self.free.extend(made)

    def _make(self, start: str) -> Worktree:
        """A new worktree at ``start`` (the one full checkout a slot costs)."""
        tree = self._register(start)
        self._populate(tree, start)
        return tree

    def _register(self, start: str) -> Worktree:
        """A new worktree, registered with git at ``start``, its files not yet written."""
        self.made += 1
        tree = Worktree(self.root / f"slot-{self.made}", self.made)
        shutil.rmtree(tree.path, ignore_errors=True)
        slot_index(tree.path).unlink(missing_ok=True)
        add = ("worktree", "add", "--quiet", "--detach", "--force", "--no-checkout", str(tree.path))
        for attempt in range(3):
            # Another run's ``worktree add`` may be half-way through writing its files, which
            # this one reads ("failed to read .git/worktrees/<name>/commondir"): try again.
            done = git(*add, start, cwd=self.repo, check=attempt == 2)
            if done.returncode == 0:
                break
            time.sleep(0.05 * (attempt + 1))
        tree.gitlink = (tree.path / ".git").read_text(encoding="utf-8")
        return tree

    def _populate(self, tree: Worktree, start: str) -> None:
        """Write a registered worktree's files: parallel checkout workers overlap the time the
        file system takes to create each (git >= 2.32); the index becomes the slot's too."""
        workers = f"checkout.workers={min(8, 2 * (os.cpu_count() or 1))}"
        git("-c", workers, "reset", "--quiet", "--hard", start, cwd=tree.path)
        shutil.copy2(tree.git_dir() / "index", slot_index(tree.path))

    def checkout(self, tree: Worktree, commit: str) -> None:
        """Check ``commit`` out in a busy worktree (a candidate to verify) as a fresh task
        would get it: nothing the task left (a stale build product, a file that fakes a
        passing check) stays; the copied and linked files come back. Raises GitError or
        OSError."""
        self._switch(tree, commit)
        self._bring_files(tree)

    def release(self, number: int, broken: bool = False) -> None:
        """The task is done with its worktree: back to the pool, or, ``broken``, dropped."""
        tree = self.busy.pop(number)
        tree.number = None
        (self.root / f"slot-{tree.slot}.json").unlink(missing_ok=True)
        if broken:
            self.discard(tree)
        else:
            self.free.append(tree)

    def discard(self, tree: Worktree) -> None:
        shutil.rmtree(tree.path, ignore_errors=True)
        slot_index(tree.path).unlink(missing_ok=True)
        git("worktree", "prune", cwd=self.repo, check=False)

    def _reset(self, tree: Worktree, start: str) -> None:
        """Check ``start`` out in a pooled worktree and remove everything untracked, with the
        slot's own index (its stat data spares reading unchanged files), then give the
        worktree that index. Raises GitError or OSError when the worktree cannot be reset."""
        self._switch(tree, start)

    def _switch(self, tree: Worktree, commit: str) -> None:
        tree.repair()
        index = slot_index(tree.path)
        own = tree.git_dir() / "index"
        if not index.is_file():  # made by an older version: start from the worktree's
            shutil.copy2(own, index)
        env = {"GIT_INDEX_FILE": str(index)}
        git("checkout", "--quiet", "--detach", "--force", commit, cwd=tree.path, env=env)
        git("clean", "-ffdxq", cwd=tree.path, env=env)
        # copy2 keeps the mtime, which git compares file times with ("racily clean" entries).
        staged = own.with_name("index.batchaction")
        shutil.copy2(index, staged)
        os.replace(staged, own)
        own.with_name("index.lock").unlink(missing_ok=True)  # left by a killed task

    def close(self) -> None:
        """Remove every worktree of this run and its directory (the branches stay)."""
        # Deleting the directories and pruning once is much faster than ``worktree remove``,
        # which looks at every file for changes first (the work is committed by now).
        self.free.clear()
        self.busy.clear()
        shutil.rmtree(self.root, ignore_errors=True)
        git("worktree", "prune", cwd=self.repo, check=False)

    def excluded(self) -> list[str]:
        """Paths that a task's leftovers never include: the TODO file and its lock (the copied
        and linked files are in ``info/exclude``)."""
        return [self.todo, self.todo + ".lock"]

    def _bring_files(self, tree: Worktree) -> None:
        if not self.copy and not self.link:
            return
        exclude = self._common_dir() / "info" / "exclude"  # shared by every worktree
        wanted: list[str] = []
        for patterns, linked in ((self.copy, False), (self.link, True)):
            for pattern in patterns:
                for source in sorted(self.repo.glob(pattern)):
                    rel = source.relative_to(self.repo)
                    target = tree.path / rel
                    if target.exists() or target.is_symlink():
                        continue
                    target.parent.mkdir(parents=True, exist_ok=True)
                    if linked:
                        target.symlink_to(source.resolve())
                    elif source.is_dir():
                        shutil.copytree(source, target, symlinks=True)
                    else:
                        shutil.copy2(source, target)
                    wanted.append("/" + rel.as_posix())
        if wanted:
            exclude.parent.mkdir(parents=True, exist_ok=True)
            present = exclude.read_text(encoding="utf-8") if exclude.exists() else ""
            missing = [w for w in wanted if w not in present.splitlines()]
            if missing:
                with exclude.open("a", encoding="utf-8") as handle:
                    if present and not present.endswith("\n"):
                        handle.write("\n")
                    handle.write("".join(m + "\n" for m in missing))


def _detached_head(tree: Path) -> str | None:
    """The commit id in the HEAD file of the worktree at ``tree`` (detached, as the reset
    leaves it), read without a git call; None when it is anything else or cannot be read."""
    try:
        link = (tree / ".git").read_text(encoding="utf-8")
        if not link.startswith("gitdir:"):
            return None
        named = Path(link.removeprefix("gitdir:").strip())
        text = ((tree / named) / "HEAD").read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text if COMMIT_ID.fullmatch(text) else None


def commit_leftovers(
    tree: Path,
    message: str,
    identity: dict[str, str],
    *,
    exclude: Sequence[str] = (),
    extra: dict[str, str] | None = None,
) -> str:
    """A commit of what a task left in its worktree on top of its HEAD (changes to tracked
    files, untracked files that are not ignored, never the paths ``exclude``), or HEAD when it
    left nothing. ``extra`` maps paths to text to commit as well (a TODO copy to keep).

    Made with plumbing on an index of batchaction's own (``read-tree -m``, ``add -A``,
    ``write-tree``, ``commit-tree``): the pooled worktree's ``slot_index`` when there is one
    (its stat data kept, so that only changed files are read), else a private one that is
    removed after. The worktree's own index, its ``index.lock`` (a killed agent leaves one)
    and its hooks play no part, and the worktree itself is not changed. An embedded
    repository without a commit is skipped. Raises GitError when HEAD cannot be read.

    First, the slot's index (the task's start, as the reset left it) is brought up to the
    work tree: when it then holds HEAD's tree, but for the paths ``exclude``, the task
    committed everything (the usual case) and HEAD is the answer, in two git calls.
    Otherwise the index is set to HEAD first and the work tree added again.
    """
    # Paths outside the tree (a TODO file elsewhere) cannot be named in a pathspec.
    skip = [f":(exclude,literal){p}" for p in exclude if p and not p.startswith("../")]
    index = slot_index(tree)
    quick = index.is_file() and not extra
    head = _detached_head(tree) if quick else None
    if head is None:
        head = git("rev-parse", "--verify", "HEAD^{commit}", cwd=tree).stdout.strip()
    if quick:
        # The work tree over the start equal to HEAD but for the excluded paths (those stay
        # as in the start): a HEAD-based index would hold HEAD, so nothing is left.
        env = {"GIT_INDEX_FILE": str(index.resolve())}
        added = git("add", "-A", "--", ".", *skip, cwd=tree, env=env, check=False)
        same = git(
            "diff-index", "--cached", "--quiet", "--no-renames", head, "--", ".", *skip,
            cwd=tree, env=env, check=False,
        )  # fmt: skip
        if added.returncode == 0 and same.returncode == 0:
            return head
    head_tree = git("rev-parse", "--verify", f"{head}^{{tree}}", cwd=tree).stdout.strip()
    private = not index.is_file()
    if private:
        index = tree / ".." / f".batchaction-index-{tree.name}-{os.getpid()}"
    env = {"GIT_INDEX_FILE": str(index.resolve())}
    try:
        kept = not private and git("read-tree", "-m", head, cwd=tree, env=env, check=False)
        if not kept or kept.returncode != 0:
            git("read-tree", head, cwd=tree, env=env)
        added = git("add", "-A", "--", ".", *skip, cwd=tree, env=env, check=False)
        if added.returncode != 0:
            git("add", "-A", "--ignore-errors", "--", ".", *skip, cwd=tree, env=env, check=False)
        for path, text in (extra or {}).items():
            blob = git("hash-object", "-w", "--stdin", cwd=tree, input_text=text).stdout.strip()
            git("update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", cwd=tree,
                env=env)  # fmt: skip
        tree_sha = git("write-tree", cwd=tree, env=env).stdout.strip()
    finally:
        if private:
            index.unlink(missing_ok=True)
    if tree_sha == head_tree:
        return head
    return git(
        "commit-tree", tree_sha, "-p", head, "-m", message, cwd=tree, env=identity
    ).stdout.strip()
