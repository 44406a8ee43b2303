"""Every git call goes through ``git()`` (a long-running batch command through
``history.Batch``); commit-back with push-race handling lives here.

On a rejected push nothing is forced: fetch, replay this run's commits on the new tip (the
executors' own by cherry-picking, each status commit by re-applying its status changes to the
TODO file as it is there, never a textual rebase), push again, with exponential backoff.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tenacity

from batchaction.credentials import REMOTE_CONFIG, RemoteAccess
from batchaction.errors import BatchError
from batchaction.gitenv import OWN_CONFIG, git_environment
from batchaction.selection import format_selection
from batchaction.status import DEFAULT_TABLE, StatusTable
from batchaction.textlines import read_todo_text
from batchaction.workflow import escape_data
from batchaction.writeback import StatusChange, write_changes

BOT_NAME = "github-actions[bot]"
BOT_EMAIL = "41898282+github-actions[bot]@users.noreply.github.com"


class GitError(BatchError):
    def __init__(self, args: Sequence[str], code: int, output: str) -> None:
        super().__init__(f"git {' '.join(args)} failed (exit {code}): {output.strip()[-2000:]}", 1)
        self.code = code
        self.output = output


# Run before each git command that may run drivers from the configuration (filters, merge
# and diff drivers): why it must not run, or None. Set once, before any task runs
# (``driverguard``); None: no check.
_driver_check: Callable[[Path], str | None] | None = None
DRIVER_COMMANDS = frozenset(
    {"add", "commit", "checkout", "cherry-pick", "merge", "stash", "reset", "restore",
     "switch", "status", "diff", "worktree", "read-tree", "checkout-index", "update-index"}
)  # fmt: skip


def check_drivers(check: Callable[[Path], str | None] | None) -> None:
    """Install (or remove, with None) the check run before ``DRIVER_COMMANDS``."""
    global _driver_check  # noqa: PLW0603 - one setting for the run, made before any thread
    _driver_check = check


def _subcommand(args: Sequence[str]) -> str:
    """``("-c", "k=v", "add", ...)`` -> ``"add"``."""
    rest = list(args)
    while len(rest) >= 2 and rest[0] == "-c":
        rest = rest[2:]
    return rest[0] if rest else ""


def git(
    *args: str,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    input_text: str | None = None,
    access: RemoteAccess | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``git ARGS`` in ``cwd`` (no prompts, C locale, ``OWN_CONFIG``), ``input_text`` on
    its stdin. ``access`` (fetch and push only): the remote's credentials, through a pipe,
    and the check that the git configuration was not changed; when it refuses, git does not
    run and the result is exit 128 with the reason on stderr. A push made with the
    push-token that the server refuses has that said on stderr (``push_refused``).

    Raises GitError (exit 1) on a non-zero exit when ``check``.
    """
    full_env = git_environment()
    if env:
        full_env.update(env)
    with contextlib.ExitStack() as stack:
        options: list[str] = []
        fds: tuple[int, ...] = ()
        refusal = access.refusal() if access is not None else None
        push = access is not None and _subcommand(args) == "push"
        if refusal is None and _driver_check is not None and _subcommand(args) in DRIVER_COMMANDS:
            refusal = _driver_check(cwd)
        if refusal is not None:
            proc = subprocess.CompletedProcess(["git", *args], 128, "", refusal)
        else:
            if access is not None:
                options, fds = stack.enter_context(access.git_options(push=push))
            elif args and args[0] in ("fetch", "push", "pull", "ls-remote"):
                options = list(REMOTE_CONFIG)  # no token, the same guard rails
            proc = _spawn([*options, *args], cwd, full_env, input_text, fds)
            refused = access.push_refused(proc.stderr + proc.stdout) if push and access else None
            if proc.returncode != 0 and access is not None and refused:
                # Nothing is lost to an expired or read-only push-token: the push is made
                # with github-token (no workflow runs on that commit), and that is warned.
                with access.git_options() as (options, fds):
                    proc = _spawn([*options, *args], cwd, full_env, input_text, fds)
                if proc.returncode == 0:
                    warning = f"{refused}. Pushed with github-token instead: no workflow runs on it"
                    print(f"::warning::{escape_data(warning)}", flush=True)
                    access.refused.append(warning)
                else:
                    proc.stderr = refused + "\n"
    if check and proc.returncode != 0:
        raise GitError(args, proc.returncode, proc.stderr + proc.stdout)
    return proc


