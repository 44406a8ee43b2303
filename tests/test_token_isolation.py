"""Executors cannot read the token, end to end through ``batchaction action``.

An executor that goes looking, as a task on a pull request could: it reads the environment and
command line of every process above it (``/proc/<pid>/environ``, ``cmdline``, from
``$PPID`` up to the top) and tries to open their memory (``/proc/<pid>/mem``), and everything it
read is searched for every form of the token. The run must still use the token: it commits,
pushes, and replies with ``Authorization: Bearer <token>``.

Three set-ups: the action and its executors as root (the default here); the action and its
executors as one unprivileged user (the composite action on a runner: the same uid, where the
action's non-dumpable flag is what closes its memory and environment); and the container's
case, the action as root on a workspace owned by another uid (GitHub's runner user, 1001), where
executors run as that user. The last two run the action with the system's interpreter, which
any user can execute, as the container's is; this checkout and the test environment's
site-packages are put on its path.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import actionhelpers
import pytest
from actionhelpers import (
    TOKEN,
    ActionRun,
    ApiStub,
    Sandbox,
    comment_event,
    make_sandbox,
    pull_answer,
    run_action,
    status_of,
)

import batchaction
from batchaction.inert import secret_forms

AGENT = Path(__file__).resolve().parent / "fixtures" / "executors" / "agent.sh"
USER = (1001, 123)  # uid and gid of GitHub's runner user, as a container action sees them
SYSTEM_PYTHON = Path("/usr/bin/python3")
FORMS = [form.encode() for form in secret_forms(TOKEN)]

# What a curious task does: record who it is, then walk up its ancestors and read what it can.
SPY = r"""
out="$SPY_OUT/spy-$BATCH_TASK_NUMBER"
mkdir -p "$out"
id -u > "$out/uid"; id -g > "$out/gid"; id -G > "$out/groups"
env > "$out/self.environ"
cat /proc/$$/environ > "$out/self.proc-environ" 2>/dev/null
pid=$PPID
while [ -n "$pid" ] && [ "$pid" -gt 0 ]; do
  d="$out/$pid"
  mkdir -p "$d"
  if cat "/proc/$pid/environ" > "$d/environ" 2>/dev/null; then a=ok; else a=denied; fi
  echo "$a" > "$d/environ.access"
  cat "/proc/$pid/cmdline" > "$d/cmdline" 2>/dev/null
  if (exec 3< "/proc/$pid/mem") 2>/dev/null; then a=ok; else a=denied; fi
  echo "$a" > "$d/mem.access"
  pid=$(sed -n 's/^PPid:[[:space:]]*//p' "/proc/$pid/status")
