"""Commands a task configures never run inside batchaction's own git.

Filters (``filter.<name>.clean``, ``smudge``, ``process``), merge drivers and diff drivers
are commands from the git configuration that git runs for the paths ``.gitattributes``
assigns them to: in ``git add``, ``commit``, ``checkout``, ``cherry-pick``, ``status``.
batchaction runs those on a task's behalf (committing what a task left, replaying after a
push race, resetting a worktree for the next task), and in the container as root, while
executors run as the workspace's owner (``executoruser``): a driver a task configured would
run with the privileges the executor user is meant to withhold. So the drivers the
configuration defines are read when the tasks start (``DriverGuard``), and each of those git
commands first reads them again where it runs (a worktree has its own ``config.worktree``):
any driver added or changed refuses the command, naming the keys. Drivers that were already
configured (Git LFS, say) keep working; a task can assign them to its files, not redefine
them.
"""

from __future__ import annotations

import re
from pathlib import Path

from batchaction.gitops import GitError
from batchaction.remoteconfig import ConfigEntries, changed_keys, shown, watched_config

DRIVERS = re.compile(
    r"^filter\..+\.(?:clean|smudge|process)$|^merge\..+\.driver$"
    r"|^diff\..+\.(?:command|textconv)$|^diff\.external$"
)


class DriverGuard:
    """The drivers configured in ``cwd`` when made; ``problem(where)`` says why a git
    command in ``where`` must not run (a driver was added or changed since), or None."""

    def __init__(self, cwd: Path) -> None:
        try:
            self.before: ConfigEntries | None = watched_config(cwd, DRIVERS)
        except GitError:
            self.before = None

    def problem(self, where: Path) -> str | None:
        """None when ``where``'s drivers are those of the start; else a one-line reason."""
        try:
            after = watched_config(where, DRIVERS)
        except GitError as exc:
            return f"git cannot read its configuration: {exc.output.strip()[-300:]}"
        keys = changed_keys(self.before or (), after)
        if not keys:
            return None
        return (
            f"refusing to run git where a task configured a filter, merge or diff driver "
            f"({shown(keys)}): batchaction's own git runs no command a task configured"
        )