def _spawn(
    args: Sequence[str],
    cwd: Path,
    env: Mapping[str, str],
    input_text: str | None,
    fds: tuple[int, ...],
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", *OWN_CONFIG, *args], cwd=cwd, env=env, capture_output=True, text=True,
        check=False, input=input_text, pass_fds=fds,
        stdin=subprocess.DEVNULL if input_text is None else None,
    )  # fmt: skip


def identity_env(name: str = BOT_NAME, email: str = BOT_EMAIL) -> dict[str, str]:
    return {
        "GIT_AUTHOR_NAME": name,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_COMMITTER_NAME": name,
        "GIT_COMMITTER_EMAIL": email,
    }


def commit_message(outcomes: Mapping[int, str], template: str | None = None) -> str:
    """``tasks: 63 completed, 64 failed, 66 blocked`` (the template may use {outcomes})."""
    order = ("completed", "in-progress", "failed", "timed-out", "blocked", "cancelled")
    parts = []
    for outcome in order:
        numbers = [n for n, o in outcomes.items() if o == outcome]
        if numbers:
            parts.append(f"{format_selection(numbers)} {outcome.replace('-', ' ')}")
    text = ", ".join(parts) or "status updates"
    if template:
        return template.replace("{outcomes}", text)
    return f"tasks: {text}"


def head(cwd: Path) -> str:
    return git("rev-parse", "HEAD", cwd=cwd).stdout.strip()


def current_branch(cwd: Path) -> str | None:
    proc = git("symbolic-ref", "--quiet", "--short", "HEAD", cwd=cwd, check=False)
    return proc.stdout.strip() or None


@dataclass
class CommitResult:
    sha: str | None
    pushed: bool
    attempts: int
    branch: str | None
    error: str | None = None

    def as_summary(self) -> dict[str, Any]:
        """The JSON summary's ``commit`` object."""
        return {
            "sha": self.sha,
            "pushed": self.pushed,
            "attempts": self.attempts,
            "branch": self.branch,
            "error": self.error,
        }


def commit_paths(
    cwd: Path, paths: Sequence[str], message: str, env: Mapping[str, str], *, text: bool = False
) -> str | None:
    """Stage ``paths`` and commit them, and nothing else, if they changed; the new sha, or
    None. What an executor left staged (a ``.env``, say) stays staged, out of the commit.
    ``text``: the paths' file modes are kept as committed (a TODO file a task made
    executable is committed as it was)."""
    if not paths:
        return None
    if text:
        return _commit_paths(cwd, paths, message, env, ("-c", "core.fileMode=false"))
    return _commit_paths(cwd, paths, message, env, ())


def _commit_paths(
    cwd: Path, paths: Sequence[str], message: str, env: Mapping[str, str], config: Sequence[str]
) -> str | None:
    present = [p for p in paths if os.path.lexists(cwd / p)]
    gone = [p for p in paths if p not in present]
    if present:
        git(*config, "add", "--", *present, cwd=cwd)
    if gone:  # deleted, or moved away by a rename: the deletion is what is committed
        git("rm", "--cached", "--quiet", "--ignore-unmatch", "--", *gone, cwd=cwd)
    staged = git("diff", "--cached", "--quiet", "--", *paths, cwd=cwd, check=False)
    if staged.returncode == 0:
        return None
    git(
        *config, "commit", "--quiet", "--no-verify", "-m", message, "--only", "--", *paths,
        cwd=cwd, env=env,
    )  # fmt: skip
    return head(cwd)


FILES_MESSAGE = "tasks: files written by the run (add-paths)"


