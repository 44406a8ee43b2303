"""Executor processes: one ``/bin/sh -c`` per task, in its own process group under a supervisor
(``subreaper.py``), output to a file.

Nothing from TODO.md ever reaches the command line: the command is the user's string with
``{number}`` replaced by digits; everything else travels in the environment.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from batchaction import executoruser
from batchaction.inert import strip_ansi
from batchaction.subreaper import KILL_REQUEST
from batchaction.textlines import open_regular
from batchaction.todo import Task

TOKEN_VARIABLES = (
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "INPUT_GITHUB-TOKEN",
    "ACTIONS_RUNTIME_TOKEN",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
    "ACTIONS_ID_TOKEN_REQUEST_URL",
)
# The runner's file commands: an executor holding these could set the step's outputs, the
# environment or PATH of later steps, or write the job summary. The action removes them.
WORKFLOW_FILE_VARIABLES = (
    "GITHUB_OUTPUT",
    "GITHUB_ENV",
    "GITHUB_PATH",
    "GITHUB_STATE",
    "GITHUB_STEP_SUMMARY",
)
TAIL_LINES = 50
TAIL_BYTES = 64 * 1024
MAX_RESULT_BYTES = 1024 * 1024


def command_for(template: str, number: int) -> str:
    """The shell command for one task: only ``{number}`` is replaced, by digits."""
    return template.replace("{number}", str(int(number)))


def executor_env(
    base: Mapping[str, str],
    *,
    task: Task,
    wave: int,
    dependencies: Iterable[int],
    todo_path: Path,
    task_file: Path,
    result_file: Path,
    secrets: Iterable[str] = (),
    expose_token: bool = False,
) -> dict[str, str]:
    """The environment of one executor: the caller's, less action inputs and tokens."""
    hidden = {s for s in secrets if s}
    env = {
        key: value
        for key, value in base.items()
        if not key.upper().startswith("INPUT_")
        and key.upper() not in TOKEN_VARIABLES
        and value not in hidden
    }
    if expose_token:
        token = base.get("INPUT_GITHUB-TOKEN") or base.get("GITHUB_TOKEN")
        if token:
            env["GITHUB_TOKEN"] = token
    env.update(
        {
            "BATCH_TASK_NUMBER": str(task.number),
            "BATCH_TASK_TITLE": task.title,
            "BATCH_TASK_WAVE": str(wave),
            "BATCH_TASK_DEPENDENCIES": ",".join(map(str, dependencies)),
            "BATCH_TASK_FILE": str(task_file),
            "BATCH_TODO_PATH": str(todo_path),
            "BATCH_RESULT_FILE": str(result_file),
        }
    )
    return env


def task_document(task: Task, lines: Iterable[str], wave: int, todo_path: Path) -> dict[str, Any]:
    """The JSON put in BATCH_TASK_FILE: the whole task, body included."""
    body = "".join(lines)
    return {
        "number": task.number,
        "title": task.title,
        "status": task.status,
        "state": task.state,
        "wave": wave,
        "dependencies": list(task.dependencies),
        "effort_hours": task.effort_hours,
        "fields": {f.name: f.value for f in task.fields},
        "line": task.heading_line + 1,
        "body": body,
        "todo_path": str(todo_path),
    }


# The supervisor's start: only the standard library and the directory that holds this package
# on sys.path (-I: not the working directory, a task's; no PYTHON* variables; -S: no site).
SUPERVISOR_BOOT = (
    "import sys; sys.path.append(sys.argv[1]); "
    "from batchaction.subreaper import main; main(sys.argv[2:])"
)


def supervisor_argv(command: str, *, grace: float, report: int) -> list[str]:
    """The command line of the task supervisor (``subreaper.py``) that runs ``/bin/sh -c
    command``: ``grace`` in seconds, ``report`` the file descriptor it writes its report to."""
    package_parent = str(Path(__file__).resolve().parent.parent)
    return [
        sys.executable or "python3", "-I", "-S", "-c", SUPERVISOR_BOOT, package_parent,
        str(os.getpid()), repr(float(grace)), str(report), command,
    ]  # fmt: skip


