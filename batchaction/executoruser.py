"""Executors as an unprivileged user: in the action's container, the workspace's owner.

GitHub runs a container action as root and mounts the workspace owned by the runner's user
(uid 1001 on its hosted runners). A root executor could read the action's memory through
``/proc/<pid>/mem`` or ``ptrace`` whatever the action does, so with ``executor-user: auto``
(the default) an action running as root runs every executor and ``verify`` command as the
workspace's owner when that is not root: ``setgroups([])``, ``setgid``, ``setuid`` before the
shell starts (``subprocess.Popen(user=, group=, extra_groups=[])``). ``root`` keeps them
root; ``UID`` or ``UID:GID`` names the user (the action must run as root for that).

What an executor writes is handed to that user before each executor starts (``fchown`` of
each entry opened with ``O_NOFOLLOW`` inside a directory opened the same way, so a symlink or
a directory swapped for one is never followed; symlinks and hard-linked files are left
alone): its working directory (the task's worktree, or the workspace), the repository's git
directory (its 256 object fan-out directories made first, so that batchaction's own git, as
root, adds objects only to directories the executor can write; ``COMMIT_EDITMSG`` made
first too), the run's directory of task and result files, the TODO file and its lock. A
``HOME`` the user cannot write is replaced, for executors, by an empty one of their own.
batchaction's own git commands, as root, then work on files the user owns: ``SUDO_UID`` in
the action's environment tells git (2.35.2 and later) that the user's repositories are safe.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import stat
import sys
import tempfile
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from batchaction.errors import BatchError

SETTING = re.compile(r"auto|root|(\d{1,9})(?::(\d{1,9}))?")
FAN_OUT = tuple(f"{i:02x}" for i in range(256))
_OPEN = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


def parse_setting(value: Any, name: str) -> str:
    """``executor-user``: ``auto``, ``root``, ``UID`` or ``UID:GID`` (digits), lower-cased.
    Raises BatchError (exit 2) for anything else."""
    text = str(value).strip().lower()
    if isinstance(value, bool | dict | list) or not SETTING.fullmatch(text):
        raise BatchError(
            f"invalid {name} {value!r}: expected auto, root, a uid (1001) or uid:gid (1001:118)"
        )
    return text


@dataclass(frozen=True)
class ExecutorUser:
    """Who executors run as, and what is handed to them: ``git_dir`` is the repository's
    common git directory (None outside git); ``home`` replaces a HOME they cannot write."""

    uid: int
    gid: int
    git_dir: Path | None = None
    home: Path | None = None


class _State:
    user: ExecutorUser | None = None  # who executors run as now; None: the action's user


_state = _State()


def choose(setting: str, workspace: Path, euid: int) -> tuple[int, int] | None:
    """(uid, gid) executors run as, or None for the action's own user. ``auto``: the
    workspace's owner when the action runs as root (``euid`` 0) and the workspace is not
    root's. Raises BatchError (exit 2) when a uid is named that a non-root action cannot
    switch to, OSError when the workspace cannot be read."""
    if setting == "root":
        return None
    info = os.stat(workspace)
    if setting == "auto":
        return (info.st_uid, info.st_gid) if euid == 0 and info.st_uid != 0 else None
    match = SETTING.fullmatch(setting)
    if match is None or match[1] is None:
        raise BatchError(f"invalid executor-user {setting!r}")
    uid = int(match[1])
    gid = int(match[2]) if match[2] else (info.st_gid if info.st_uid == uid else _gid_of(uid))
    if uid == euid:
        return None
    if euid != 0:
        raise BatchError(
            f"executor-user {setting}: the action runs as uid {euid}, not as root, and cannot "
            "run executors as another user; use `auto`"
        )
    return None if uid == 0 else (uid, gid)


def activate(
    setting: str, workspace: Path, env: Mapping[str, str], log: TextIO | None = None
) -> str | None:
    """Decide who the executors of this run are (``choose``) and, for another user, make
    ``spawn`` use it (``popen_options``) and let git, as root, work in the user's files.
    Returns a problem to refuse the run with, or None. Prints one line to ``log``."""
    _state.user = None
    try:
        chosen = choose(setting, workspace, os.geteuid())
    except BatchError as exc:
        return str(exc)
    except OSError as exc:
        return f"cannot read the workspace's owner: {exc.strerror or exc}"
    if chosen is None:
        return None
    uid, gid = chosen
    home = None if _writable(env.get("HOME"), uid, gid) else _private_home(uid, gid)
    _state.user = ExecutorUser(uid, gid, git_dir(workspace), home)
    os.environ["SUDO_UID"] = str(uid)
    where = f", HOME {home} (theirs is not writable for them)" if home else ""
    print(
        f"batchaction: executors run as uid {uid}, gid {gid}{where} "
        "(executor-user: root runs them as root)",
        file=log or sys.stderr,
    )
    return None


def popen_options(cwd: Path, env: Mapping[str, str]) -> dict[str, Any]:
    """Keyword arguments for the ``Popen`` of an executor in ``cwd`` with ``env``: ``env``
    itself, and, when executors run as another user, that user, with what the executor
    writes handed over first (see the module docstring)."""
    user = _state.user
    env = dict(env)
    if user is None:
        return {"env": env}
    if user.home is not None:
        env["HOME"] = str(user.home)
    prepare(user, Path(os.path.realpath(cwd)), env)
    return {"env": env, "user": user.uid, "group": user.gid, "extra_groups": []}


def prepare(user: ExecutorUser, cwd: Path, env: Mapping[str, str]) -> int:
    """Hand what an executor in ``cwd`` with ``env`` writes to ``user``; the count of
    entries whose owner changed. Entries that cannot be read or changed are skipped."""
    changed = 0
    prune: set[str] = set()
    if user.git_dir is not None:
        prune.add(str(user.git_dir / "batchaction"))  # batchaction's own: slots and indexes
        _make_missing(user.git_dir)
    changed += hand_over(cwd, user.uid, user.gid, prune)
    if user.git_dir is not None and not user.git_dir.is_relative_to(cwd):
        changed += hand_over(user.git_dir, user.uid, user.gid, prune)
    todo = env.get("BATCH_TODO_PATH")
    if todo:
        changed += _own_path(Path(todo), user.uid, user.gid)
        changed += _own_path(Path(todo + ".lock"), user.uid, user.gid, create=True)
    result = env.get("BATCH_RESULT_FILE")
    if result:
        changed += _own_path(Path(result).parent, user.uid, user.gid)
    return changed


def hand_over(root: Path, uid: int, gid: int, prune: Collection[str] = ()) -> int:
    """``fchown(uid, gid)`` of ``root`` and everything under it not owned by ``uid``, never
    following a symlink, never descending into a directory in ``prune`` (absolute paths);
    symlinks and regular files with more than one link are left alone. Returns how many
    entries changed owner; errors skip the entry."""
    changed = _own_path(root, uid, gid)
    try:
        walk = os.fwalk(root, follow_symlinks=False)
        for top, dirs, files, top_fd in walk:
            dirs[:] = [d for d in dirs if os.path.join(top, d) not in prune]
            for name in (*dirs, *files):
                changed += _own_at(top_fd, name, uid, gid)
    except OSError:
        pass
    return changed


def git_dir(workspace: Path) -> Path | None:
    """The common git directory of the repository whose work tree is ``workspace``, read
    from ``.git`` (a directory, or a file ``gitdir: X`` with ``X/commondir``); None without
    one."""
    dot = workspace / ".git"
    try:
        if dot.is_dir() and not dot.is_symlink():
            return Path(os.path.realpath(dot))
        named = dot.read_text(encoding="utf-8").strip().removeprefix("gitdir:").strip()
        gitdir = (workspace / named).resolve()
        common = gitdir / "commondir"
        if common.is_file():
            gitdir = (gitdir / common.read_text(encoding="utf-8").strip()).resolve()
        return gitdir if gitdir.is_dir() else None
    except (OSError, UnicodeDecodeError):
        return None


def _own_at(dir_fd: int, name: str, uid: int, gid: int) -> int:
    try:
        fd = os.open(name, _OPEN, dir_fd=dir_fd)
    except OSError:
        return 0  # a symlink (ELOOP), a socket, or gone
    try:
        return _own_fd(fd, uid, gid)
    finally:
        os.close(fd)


def _own_path(path: Path, uid: int, gid: int, create: bool = False) -> int:
    try:
        fd = os.open(path, _OPEN | (os.O_CREAT if create else 0), 0o644)
    except OSError:
        return 0
    try:
        return _own_fd(fd, uid, gid)
    finally:
        os.close(fd)


def _own_fd(fd: int, uid: int, gid: int) -> int:
    try:
        info = os.fstat(fd)
        if info.st_uid == uid or (stat.S_ISREG(info.st_mode) and info.st_nlink > 1):
            return 0  # someone else's file may be linked in: never hand it over
        os.fchown(fd, uid, gid)
    except OSError:
        return 0
    return 1


def _make_missing(git: Path) -> None:
    """The object fan-out directories and ``COMMIT_EDITMSG``, made now so that they are the
    executor's, not root's when batchaction's git makes them during the run."""
    objects = git / "objects"
    if not objects.is_dir() or objects.is_symlink():
        return
    for name in FAN_OUT:
        with contextlib.suppress(OSError):
            os.mkdir(objects / name, 0o755)
    with contextlib.suppress(OSError):
        os.close(os.open(git / "COMMIT_EDITMSG", _OPEN | os.O_CREAT, 0o644))


def _writable(home: str | None, uid: int, gid: int) -> bool:
    """Whether ``uid`` (group ``gid``) can make files in the directory ``home``."""
    if not home:
        return False
    try:
        info = os.stat(home)
    except OSError:
        return False
    if not stat.S_ISDIR(info.st_mode):
        return False
    mode = info.st_mode
    if info.st_uid == uid:
        return mode & 0o300 == 0o300
    if info.st_gid == gid:
        return mode & 0o030 == 0o030
    return mode & 0o003 == 0o003


def _private_home(uid: int, gid: int) -> Path:
    home = Path(tempfile.mkdtemp(prefix="batchaction-home-"))
    os.chown(home, uid, gid)
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    return home


def _gid_of(uid: int) -> int:
    try:
        import pwd  # noqa: PLC0415 - POSIX only

        return pwd.getpwuid(uid).pw_gid
    except (ImportError, KeyError):
        return uid
