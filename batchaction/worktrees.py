"""Task worktrees: a pool of git worktrees outside the work tree, one per running task.

Worktrees live under ``<git-common-dir>/batchaction/worktrees/<run-id>/slot-<k>`` and share the
repository's object store. At most ``size`` exist; a finished task's worktree is reset to the
next task's start (``checkout --detach --force``, ``clean -ffdx``) instead of checking the
repository out again. ``owner.json`` beside the slots names the run's process (pid and start
time), so a later run recognises the worktrees of a run that was killed and salvages their work
before removing them, and never touches those of a run that is still alive.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from batchaction.gitops import GitError, git


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

    @property
    def root(self) -> Path:
        return common_dir(self.repo) / "batchaction" / "worktrees" / self.run_id

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
                candidate.repair()
                git("checkout", "--quiet", "--detach", "--force", start, cwd=candidate.path)
                git("clean", "-ffdxq", cwd=candidate.path)
                tree = candidate
            except (GitError, OSError):
                self.discard(candidate)
        if tree is None:
            self.made += 1
            tree = Worktree(self.root / f"slot-{self.made}", self.made)
            shutil.rmtree(tree.path, ignore_errors=True)
            git("worktree", "add", "--quiet", "--detach", "--force", str(tree.path), start,
                cwd=self.repo)  # fmt: skip
            tree.gitlink = (tree.path / ".git").read_text(encoding="utf-8")
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
        git("worktree", "prune", cwd=self.repo, check=False)

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
        exclude = Path(git("rev-parse", "--git-path", "info/exclude", cwd=tree.path).stdout.strip())
        if not exclude.is_absolute():
            exclude = tree.path / exclude
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
    (their executors, which outlive a SIGKILLed run, are stopped first), then remove those
    worktrees. Never raises for one broken worktree: what can be saved is saved. Returns the
    branch names made."""
    branches: list[str] = []
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
                branches.append(branch)
        ref = f"refs/batchaction/{run_dir.name}/tip"
        tip = git("rev-parse", "--verify", "-q", ref, cwd=repo, check=False).stdout.strip()
        if tip:
            merged = git("merge-base", "--is-ancestor", tip, "HEAD", cwd=repo, check=False)
            if merged.returncode != 0:  # integrated work that never reached the branch
                branch = f"batchaction/{run_dir.name}"
                git("branch", "--force", branch, tip, cwd=repo, check=False)
                branches.append(branch)
            git("update-ref", "-d", ref, cwd=repo, check=False)
        shutil.rmtree(run_dir, ignore_errors=True)
    git("worktree", "prune", cwd=repo, check=False)
    return branches


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

    Made with plumbing on a private index (``read-tree``, ``add -A``, ``write-tree``,
    ``commit-tree``): the worktree's own index, its ``index.lock`` (a killed agent leaves
    one) and its hooks play no part, and the worktree itself is not changed. An embedded
    repository without a commit is skipped. Raises GitError when HEAD cannot be read.
    """
    head = git("rev-parse", "--verify", "HEAD^{commit}", cwd=tree).stdout.strip()
    index = tree / ".." / f".batchaction-index-{tree.name}-{os.getpid()}"
    env = {"GIT_INDEX_FILE": str(index.resolve())}
    try:
        git("read-tree", head, cwd=tree, env=env)
        added = git("add", "-A", "--", ".", cwd=tree, env=env, check=False)
        if added.returncode != 0:
            git("add", "-A", "--ignore-errors", "--", ".", cwd=tree, env=env, check=False)
        for path in exclude:  # back as in HEAD, or not at all
            git("reset", "-q", head, "--", path, cwd=tree, env=env, check=False)
        for path, text in (extra or {}).items():
            blob = git("hash-object", "-w", "--stdin", cwd=tree, input_text=text).stdout.strip()
            git("update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", cwd=tree,
                env=env)  # fmt: skip
        tree_sha = git("write-tree", cwd=tree, env=env).stdout.strip()
    finally:
        index.unlink(missing_ok=True)
    if tree_sha == git("rev-parse", f"{head}^{{tree}}", cwd=tree).stdout.strip():
        return head
    return git(
        "commit-tree", tree_sha, "-p", head, "-m", message, cwd=tree, env=identity
    ).stdout.strip()