def spawn(
    command: str,
    *,
    cwd: Path,
    env: Mapping[str, str],
    log: int,
    stream: bool,
    grace: float,
    report: int,
) -> subprocess.Popen[bytes]:
    """Start the task supervisor (``subreaper.py``) as the leader of a new session: it runs
    ``/bin/sh -c command`` in a process group of its own and exits as it did, once every
    process it left is gone. ``report`` (a file descriptor) receives the supervisor's report.
    Signals for the task go to the supervisor (``terminate_group``, ``request_kill``).
    Raises OSError when it cannot be started (a missing ``cwd``, say)."""
    return subprocess.Popen(
        supervisor_argv(command, grace=grace, report=report),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE if stream else log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        close_fds=True,
        pass_fds=(report,),
        **executoruser.popen_options(cwd, env),  # env, and the executor's user (container)
    )


def signal_group(pgid: int, signum: int) -> bool:
    """Send a signal to a process group; False when the group is gone."""
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_group(pgid: int) -> None:
    """Reap zombies of a group that were re-parented to us (as PID 1 in a container)."""
    with contextlib.suppress(ChildProcessError):
        while True:
            pid, _ = os.waitpid(-pgid, os.WNOHANG)
            if pid == 0:
                return


def group_alive(pgid: int) -> bool:
    reap_group(pgid)
    return signal_group(pgid, 0)


def terminate_group(pgid: int) -> None:
    signal_group(pgid, signal.SIGTERM)
    # A stopped process ignores TERM until it continues.
    signal_group(pgid, signal.SIGCONT)


def kill_group(pgid: int) -> None:
    signal_group(pgid, signal.SIGKILL)


def request_kill(pgid: int) -> None:
    """Ask the supervisor leading ``pgid`` to SIGKILL its task's processes, all of them (a
    SIGKILL would kill the supervisor and leave them)."""
    signal_group(pgid, KILL_REQUEST)
    signal_group(pgid, signal.SIGCONT)


def read_tail(path: Path, lines: int = TAIL_LINES) -> list[str]:
    """The last lines of a log, reading at most TAIL_BYTES from its end."""
    try:
        with open_regular(path, follow=False) as handle:  # the task may have replaced it
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - TAIL_BYTES))
            data = handle.read()
    except OSError:
        return []
    text = data.decode("utf-8", errors="replace")
    rows = text.splitlines()
    if size > TAIL_BYTES and rows:
        rows = rows[1:]  # the first row is probably cut
    return [row[:1000] for row in rows[-lines:]]


def read_result(path: Path) -> tuple[str | None, str | None, str | None]:
    """(status, summary, problem) from BATCH_RESULT_FILE; all None when absent."""
    try:
        with open_regular(path, follow=False) as handle:  # written by the task
            data = handle.read(MAX_RESULT_BYTES + 1)
    except FileNotFoundError:
        return None, None, None
    except OSError as exc:
        return None, None, f"cannot read result file: {exc.strerror or exc}"
    if len(data) > MAX_RESULT_BYTES:
        return None, None, "malformed result file: larger than 1 MiB"
    if not data.strip():
        return None, None, None
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        return None, None, f"malformed result file: not JSON ({exc})"
    if not isinstance(value, dict):
        return None, None, "malformed result file: expected a JSON object"
    status = value.get("status")
    summary = value.get("summary")
    if status not in ("completed", "in-progress", "failed"):
        return (
            None,
            None,
            (f"malformed result file: status {status!r} is not completed, in-progress or failed"),
        )
    if summary is not None and not isinstance(summary, str):
        return None, None, "malformed result file: summary must be text"
    return status, plain_text(summary) if summary is not None else None, None


def plain_text(text: str) -> str:
    """``text`` without ANSI escape sequences and other control characters (tabs and line
    breaks become spaces): an executor's words reach a terminal and TODO.md as words."""
    text = strip_ansi(text)
    return "".join(ch if ch.isprintable() else " " for ch in text).strip()
