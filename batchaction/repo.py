"""Where the repository is: the root that TODO.md, the configuration file and executors use."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


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
            ["git", "rev-parse", "--show-toplevel"],
            cwd=start,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return start
    top = out.stdout.strip()
    return Path(top) if out.returncode == 0 and top else start


def exclude_lock_file(todo: Path) -> None:
    """Add the TODO file's lock (``TODO.md.lock``) to the repository's ``info/exclude`` so no
    ``git add -A`` (an agent's, a user's) ever commits it. Outside git, or when git cannot
    say where its directory is, nothing happens; a line already there is not added twice."""
    todo = todo.resolve()
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--show-toplevel", "--git-common-dir"],
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
        rel = todo.with_name(todo.name + ".lock").relative_to(top.resolve()).as_posix()
    except ValueError:
        return
    pattern = "/" + "".join(f"[{ch}]" if ch in "*?[]\\!#" else ch for ch in rel)
    exclude = common / "info" / "exclude"
    try:
        present = exclude.read_text(encoding="utf-8").splitlines() if exclude.exists() else []
        if pattern in present:
            return
        exclude.parent.mkdir(parents=True, exist_ok=True)
        with exclude.open("a", encoding="utf-8") as handle:
            if present and not exclude.read_text(encoding="utf-8").endswith("\n"):
                handle.write("\n")
            handle.write(f"{pattern}\n")
    except (OSError, UnicodeDecodeError):
        return