class PushRejectedError(Exception):
    pass


@contextlib.contextmanager
def _stashed(cwd: Path, env: Mapping[str, str]) -> Iterator[None]:
    """Set aside uncommitted changes to tracked files (not ours to commit) while replaying."""
    dirty = git("status", "--porcelain", "--untracked-files=no", cwd=cwd).stdout.strip()
    if dirty:
        git("stash", "push", "--quiet", cwd=cwd, env=env)
    try:
        yield
    finally:
        if dirty:
            git("stash", "pop", "--quiet", cwd=cwd, env=env, check=False)


# A status commit's changes and message, by sha: what a replay rebuilds it from.
StatusCommit = tuple[Sequence[StatusChange], str]


def push_fast_forward(
    cwd: Path,
    branch: str,
    lease: str,
    rev: str,
    *,
    remote: str = "origin",
    access: RemoteAccess | None = None,
) -> subprocess.CompletedProcess[str]:
    """Push ``rev`` to ``refs/heads/<branch>`` only when the branch is still at ``lease``
    (``--force-with-lease``: a deleted or moved branch refuses) and ``rev`` descends from
    ``lease``: always a fast-forward, even where the remote would take a forced push. A task
    that reset or rewrote the branch's history cannot make the push drop the pull request's
    commits. Returns git's result (exit 1 with the reason when ``rev`` does not descend)."""
    # Not from a commit-graph file a task may have forged: from the commits themselves.
    descends = git(
        "-c", "core.commitGraph=false", "merge-base", "--is-ancestor", lease, rev,
        cwd=cwd, check=False,
    )  # fmt: skip
    if descends.returncode != 0:
        reason = (
            f"{rev} does not contain {lease[:12]}, the branch's tip the run built on (a task "
            "reset or rewrote the history?): pushing it would drop commits; nothing was pushed"
        )
        return subprocess.CompletedProcess(["git", "push"], 1, "", reason)
    return git(
        "push", "--porcelain", f"--force-with-lease=refs/heads/{branch}:{lease}",
        remote, f"{rev}:refs/heads/{branch}", cwd=cwd, check=False, access=access,
    )  # fmt: skip


def todo_problem(path: Path) -> str | None:
    """Why the TODO file at ``path`` must not be committed as the bot's (deleted, a symlink,
    a directory, binary, not UTF-8), or None."""
    if path.is_symlink():
        return f"{path.name} was replaced by a symbolic link: the statuses were not committed"
    try:
        read_todo_text(path)
    except BatchError as exc:
        return f"{exc} (the statuses were not committed)"
    return None


