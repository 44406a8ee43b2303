"""The per-task supervisor: runs one executor, then stops every process it left behind.

batchaction starts one supervisor per executor (``executor.spawn``: ``python -I -S -c``, the
standard library only, nothing from the working directory on ``sys.path``), in a session of its
own. The supervisor, a single-threaded process, sets itself up after its ``exec`` (nothing runs
in a ``preexec_fn`` of the threaded batchaction):

1. it becomes a child subreaper (``prctl(PR_SET_CHILD_SUBREAPER)``, Linux 3.4): a descendant
   whose parent exits (a double fork, a daemon after ``setsid``) is re-parented to it, not to
   init, so it can still find it;
2. it asks for ``PARENT_DIED`` when its parent dies (``prctl(PR_SET_PDEATHSIG)``), then checks
   ``getppid()``: a parent that died before the ``prctl`` never sends it (prctl(2));
3. it forks ``/bin/sh -c COMMAND`` into a process group of its own, with the environment it was
   given, read back from ``/proc/self/environ`` (Python's start may coerce ``LC_CTYPE``);
4. it forwards SIGTERM, SIGINT and SIGHUP to that group, each followed by SIGCONT; the death of
   its parent counts as a SIGTERM; ``KILL_REQUEST`` (batchaction's SIGKILL, which the
   supervisor must survive to finish its work) kills the group and every other descendant. A
   forwarded signal starts the grace period: whatever is left when it is over gets SIGKILL;
5. once the executor has exited, every descendant still alive is a stray: it is recorded, sent
   SIGTERM and SIGCONT, and SIGKILL after ``min(grace, STRAY_GRACE)`` (never later than a
   grace period already running), until the supervisor has no child left. Descendants outside
   the executor's group that had to be killed while it still ran are strays too;
6. it exits as the executor did: the same exit code, or death by the same signal.

The report goes to the file descriptor batchaction passed (never to stdout, the task's log), one
JSON object a line: ``{"executor": PID}`` first, ``{"stray": {"pid": N, "command": "..."}}`` per
stray (at most ``MAX_STRAYS``), ``{"returncode": N}`` last (N < 0: killed by signal -N, as
``subprocess`` reports it). ``read_report`` reads it back.
"""

from __future__ import annotations

import os
import sys
import time

# Imports cost the start of every task: what Python loads anyway, os, and the C half of signal
# (the module ``signal`` builds enums: 11 ms, as much as the interpreter's own start).
TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal
    from typing import Any, NoReturn
else:
    import _signal as signal

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
KILL_REQUEST = signal.SIGUSR1
PARENT_DIED = signal.SIGUSR2
WATCHED = {signal.SIGCHLD, KILL_REQUEST, PARENT_DIED, *FORWARDED}
STRAY_GRACE = 2.0  # seconds a stray gets between SIGTERM and SIGKILL, at most
MAX_STRAYS = 100  # strays named in the report; more are killed all the same
MAX_COMMAND = 300  # characters of a stray's command line in the report
MAX_REPORT = 1 << 20  # bytes of report read back


class Report:
    """What a supervisor reported: the executor's pid (also its process group id), its exit
    (``returncode``, None when the supervisor did not get to the end) and the strays killed,
    ``{"pid": int, "command": str}`` each."""

    def __init__(self) -> None:
        self.executor: int | None = None
        self.returncode: int | None = None
        self.strays: list[dict[str, Any]] = []


def read_report(fd: int) -> Report:
    """The report written to ``fd`` (a file read from offset 0, at most MAX_REPORT bytes).
    Lines that are not the JSON shapes above are skipped; never raises for their content."""
    import json  # noqa: PLC0415 - see the module's imports

    report = Report()
    try:
        data = os.pread(fd, MAX_REPORT, 0)
    except OSError:
        return report
    for line in data.splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if not isinstance(item, dict):
            continue
        if isinstance(item.get("executor"), int):
            report.executor = item["executor"]
        if isinstance(item.get("returncode"), int):
            report.returncode = item["returncode"]
        stray = item.get("stray")
        if isinstance(stray, dict) and isinstance(stray.get("pid"), int):
            report.strays.append({"pid": stray["pid"], "command": str(stray.get("command", ""))})
    return report


def _prctl(option: int, value: int) -> None:
    import ctypes  # noqa: PLC0415

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, ctypes.c_ulong(value), ctypes.c_ulong(0), ctypes.c_ulong(0), 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"prctl({option}): {os.strerror(errno)}")


