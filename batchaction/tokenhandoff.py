"""Keep the GitHub token out of every environment an executor could read.

``/proc/<pid>/environ`` shows the environment a process was *started* with: deleting a
variable from ``os.environ`` changes nothing there, and an executor could read the action's
with ``tr '\\0' '\\n' < /proc/$PPID/environ``. So ``batchaction action`` begins (``isolate``)
by re-executing itself (``execve``: the same interpreter, arguments and pid) with an
environment that holds no token, and hands the token over through an inherited pipe: the
parent writes it and closes the write end, and passes the read end's number in
``BATCHACTION_TOKEN_FD``; the new image reads it once and closes it before it starts anything,
so no executor inherits it. The variables the action reads a token from
(``SECRET_VARIABLES``: the github-token's and the push-token's) are handed over; the other
tokens GitHub puts in a container action's environment (``ACTIONS_RUNTIME_TOKEN``,
``ACTIONS_ID_TOKEN_REQUEST_*``, ``GH_TOKEN``) are not used and are dropped.

Masking (``::add-mask::`` of every form, ``inert.secret_forms``) stays with the process that
uses the token, first thing once it has it (``action._run``), not with the parent before the
exec: the parent writes nothing that holds the token, and the new image cannot write it before
it has read the pipe, so masking earlier protects nothing; masking in one place covers every
way into the run alike (re-executed, exec failed, called with an environment) and masks each
form once.

The process then marks itself non-dumpable (``prctl(PR_SET_DUMPABLE, 0)``, Linux): processes
of the same uid that are not root can no longer open its ``/proc/<pid>/mem``, ``environ`` or
``fd`` or attach to it with ``ptrace``. It does not stop root (``CAP_SYS_PTRACE``): in the
container, executors run as another user for that (``executoruser``).
"""

from __future__ import annotations

import ctypes
import json
import os
import stat
import sys
from typing import TextIO

from batchaction.errors import BatchError
from batchaction.executor import TOKEN_VARIABLES
from batchaction.workflow import Workflow

TOKEN_FD_VARIABLE = "BATCHACTION_TOKEN_FD"  # noqa: S105 - a variable's name
# The variables the action reads a token from (action.read_inputs and _run), in that order:
# the github-token, then the push-token (pushes to the pull request's branch).
SECRET_VARIABLES = (
    "INPUT_GITHUB-TOKEN", "INPUT_GITHUB_TOKEN", "GITHUB_TOKEN",
    "INPUT_PUSH-TOKEN", "INPUT_PUSH_TOKEN",
)  # fmt: skip
# Taken out of the environment of the re-executed process: those, and every other token.
REMOVED = frozenset(name.upper() for name in (*SECRET_VARIABLES, *TOKEN_VARIABLES))
MAX_PAYLOAD = 60_000  # bytes; below a pipe's 64 KiB, so the write never waits for a reader
PR_GET_DUMPABLE = 3
PR_SET_DUMPABLE = 4

_received: dict[str, str] = {}


def isolate(out: TextIO | None = None) -> None:
    """Run first in ``batchaction action``: with a token in the environment, re-execute
    without it (does not return); in the re-executed process, take the token from the pipe;
    then make the process non-dumpable. Warnings and debug lines go to ``out`` (stdout).

    Raises BatchError (exit 2) when ``BATCHACTION_TOKEN_FD`` names no readable pipe or the
    token variables are larger than ``MAX_PAYLOAD`` bytes. When the exec itself fails, a
    warning says the token stays readable and the run goes on.
    """
    out = out or sys.stdout
    inherited = os.environ.pop(TOKEN_FD_VARIABLE, None)
    present = [name for name in os.environ if name.upper() in REMOVED]
    if present:
        _reexec(present, out)  # returns only when the exec failed
    elif inherited is not None:
        _received.update(_receive(inherited))
    make_undumpable(out)


def received() -> dict[str, str]:
    """The token variables handed over by ``isolate``, name -> value; empty when none was."""
    return dict(_received)


def _reexec(present: list[str], out: TextIO) -> None:
    secrets = {name: os.environ[name] for name in SECRET_VARIABLES if os.environ.get(name)}
    payload = json.dumps(secrets).encode("utf-8")
    if len(payload) > MAX_PAYLOAD:
        raise BatchError(f"the token variables hold more than {MAX_PAYLOAD} bytes")
    env = {k: v for k, v in os.environ.items() if k not in present and k != TOKEN_FD_VARIABLE}
    read_end = None
    if secrets:
        read_end, write_end = os.pipe()
        try:
            view = memoryview(payload)
            while view:
                view = view[os.write(write_end, view) :]
        finally:
            os.close(write_end)
        os.set_inheritable(read_end, True)
        env[TOKEN_FD_VARIABLE] = str(read_end)
    argv = [sys.executable, *sys.orig_argv[1:]]
    out.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        if not sys.executable:
            raise OSError("the Python interpreter's path is unknown")
        os.execve(sys.executable, argv, env)  # noqa: S606 - this program, again
    except OSError as exc:
        if read_end is not None:
            os.close(read_end)
        Workflow({}, out).command(
            "warning",
            f"batchaction could not re-execute itself without the token ({exc}): executors "
            "may read it from this process's environment",
        )


def _receive(inherited: str) -> dict[str, str]:
    """The token variables from the pipe named by ``inherited`` (a descriptor number)."""
    problem = f"{TOKEN_FD_VARIABLE}={inherited!r} does not name the pipe batchaction hands "
    try:
        fd = int(inherited)
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            raise BatchError(problem + "its token over (it is not a pipe)")
    except (ValueError, OSError):
        raise BatchError(problem + "its token over") from None
    data = b""
    try:
        # The writer closed its end before the exec: everything is in the pipe, then EOF.
        os.set_blocking(fd, False)
        while len(data) <= MAX_PAYLOAD and (chunk := os.read(fd, 65536)):
            data += chunk
    except OSError:
        raise BatchError(problem + "its token over (nothing to read)") from None
    finally:
        os.close(fd)
    try:
        value = json.loads(data)
    except ValueError:
        value = None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and k in SECRET_VARIABLES and isinstance(v, str)
        for k, v in value.items()
    ):
        raise BatchError(problem + "its token over (unexpected content)")
    return value


def make_undumpable(out: TextIO | None = None) -> bool:
    """``prctl(PR_SET_DUMPABLE, 0)``: True when the process is now non-dumpable. Elsewhere
    than on Linux (or when it fails) a no-op, with a ``::debug::`` line on ``out``."""
    why = "not Linux"
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0:
                return bool(libc.prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0)
            why = os.strerror(ctypes.get_errno())
        except (OSError, AttributeError) as exc:
            why = str(exc)
    Workflow({}, out or sys.stdout).command("debug", f"the process stays dumpable: {why}")
    return False
