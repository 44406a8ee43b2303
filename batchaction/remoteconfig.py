"""The git configuration that decides where batchaction's fetch and push go, held still
while the tasks run.

A task can write configuration that batchaction's own fetch and push then read: the
repository's ``.git/config`` (shared by every worktree; ``config.worktree`` too), the user's
``~/.gitconfig`` and, as root, the system's. ``http.proxy`` with ``http.sslVerify=false``
hands the token to a proxy; ``url.<x>.insteadOf`` or a new ``remote.origin.url`` pushes the
work somewhere else; ``core.sshCommand``, ``core.askPass``, ``credential.*`` and
``remote.origin.uploadpack`` run commands. Overriding them with ``-c`` is not enough: a
URL-scoped key (``http.<url>.proxy``, ``http.<url>.sslVerify``) beats the generic key ``-c``
sets, ``insteadOf`` has no generic form to override, and an ``include`` can bring any of
them. So the values git would use (every scope, includes followed: ``git config --list``)
of the keys below are read before any task runs, and again before each fetch and push;
any difference refuses that fetch or push, naming the keys that changed.
"""

from __future__ import annotations

import re
from pathlib import Path

from batchaction.gitops import GitError, git

# Keys (git lower-cases section and variable names; a subsection keeps its case) that
# redirect, weaken or run something in a fetch or push to origin.
WATCHED = re.compile(
    r"^(?:http|url|credential|include|includeif|protocol|ssh)\.|^remote\.origin\."
    r"|^core\.(?:sshcommand|askpass|gitproxy)$"
)
ConfigEntries = tuple[tuple[str, str], ...]


def watched_config(cwd: Path, watched: re.Pattern[str] = WATCHED) -> ConfigEntries:
    """The (key, value) pairs of ``watched`` keys git uses in ``cwd``, in git's order (the
    order decides among several values).

    Raises GitError when git cannot read its configuration (a malformed file, say)."""
    listed = git("config", "--list", "-z", cwd=cwd).stdout
    entries = []
    for item in listed.split("\0"):
        key, _, value = item.partition("\n")
        if key and watched.search(key):
            entries.append((key, value))
    return tuple(entries)


def changed_keys(before: ConfigEntries, after: ConfigEntries) -> list[str]:
    """Keys whose values (or order of values) differ, sorted; values are never shown (an
    ``extraheader`` holds a credential)."""
    keys = {key for key, _ in before} | {key for key, _ in after}
    return sorted(
        key
        for key in keys
        if [v for k, v in before if k == key] != [v for k, v in after if k == key]
    )


def shown(keys: list[str], limit: int = 5) -> str:
    """At most ``limit`` key names, printable ASCII only, a long one cut in its middle (a
    subsection is a URL or path; the variable name at the end says what changed)."""
    cut = []
    for key in keys[:limit]:
        text = "".join(ch if " " <= ch <= "~" else "?" for ch in key)
        cut.append(text if len(text) <= 80 else f"{text[:40]}...{text[-36:]}")
    more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(cut) + more


class ConfigGuard:
    """Reads ``WATCHED`` in ``cwd`` when made (before any task runs); ``problem()`` reads it
    again and says why a fetch or push must not run, or None."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.before: ConfigEntries | None
        try:
            self.before = watched_config(cwd)
        except GitError:
            self.before = None

    def problem(self) -> str | None:
        """None when the watched configuration is as it was; else a one-line reason."""
        if self.before is None:
            return "git could not read its configuration before the tasks ran"
        try:
            after = watched_config(self.cwd)
        except GitError as exc:
            return f"git cannot read its configuration any more: {exc.output.strip()[-300:]}"
        keys = changed_keys(self.before, after)
        if not keys:
            return None
        return (
            f"refusing to fetch or push: git configuration that decides where and how they go "
            f"changed while the tasks ran ({shown(keys)}); a task may not redirect the "
            "action's fetch or push"
        )