def _initial_environment() -> dict[bytes, bytes]:
    """The environment this process was started with, as the kernel holds it."""
    with open("/proc/self/environ", "rb") as handle:
        entries = handle.read().split(b"\0")
    pairs = (entry.partition(b"=") for entry in entries if b"=" in entry[1:])
    return {key: value for key, _, value in pairs}


def _exec_executor(command: str, env: dict[bytes, bytes]) -> NoReturn:
    """In the forked child: a process group of its own, default signal handling, then sh."""
    try:
        os.setpgid(0, 0)
        for signum in (signal.SIGPIPE, signal.SIGXFSZ):  # ignored by Python, kept by exec
            signal.signal(signum, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, ())
        os.execve("/bin/sh", ["/bin/sh", "-c", command], env)  # noqa: S606 - the task's shell
    except BaseException as exc:  # whatever it is, the forked copy must not go on
        os.write(2, f"batchaction: cannot start /bin/sh: {exc}\n".encode(errors="replace"))
    os._exit(127)


def descendants(root: int) -> list[int]:
    """Live (not zombie) descendants of ``root``, parents before children, from the parent
    pids in ``/proc/<pid>/stat`` (proc(5): the field after the state, which follows the
    command name in parentheses)."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as handle:
                data = handle.read()
            state, ppid = data[data.rindex(b")") + 2 :].split()[:2]
        except (OSError, ValueError):
            continue
        if state not in (b"Z", b"X"):
            children.setdefault(int(ppid), []).append(int(name))
    found: list[int] = []
    stack = [root]
    while stack:
        kids = children.get(stack.pop(), [])
        found += kids
        stack += kids
    return found


def command_line(pid: int) -> str:
    """``/proc/<pid>/cmdline`` as one line (``[comm]`` when empty), cut to MAX_COMMAND."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            raw = handle.read(MAX_COMMAND * 4)
        text = raw.rstrip(b"\0").replace(b"\0", b" ").decode("utf-8", "replace")
        if not text:
            with open(f"/proc/{pid}/comm", "rb") as handle:
                text = f"[{handle.read().decode('utf-8', 'replace').strip()}]"
    except OSError:
        text = "?"
    return "".join(ch if ch.isprintable() else " " for ch in text)[:MAX_COMMAND]


def _signal(pid: int, signum: int, group: bool = False) -> None:
    try:
        (os.killpg if group else os.kill)(pid, signum)
    except (ProcessLookupError, PermissionError):  # gone, or no longer ours
        return


