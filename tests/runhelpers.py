"""Helpers for the tests that run ``batchaction run`` as a real process on generated TODO files."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batchaction.todo import parse_todo

HIDDEN_PREFIXES = ("INPUT_",)
HIDDEN_NAMES = ("GITHUB_TOKEN", "GH_TOKEN")
LIFECYCLE = ("Started", "Completed", "Failed", "Failure Reason", "Blocked", "Blocking Reason")

# An executor that records when it runs and does what the environment tells it:
# "start N T" / "end N T" lines (T = seconds since the epoch) appended to $PROBE_LOG under flock,
# a pause of $PROBE_SLEEP_N (or $PROBE_SLEEP) seconds, exit code $PROBE_EXIT_N (or 0), and an
# optional result document $PROBE_RESULT_N written to $BATCH_RESULT_FILE.
PROBE_SH = r"""#!/bin/sh
n="$BATCH_TASK_NUMBER"
case "$n" in *[!0-9]*|'') echo "bad task number" >&2; exit 99 ;; esac
eval "pause=\${PROBE_SLEEP_$n:-\${PROBE_SLEEP:-0}}"
eval "code=\${PROBE_EXIT_$n:-0}"
eval "result=\${PROBE_RESULT_$n:-}"
stamp() {
  { flock 9; printf '%s %s %s\n' "$1" "$n" "$(date +%s.%N)" >&9; } 9>>"$PROBE_LOG"
}
stamp start
echo "task $n running"
sleep "$pause"
if [ -n "$result" ]; then printf '%s' "$result" > "$BATCH_RESULT_FILE"; fi
echo "task $n exits with $code"
stamp end
exit "$code"
"""


@dataclass(frozen=True)
class Spec:
    """One task of a generated TODO.md."""

    number: int
    deps: str = "None"
    status: str = "[NOT STARTED]"
    title: str | None = None
    extra: tuple[str, ...] = ()  # more field lines (without bullet), after Dependencies
    body: str = ""


def todo_text(
    specs: Sequence[Spec],
    *,
    list_items: bool = True,
    eol: str = "\n",
    notes: str = "Free text that is not a task.",
) -> str:
    """A TODO.md holding ``specs``, ending with a ``## Notes`` section that holds no task."""
    bullet = "- " if list_items else ""
    out = ["# TODO", "", "## Tasks", ""]
    for spec in specs:
        out.append(f"### {spec.number}. {spec.title or f'Task number {spec.number}'}")
        out.append(f"{bullet}**Effort**: 1 hour")
        out.append(f"{bullet}**Status**: {spec.status}")
        out.append(f"{bullet}**Dependencies**: {spec.deps}")
        out.extend(f"{bullet}{line}" for line in spec.extra)
        out.append("")
        if spec.body:
            out.extend([spec.body, ""])
    out += ["## Notes", "", notes]
    return eol.join(out) + eol


def read_exact(path: Path) -> str:
    """A file's text with its line endings untouched."""
    with path.open(encoding="utf-8", newline="") as handle:
        return handle.read()


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The test's environment without action inputs and tokens, plus ``extra``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(HIDDEN_PREFIXES) and key not in HIDDEN_NAMES
    }
    env.update(extra or {})
    return env