done
# The TODO file's lock and the result file are the executor's to write.
exec 9>>"$BATCH_TODO_PATH.lock" && echo ok > "$out/lock.access"
"""


def spy_executor(sandbox: Sandbox) -> str:
    script = sandbox.root / "spy.sh"
    script.write_text(SPY, encoding="utf-8")
    script.chmod(0o755)
    return f"sh {shlex.quote(str(script))} && exec {shlex.quote(str(AGENT))} {{number}}"


def findings(sandbox: Sandbox) -> dict[int, dict[str, Any]]:
    """Per task: its ids, and per ancestor pid what the spy could read."""
    tasks: dict[int, dict[str, Any]] = {}
    for spy in sorted(sandbox.markers.glob("spy-*")):
        ancestors = {}
        for d in spy.iterdir():
            if d.is_dir():
                ancestors[int(d.name)] = {
                    "cmdline": (d / "cmdline").read_bytes().split(b"\0"),
                    "environ": (d / "environ.access").read_text().strip(),
                    "mem": (d / "mem.access").read_text().strip(),
                }
        tasks[int(spy.name.split("-")[1])] = {
            "uid": int((spy / "uid").read_text()),
            "gid": int((spy / "gid").read_text()),
            "groups": (spy / "groups").read_text().split(),
            "lock": (spy / "lock.access").is_file(),
            "ancestors": ancestors,
        }
    return tasks


def leaked(root: Path) -> list[str]:
    """Files under ``root`` holding a form of the token."""
    found = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            found += [
                f"{path.relative_to(root)}: {form.decode()[:8]}..."
                for form in FORMS
                if form in data
            ]
    return found


def the_action(tasks: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """What the spy found of the ``batchaction action`` process above it."""
    for task in tasks.values():
        for found in task["ancestors"].values():
            args = found["cmdline"]
            if b"batchaction" in args and b"action" in args and b"-c" not in args:
                return dict(found)
    raise AssertionError(f"the action is not among the executor's ancestors: {tasks}")


def assert_ran_and_used_the_token(sandbox: Sandbox, api: ApiStub, run: ActionRun) -> None:
    assert run.code == 0, run.err + run.out
    todo = sandbox.show(sandbox.tip("feature"), "TODO.md")
    assert [status_of(todo, n) for n in (1, 4)] == ["[COMPLETED]"] * 2
    subjects = sandbox.subjects(f"{sandbox.feature_sha}..feature")
    assert {"task 1: agent work", "task 4: agent work"} <= set(subjects), subjects
    assert api.comments(), "no reply"
    bearer = [h.get("Authorization") for h in api.headers()]
    assert f"Bearer {TOKEN}" in bearer, bearer


def run_spies(
    sandbox: Sandbox, api: ApiStub, isolation: str, inputs: dict[str, str] | None = None
) -> ActionRun:
    api.serve(role="write", pull=pull_answer("feature", sandbox.feature_sha))
    return run_action(
        sandbox,
        "issue_comment",
        comment_event("/task 1, 4"),
        api_url=api.url,
        inputs={
            "executor": spy_executor(sandbox),
            "isolation": isolation,
            # Agents that commit in one shared work tree take turns (git's index.lock).
            "max-parallel": "2" if isolation == "worktree" else "1",
            **(inputs or {}),
        },
        extra_env={"SPY_OUT": str(sandbox.markers), "AGENT_SLEEP": "0.05"},
    )


# --- the set-ups -------------------------------------------------------------------------------


@pytest.fixture
def open_sandbox(template: Path) -> Iterator[Sandbox]:
    """A sandbox in a directory every user can reach (pytest's own are root's alone)."""
    top = Path(tempfile.mkdtemp(prefix="batchaction-users-"))
    top.chmod(0o755)
    (top / "s").mkdir()
    try:
        yield make_sandbox(top / "s", template)
    finally:
        shutil.rmtree(top, ignore_errors=True)


def chown_tree(path: Path, uid: int, gid: int) -> None:
    os.lchown(path, uid, gid)
    for dirpath, dirnames, filenames in os.walk(path):
        for name in (*dirnames, *filenames):
            os.lchown(os.path.join(dirpath, name), uid, gid)


def with_system_python(
    monkeypatch: pytest.MonkeyPatch, user: tuple[int, int] | None = None
) -> None:
    """Make ``actionhelpers.run_action`` start the action with the system's interpreter (as
    ``user`` when given), with this checkout and this environment's packages on its path."""
    if not SYSTEM_PYTHON.exists():
        pytest.fail(f"{SYSTEM_PYTHON} is needed to run the action as another user")
    code_root = str(Path(batchaction.__file__).resolve().parent.parent)
    path = os.pathsep.join([code_root, sysconfig.get_paths()["purelib"]])
    real_run: Callable[..., Any] = subprocess.run

    def run(args: Any, **kwargs: Any) -> Any:
        if list(args)[:1] == [sys.executable] and list(args)[1:] == ["-m", "batchaction", "action"]:
            args = [str(SYSTEM_PYTHON), *list(args)[1:]]
            kwargs["env"] = {**kwargs["env"], "PYTHONPATH": path}
            if user is not None:
                kwargs.update(user=user[0], group=user[1], extra_groups=[])
                for name in ("GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY"):  # made by run_action
                    os.chown(kwargs["env"][name], *user)
        return real_run(args, **kwargs)

    monkeypatch.setattr(actionhelpers.subprocess, "run", run)


# --- the tests ---------------------------------------------------------------------------------


@pytest.mark.parametrize("isolation", ["worktree", "none"])
def test_no_ancestor_of_an_executor_holds_the_token_in_its_environment_or_command_line(
    sandbox: Sandbox, api: ApiStub, isolation: str
) -> None:
    """Root action, root executors: every ancestor's environment is readable (root reads
    anything), and none holds a form of the token; the run still pushes and replies with it."""
    run = run_spies(sandbox, api, isolation)
    assert_ran_and_used_the_token(sandbox, api, run)
    tasks = findings(sandbox)
    assert sorted(tasks) == [1, 4]
    action = the_action(tasks)
    assert action["environ"] == "ok"  # read, and searched below
    assert leaked(sandbox.markers) == []
    printed = [line for line in (run.out + run.err).splitlines() if "::add-mask::" not in line]
    assert not [line for line in printed if any(form.decode() in line for form in FORMS)]


