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