@dataclass
class Workspace:
    """A repository directory with a TODO.md, the probe executor and paths for run outputs."""

    root: Path  # tmp_path
    repo: Path
    todo: Path
    probe: Path
    probe_log: Path
    summary_json: Path
    summary_md: Path
    log_dir: Path
    env: dict[str, str] = field(default_factory=dict)

    def write(self, specs: Sequence[Spec], **options: Any) -> str:
        text = todo_text(specs, **options)
        self.todo.write_bytes(text.encode("utf-8"))
        return text

    def probe_command(self) -> str:
        return shlex.quote(str(self.probe))

    def args(self, selection: str, *extra: str, executor: str | None = None) -> list[str]:
        return [
            sys.executable,
            "-m",
            "batchaction",
            "run",
            selection,
            "--executor",
            executor if executor is not None else self.probe_command(),
            "--summary-json",
            str(self.summary_json),
            "--summary-md",
            str(self.summary_md),
            "--log-dir",
            str(self.log_dir),
            *extra,
        ]

    def full_env(self, env: Mapping[str, str] | None = None) -> dict[str, str]:
        return clean_env({"PROBE_LOG": str(self.probe_log), **self.env, **(env or {})})

    def run(
        self,
        selection: str,
        *extra: str,
        executor: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 120,
        cwd: Path | None = None,
        preexec_fn: Callable[[], None] | None = None,
    ) -> RunOutcome:
        """Run ``batchaction run SELECTION`` to the end and collect what it left behind."""
        self.summary_json.unlink(missing_ok=True)
        proc = subprocess.run(
            self.args(selection, *extra, executor=executor),
            cwd=cwd or self.repo,
            env=self.full_env(env),
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=timeout,
            check=False,
            preexec_fn=preexec_fn,
        )
        return self.outcome(proc.returncode, proc.stdout, proc.stderr)

    def start(
        self,
        selection: str,
        *extra: str,
        executor: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.Popen[str]:
        """Start ``batchaction run`` in the background (output to files in the workspace)."""
        self.summary_json.unlink(missing_ok=True)
        out = (self.root / "run.out").open("w", encoding="utf-8")
        err = (self.root / "run.err").open("w", encoding="utf-8")
        try:
            return subprocess.Popen(
                self.args(selection, *extra, executor=executor),
                cwd=self.repo,
                env=self.full_env(env),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                text=True,
            )
        finally:
            out.close()
            err.close()

    def finish(self, proc: subprocess.Popen[str], timeout: float = 60) -> RunOutcome:
        code = proc.wait(timeout=timeout)
        return self.outcome(
            code,
            (self.root / "run.out").read_text(encoding="utf-8", errors="replace"),
            (self.root / "run.err").read_text(encoding="utf-8", errors="replace"),
        )

    def outcome(self, code: int, out: str, err: str) -> RunOutcome:
        summary = None
        if self.summary_json.exists():
            summary = json.loads(self.summary_json.read_text(encoding="utf-8"))
        return RunOutcome(code, out, err, summary, read_exact(self.todo))

    def timeline(self) -> Timeline:
        return Timeline.read(self.probe_log)


@dataclass
class RunOutcome:
    code: int
    out: str
    err: str
    summary: dict[str, Any] | None
    todo: str

    @property
    def tasks(self) -> dict[int, dict[str, Any]]:
        assert self.summary is not None, f"no summary JSON; stderr:\n{self.err}"
        return {task["number"]: task for task in self.summary["tasks"]}

    def outcomes(self) -> dict[int, str]:
        return {number: task["outcome"] for number, task in self.tasks.items()}

    def fields(self, number: int) -> dict[str, str]:
        return task_fields(self.todo, number)


def make_workspace(root: Path, *, git: bool = False) -> Workspace:
    """A fresh workspace under ``root`` (normally ``tmp_path``)."""
    repo = root / "repo"
    repo.mkdir()
    if git:
        init_repo(repo)
    probe = root / "probe.sh"
    probe.write_text(PROBE_SH, encoding="utf-8")
    probe.chmod(0o755)
    return Workspace(
        root=root,
        repo=repo,
        todo=repo / "TODO.md",
        probe=probe,
        probe_log=root / "probe.log",
        summary_json=root / "out" / "summary.json",
        summary_md=root / "out" / "summary.md",
        log_dir=root / "logs",
    )


def init_repo(path: Path) -> None:
    """``git init`` with a local identity, quietly."""
    for args in (
        ["init", "--quiet", "--initial-branch=main"],
        ["config", "user.name", "Test Maintainer"],
        ["config", "user.email", "maintainer@example.invalid"],
    ):
        subprocess.run(["git", *args], cwd=path, check=True, capture_output=True)


def task_fields(text: str, number: int) -> dict[str, str]:
    """The fields of task ``number`` in a TODO text (name as written -> value)."""
    doc = parse_todo(text)
    matches = [task for task in doc.tasks if task.number == number]
    assert len(matches) == 1, f"task {number} appears {len(matches)} times"
    return {f.name: f.value for f in matches[0].fields}


def field_lines(text: str, number: int, name: str) -> list[str]:
    """Every line of task ``number``'s section that holds the field ``name``."""
    doc = parse_todo(text)
    (task,) = [task for task in doc.tasks if task.number == number]
    wanted = f"**{name}**:"
    return [
        line for line in doc.lines[task.heading_line : task.end_line] if wanted in line.lstrip()
    ]


def status_lines(text: str) -> dict[int, str]:
    """Each task's Status line, byte for byte (ending included)."""
    doc = parse_todo(text)
    result: dict[int, str] = {}
    for task in doc.tasks:
        status = task.field("status")
        assert status is not None
        result[task.number] = doc.lines[status.line]
    return result


@dataclass
class Timeline:
    """What the probe executor recorded: start and end times per task, in order."""

    events: list[tuple[str, int, float]]  # ("start" | "end", number, time) as written

    @classmethod
    def read(cls, path: Path) -> Timeline:
        events: list[tuple[str, int, float]] = []
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                kind, number, stamp = line.split()
                events.append((kind, int(number), float(stamp)))
        return cls(events)

    @property
    def starts(self) -> dict[int, float]:
        """The first start of each task."""
        result: dict[int, float] = {}
        for kind, number, stamp in self.events:
            if kind == "start":
                result.setdefault(number, stamp)
        return result

    @property
    def ends(self) -> dict[int, float]:
        """The last end of each task."""
        return {number: stamp for kind, number, stamp in self.events if kind == "end"}

    def started(self) -> list[int]:
        """Task numbers in the order they started (a retried task appears once per attempt)."""
        return [number for kind, number, _ in self.events if kind == "start"]

    def max_overlap(self) -> int:
        """The most tasks running at once, counted over the log's order of events."""
        running = peak = 0
        for kind, _, _ in self.events:
            running += 1 if kind == "start" else -1
            peak = max(peak, running)
        return peak

    def makespan(self) -> float:
        return max(self.ends.values()) - min(self.starts.values())


def wait_for(predicate: Callable[[], bool], timeout: float = 30, interval: float = 0.02) -> bool:
    """Poll until ``predicate()`` holds; False after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def process_state(pid: int) -> str | None:
    """The process's state letter from /proc (``Z`` for a zombie), None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    except (FileNotFoundError, ProcessLookupError):
        return None
    for line in text.splitlines():
        if line.startswith("State:"):
            return line.split()[1]
    return None


def process_gone(pid: int) -> bool:
    """True when ``pid`` no longer runs: no such process, or a zombie that is not our child."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    state = process_state(pid)
    if state is None:
        return True
    if state != "Z":
        return False
    try:
        parent = next(
            int(line.split()[1])
            for line in Path(f"/proc/{pid}/status").read_text(encoding="utf-8").splitlines()
            if line.startswith("PPid:")
        )
    except (FileNotFoundError, StopIteration):
        return True
    return parent != os.getpid()


def all_gone(pids: Iterable[int], timeout: float = 10) -> bool:
    """Wait until none of ``pids`` runs any more; False when one still runs after ``timeout``."""
    waiting = list(pids)
    return wait_for(lambda: all(process_gone(pid) for pid in waiting), timeout=timeout)


def read_pids(path: Path) -> list[int]:
    if not path.exists():
        return []
    return [int(word) for word in path.read_text(encoding="utf-8").split()]


def kill_quietly(pids: Iterable[int]) -> None:
    """Clean up after a failed test: SIGKILL whatever still runs."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def marked_processes(mark: str) -> list[int]:
    """Processes (other than this one) whose environment holds ``mark`` (``NAME=value``)."""
    needle = mark.encode() + b"\0"
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if needle in (entry / "environ").read_bytes():
                found.append(int(entry.name))
    return found