def _group_of(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


class Supervision:
    """The state of one supervised executor; ``run`` returns its exit as ``returncode``."""

    def __init__(self, child: int, grace: float, report: int) -> None:
        self.child = child
        self.grace = grace
        self.report = report
        self.kill_at: float | None = None  # when what is left gets SIGKILL
        self.strays: dict[int, str] = {}  # pid: command line

    def _stray(self, pid: int) -> bool:
        """Note ``pid`` as a stray, or read its command line again (one seen between its fork
        and its exec still shows its parent's); True the first time."""
        first = pid not in self.strays
        if first and len(self.strays) >= MAX_STRAYS:
            self.strays[pid] = ""  # killed all the same, not named
        elif first or self.strays[pid]:
            command = command_line(pid)
            if first or command != "?":
                self.strays[pid] = command
        return first

    def write_strays(self) -> None:
        """One report line per stray (the first MAX_STRAYS)."""
        import json  # noqa: PLC0415

        for pid, command in list(self.strays.items())[:MAX_STRAYS]:
            line = {"stray": {"pid": pid, "command": command}}
            os.write(self.report, json.dumps(line).encode() + b"\n")

    def _deadline(self, seconds: float) -> None:
        due = time.monotonic() + seconds
        self.kill_at = due if self.kill_at is None else min(self.kill_at, due)

    def _reap(self) -> tuple[int | None, bool]:
        """Reap every child that exited: (the executor's returncode if it was one of them,
        whether any child is left)."""
        code = None
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return code, False
            if pid == 0:
                return code, True
            if pid == self.child:
                code = os.waitstatus_to_exitcode(status)

    def run(self) -> int:
        returncode: int | None = None
        pause = 0.005
        while True:
            code, children = self._reap()
            returncode = code if code is not None else returncode
            if returncode is not None and not children:
                return returncode
            timeout: float | None = None
            if returncode is not None:  # everything left is a stray
                self._deadline(min(self.grace, STRAY_GRACE))
                hard = self.kill_at is not None and time.monotonic() >= self.kill_at
                for pid in descendants(os.getpid()):
                    if self._stray(pid):
                        _signal(pid, signal.SIGTERM)
                        _signal(pid, signal.SIGCONT)
                    if hard:
                        _signal(pid, signal.SIGKILL)
                # Not every stray is a child (no SIGCHLD): look again soon, then less often.
                left = (self.kill_at or 0.0) - time.monotonic()
                timeout, pause = (pause if hard else min(pause, left)), min(pause * 2, 0.1)
            elif self.kill_at is not None:
                timeout = self.kill_at - time.monotonic()
                if timeout <= 0:
                    _signal(self.child, signal.SIGKILL, group=True)
                    for pid in descendants(os.getpid()):
                        if _group_of(pid) != self.child:
                            self._stray(pid)
                        _signal(pid, signal.SIGKILL)
                    timeout = 0.1
            info: signal.struct_siginfo | None
            if timeout is None:
                info = signal.sigwaitinfo(WATCHED)
            else:
                info = signal.sigtimedwait(WATCHED, max(timeout, 0.0))
            if info is None or info.si_signo == signal.SIGCHLD:
                continue
            if info.si_signo == KILL_REQUEST:
                self._deadline(0.0)
                continue
            forwarded = signal.SIGTERM if info.si_signo == PARENT_DIED else info.si_signo
            if returncode is None:
                _signal(self.child, forwarded, group=True)
                _signal(self.child, signal.SIGCONT, group=True)
            self._deadline(self.grace)


def _exit_as(returncode: int) -> NoReturn:
    """Exit with ``returncode``, or (negative) die by that signal, core dump or not."""
    if returncode >= 0:
        os._exit(returncode)
    import resource  # noqa: PLC0415

    signum = -returncode
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if signum not in (signal.SIGKILL, signal.SIGSTOP):
        signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signum})
    os.kill(os.getpid(), signum)
    os._exit(128 + signum)  # a signal whose default is not to end the process


def main(argv: list[str]) -> NoReturn:
    """``PARENT_PID GRACE_SECONDS REPORT_FD COMMAND``: supervise ``/bin/sh -c COMMAND``."""
    try:
        parent, grace, report, command = int(argv[0]), float(argv[1]), int(argv[2]), argv[3]
        os.set_inheritable(report, False)
        # Blocked before the prctl: a PARENT_DIED sent from now on waits for sigtimedwait.
        signal.pthread_sigmask(signal.SIG_BLOCK, WATCHED)
        _prctl(PR_SET_CHILD_SUBREAPER, 1)
        _prctl(PR_SET_PDEATHSIG, PARENT_DIED)
        if os.getppid() != parent:  # it died before the prctl: nobody waits for this task
            os._exit(128 + signal.SIGTERM)
        env = _initial_environment()
    except (OSError, ValueError, IndexError) as exc:
        _fail(f"the task supervisor cannot start: {exc}")
    try:
        child = os.fork()
    except OSError as exc:
        _fail(f"cannot start /bin/sh: {exc}")
    if child == 0:
        _exec_executor(command, env)
    try:  # noqa: SIM105 - contextlib would cost every task's start
        os.setpgid(child, child)  # as the child does: the group exists before either goes on
    except OSError:  # the child did it first, or has exec'd
        pass
    try:
        os.write(report, f'{{"executor": {child}}}\n'.encode())
        supervision = Supervision(child, grace, report)
        returncode = supervision.run()
        if supervision.strays:
            supervision.write_strays()
        os.write(report, f'{{"returncode": {returncode}}}\n'.encode())
    except Exception as exc:  # a resource limit, say: nothing of the task may outlive this
        _signal(child, signal.SIGKILL, group=True)
        for pid in descendants(os.getpid()):
            _signal(pid, signal.SIGKILL)
        _fail(f"the task supervisor failed: {exc!r}")
    _exit_as(returncode)


def _fail(message: str) -> NoReturn:
    """A line in the task's log, and exit 127 (as a shell that cannot run a command)."""
    os.write(2, f"batchaction: {message}\n".encode(errors="replace"))
    os._exit(127)


if __name__ == "__main__":
    main(sys.argv[1:])
