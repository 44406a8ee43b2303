"""The repository: its root (which TODO.md, the configuration file and executors use), the
git it has, and what batchaction keeps out of its commits."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
from pathlib import Path

from batchaction.gitenv import git_environment, own_git


def repository_root(start: Path) -> Path:
    """The git work tree holding ``start``, or ``start`` itself outside git.

    Like git, the nearest directory upwards that holds ``.git`` (a directory, or the file of a
    linked worktree or submodule), found without starting a process. When ``GIT_DIR`` or
    ``GIT_WORK_TREE`` is set, git itself is asked.
    """
    if "GIT_DIR" not in os.environ and "GIT_WORK_TREE" not in os.environ:
        for directory in (start, *start.parents):
            if (directory / ".git").exists():
                return directory
        return start
    try:
        out = subprocess.run(
            own_git("rev-parse", "--show-toplevel"),
            env=git_environment(),
            cwd=start,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return start
    top = out.stdout.strip()
    return Path(top) if out.returncode == 0 and top else start


def _glob_escape(text: str) -> str:
    return "".join(f"[{ch}]" if ch in "*?[]\\!#" else ch for ch in text)


def exclude_lock_file(todo: Path) -> None:
    """Add the TODO file's lock (``TODO.md.lock``) and batchaction's temporary copies of it
    (``.TODO.md.*.tmp``, renamed over it on each write) to the repository's ``info/exclude``,
    so no ``git add -A`` (an agent's, a user's) commits them or trips over one that vanishes.
    Outside git, or when git cannot say where its directory is, nothing happens; lines
    already there are not added twice."""
    todo = todo.resolve()
    try:
        out = subprocess.run(
            own_git("rev-parse", "--show-toplevel", "--git-common-dir"),
            env=git_environment(),
            cwd=todo.parent,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return
    lines = out.stdout.splitlines()
    if out.returncode != 0 or len(lines) != 2:
        return
    top, common = Path(lines[0]), Path(lines[1])
    common = common if common.is_absolute() else (todo.parent / common).resolve()
    try:
        folder = todo.parent.relative_to(top.resolve()).as_posix()
    except ValueError:
        return
    prefix = "/" + ("" if folder == "." else _glob_escape(folder) + "/")
    patterns = [
        prefix + _glob_escape(todo.name + ".lock"),
        prefix + "." + _glob_escape(todo.name) + ".*.tmp",
    ]
    _append_exclude(common / "info" / "exclude", patterns)


def exclude_paths(repo: Path, patterns: list[str]) -> None:
    """Add ``patterns`` (gitignore syntax, anchored at the root) to the ``info/exclude`` of
    the repository holding ``repo``; nothing outside git or when it cannot be written."""
    try:
        out = subprocess.run(
            own_git("rev-parse", "--git-common-dir"),
            env=git_environment(),
            cwd=repo, capture_output=True, text=True, check=False,
        )  # fmt: skip
    except OSError:
        return
    if out.returncode != 0 or not out.stdout.strip():
        return
    common = Path(out.stdout.strip())
    common = common if common.is_absolute() else (repo / common).resolve()
    _append_exclude(common / "info" / "exclude", patterns)


def _append_exclude(exclude: Path, patterns: list[str]) -> None:
    """Append the patterns ``exclude`` does not hold yet, one a line."""
    try:
        text = exclude.read_text(encoding="utf-8") if exclude.exists() else ""
        missing = [p for p in patterns if p not in text.splitlines()]
        if not missing:
            return
        exclude.parent.mkdir(parents=True, exist_ok=True)
        with exclude.open("a", encoding="utf-8") as handle:
            handle.write(
                ("\n" if text and not text.endswith("\n") else "")
                + "".join(m + "\n" for m in missing)
            )
    except (OSError, UnicodeDecodeError):
        return


def new_run_id() -> str:
    """A run's id, unique on this machine: ``20261201-004530-4242`` (UTC time, pid)."""
    return dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S") + f"-{os.getpid()}"


MIN_GIT = (2, 38)  # git merge-tree --write-tree


def git_version() -> tuple[int, ...]:
    """The installed git's version (``(2, 39, 5)``), or ``()`` when there is no git."""
    try:
        out = subprocess.run(
            ["git", "version"], capture_output=True, text=True, check=False, env=git_environment()
        ).stdout
    except OSError:
        return ()
    numbers = re.findall(r"\d+", out.split("version", 1)[-1])[:3]
    return tuple(int(n) for n in numbers)


def has_commits(repo: Path) -> bool:
    """True in a git work tree whose HEAD names a commit (worktrees need one to start from)."""
    try:
        verify = own_git("rev-parse", "--verify", "-q", "HEAD^{commit}")
        done = subprocess.run(
            verify, cwd=repo, capture_output=True, check=False, env=git_environment()
        )
        return done.returncode == 0
    except OSError:  # no git at all
        return False