def test_an_executor_of_the_actions_own_user_cannot_open_its_memory_or_environment(
    open_sandbox: Sandbox, api: ApiStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The action and its executors as one user (uid 1001), as on a runner: the action is
    non-dumpable, so its ``/proc/<pid>/mem`` and ``environ`` do not open for them."""
    sandbox = open_sandbox
    (sandbox.home / ".gitconfig").write_text("[safe]\n\tdirectory = *\n", encoding="utf-8")
    chown_tree(sandbox.root, *USER)
    with_system_python(monkeypatch, USER)
    run = run_spies(sandbox, api, "worktree")
    assert_ran_and_used_the_token(sandbox, api, run)
    tasks = findings(sandbox)
    assert {t["uid"] for t in tasks.values()} == {USER[0]}
    action = the_action(tasks)
    assert action == {**action, "mem": "denied", "environ": "denied"}
    assert leaked(sandbox.markers) == []


@pytest.mark.parametrize("isolation", ["worktree", "none"])
def test_executors_run_as_the_workspace_owner_when_the_action_is_root(
    open_sandbox: Sandbox, api: ApiStub, monkeypatch: pytest.MonkeyPatch, isolation: str
) -> None:
    """The container's case: the action as root, the workspace owned by uid 1001. Executors
    run as 1001 (its group, no other), commit in their worktree or the workspace, write the
    TODO file's lock and their result file; the action's memory and environment are closed
    to them; the run completes, pushes and replies."""
    sandbox = open_sandbox
    for path in (sandbox.workspace, sandbox.home, sandbox.tmp, sandbox.markers):
        chown_tree(path, *USER)
    with_system_python(monkeypatch)
    run = run_spies(sandbox, api, isolation)
    assert_ran_and_used_the_token(sandbox, api, run)
    tasks = findings(sandbox)
    assert sorted(tasks) == [1, 4]
    for task in tasks.values():
        assert (task["uid"], task["gid"], task["groups"]) == (*USER, [str(USER[1])])
        assert task["lock"]
    action = the_action(tasks)
    assert (action["mem"], action["environ"]) == ("denied", "denied")
    assert leaked(sandbox.markers) == []
    summary = run.summary
    assert [t["outcome"] for t in summary["tasks"]] == ["completed", "completed"]


def test_executor_user_root_keeps_executors_root(
    open_sandbox: Sandbox, api: ApiStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``executor-user: root`` opts out: executors run as the action's user."""
    sandbox = open_sandbox
    for path in (sandbox.workspace, sandbox.home, sandbox.tmp, sandbox.markers):
        chown_tree(path, *USER)
    with_system_python(monkeypatch)
    run = run_spies(sandbox, api, "worktree", {"executor-user": "root"})
    assert run.code == 0, run.err
    assert {t["uid"] for t in findings(sandbox).values()} == {0}


def test_an_invalid_executor_user_is_refused(sandbox: Sandbox, api: ApiStub) -> None:
    run = run_spies(sandbox, api, "worktree", {"executor-user": "runner"})
    assert run.code == 2, run.err
    assert "invalid executor-user" in run.out, run.out
    assert "'runner'" in run.out, run.out
    assert sandbox.ran() == []


def test_the_hand_over_follows_no_symlink(
    open_sandbox: Sandbox, api: ApiStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A task (uid 1001) leaves symlinks to root's files and folders in the shared work tree;
    the hand-over before the next task changes their owner no more than it follows them."""
    sandbox = open_sandbox
    secret = sandbox.root / "secret"
    (secret / "inside").mkdir(parents=True)
    (secret / "inside" / "file").write_text("root's\n", encoding="utf-8")
    for path in (sandbox.workspace, sandbox.home, sandbox.tmp, sandbox.markers):
        chown_tree(path, *USER)
    with_system_python(monkeypatch)
    plant = (
        f"ln -s {shlex.quote(str(secret))} planted-dir && "
        f"ln -s {shlex.quote(str(secret / 'inside' / 'file'))} planted-file && "
        f"mkdir -p deep && ln -s {shlex.quote(str(secret))} deep/again"
    )
    record = f"id -u > {sandbox.markers}/uid-{{number}}"
    api.serve(role="write", pull=pull_answer("feature", sandbox.feature_sha))
    run = run_action(
        sandbox,
        "issue_comment",
        comment_event("/task 1, 4"),
        api_url=api.url,
        inputs={
            "executor": f"[ {{number}} = 4 ] || {{ {plant}; }}; {record}",
            "isolation": "none",
            "max-parallel": "1",
            "commit": "never",
        },
    )
    assert run.code == 0, run.err
    assert (sandbox.markers / "uid-4").read_text().strip() == str(USER[0])
    for path in (secret, secret / "inside", secret / "inside" / "file"):
        assert path.stat().st_uid == 0, path