def commit_back(
    cwd: Path,
    *,
    todo: Path,
    base: str,
    branch: str,
    changes: Sequence[StatusChange],
    message: str,
    extra_paths: Sequence[str] = (),
    remote: str = "origin",
    env: Mapping[str, str] | None = None,
    table: StatusTable = DEFAULT_TABLE,
    markers: Mapping[str, str] | None = None,
    attempts: int = 5,
    backoff: float = 1.0,
    before_push: Callable[[], None] | None = None,
    access: RemoteAccess | None = None,
    status_commits: Mapping[str, StatusCommit] | None = None,
) -> CommitResult:
    """Commit the TODO file (and ``extra_paths``) and push to ``branch``, surviving races.

    ``extra_paths`` get a commit of their own, under the status commit. ``status_commits``
    names the status commits already made during the run (``commit: each``): sha -> (the
    changes it holds, its message). When a push loses a race, every commit since ``base`` is
    replayed on the new tip in order: a status commit by applying its changes again to the
    file as it is there (never a textual rebase of TODO.md), any other commit (the executors'
    own, the add-paths files) by cherry-picking it. ``access`` carries the push's and
    fetch's credentials and configuration check (``git``).
    """
    ident = identity_env() | dict(env or {})
    # The directory is resolved, not the file: a symlink a task put in its place is seen.
    located = todo if todo.is_absolute() else Path.cwd() / todo
    real_dir = Path(os.path.realpath(located.parent))
    todo_rel = os.path.relpath(real_dir / located.name, cwd.resolve())
    extra = [p for p in extra_paths if p != todo_rel]
    if extra:
        commit_paths(cwd, extra, FILES_MESSAGE, ident)
    replays: dict[str, StatusCommit] = dict(status_commits or {})
    # A TODO file a task deleted, made binary or replaced is never committed as the bot's.
    unusable = todo_problem(cwd / todo_rel)
    sha = None if unusable else commit_paths(cwd, [todo_rel], message, ident, text=True)
    if sha is not None:
        replays[sha] = (changes, message)
    if head(cwd) == base:
        return CommitResult(None, False, 0, branch, unusable)
    tries = 0

    def replay_onto(upstream: str) -> None:
        """Rebuild base..HEAD on ``upstream``; on a conflict put the branch back and raise."""
        nonlocal replays
        own = git("rev-list", "--reverse", "--no-merges", f"{base}..HEAD", cwd=cwd).stdout.split()
        before = head(cwd)
        git("checkout", "--quiet", "--detach", upstream, cwd=cwd)
        rebuilt: dict[str, StatusCommit] = {}
        try:
            for commit in own:
                if commit in replays:
                    held, subject = replays[commit]
                    write_changes(todo, held, table, markers)
                    new = commit_paths(cwd, [todo_rel], subject, ident, text=True)
                    if new is not None:
                        rebuilt[new] = (held, subject)
                    continue
                picked = git("cherry-pick", commit, cwd=cwd, env=ident, check=False)
                if picked.returncode != 0:
                    git("cherry-pick", "--abort", cwd=cwd, check=False)
                    raise GitError(
                        ("cherry-pick", commit), picked.returncode, picked.stderr + picked.stdout
                    )
        except (OSError, GitError) as exc:
            git("checkout", "--quiet", "--force", "-B", branch, before, cwd=cwd, check=False)
            if isinstance(exc, GitError):
                raise
            raise GitError(
                ("re-apply", todo_rel), 1, f"cannot write {todo_rel}: {exc.strerror or exc}"
            ) from None
        replays = rebuilt
        git("checkout", "--quiet", "-B", branch, cwd=cwd)

    def attempt() -> None:
        nonlocal tries, base
        tries += 1
        if before_push is not None:
            before_push()
        # Only onto the tip the commits were built on: a branch that moved is a race (its
        # new tip is fetched and the work replayed), one that was deleted is not re-created.
        proc = push_fast_forward(cwd, branch, base, "HEAD", remote=remote, access=access)
        if proc.returncode == 0:
            return
        text = proc.stderr + proc.stdout
        # A race: the branch moved ("[rejected] ... (fetch first | non-fast-forward)"), or
        # GitHub's transient "cannot lock ref". A hook's "[remote rejected]" is final.
        raced = "[rejected]" in text or "non-fast-forward" in text or "fetch first" in text
        if not raced and "cannot lock ref" not in text:
            raise GitError(("push", remote, branch), proc.returncode, text)
        # Someone pushed first: rebuild our work on their tip.
        git("fetch", "--quiet", remote, f"refs/heads/{branch}", cwd=cwd, access=access)
        upstream = git("rev-parse", "FETCH_HEAD", cwd=cwd).stdout.strip()
        with _stashed(cwd, ident):
            replay_onto(upstream)
        base = upstream
        raise PushRejectedError

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(PushRejectedError),
        stop=tenacity.stop_after_attempt(attempts),
        wait=tenacity.wait_exponential(multiplier=backoff, max=30.0),
        reraise=True,
    )
    try:
        retrying(attempt)
    except PushRejectedError:
        return CommitResult(
            head(cwd), False, tries, branch, f"push still rejected after {tries} attempts"
        )
    except GitError as exc:
        return CommitResult(head(cwd), False, tries, branch, exc.message)
    return CommitResult(head(cwd), True, tries, branch, unusable)
