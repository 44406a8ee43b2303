"""``batchaction run`` killed with SIGKILL at random moments: TODO.md is always whole, and the
next run picks up where the killed one stopped (SPEC 6: temp file, fsync, rename; flock lock).

Each trial copies a TODO file (two real-world fixtures and a generated CRLF file take turns),
starts a run of about 30 quick tasks, five at a time, kills it with SIGKILL after a random
delay, checks the file, then runs again the tasks the killed run left ``[IN PROGRESS]``.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from runhelpers import Spec, Workspace, make_workspace, marked_processes, todo_text, wait_for

from batchaction.todo import TodoDocument, parse_todo

pytestmark = pytest.mark.slow

TRIALS = 42
SEED = 20_260_110
MAX_KILL_DELAY = 1.5
WIDTH = 5
# Each executor records its shell's pid (= its process group) and sleeps 0-50 ms.
EXECUTOR = 'echo $$ >> "$CRASH_PIDS"; sleep "${S_{number}:-0}"'
# The lines a status write may change or add; every other line must survive byte for byte.
LIFECYCLE_LINE = re.compile(
    r"[ \t]*(?:[-*+][ \t]+)?\*\*(?:Status|Started|Completed|Failed|Failure Reason|Blocked"
    r"|Blocking Reason)(?:\*\*:|:\*\*)",
    re.IGNORECASE,
)
STATUS_LINE = re.compile(r"[ \t]*(?:[-*+][ \t]+)?\*\*Status(?:\*\*:|:\*\*)", re.IGNORECASE)


@dataclass(frozen=True)
class Source:
    """A TODO text, the tasks the killed run is given and one open task it is not given."""

    name: str
    text: str
    selection: tuple[int, ...]
    sentinel: int


def generated_text() -> str:
    """60 tasks in CRLF, fields without bullets, a few dependencies and some unicode."""
    specs = []
    for number in range(1, 61):
        deps = f"Task {number - 7}" if number > 7 and number % 3 == 0 else "None"
        title = f"Tâche {number} — vérifier ✓" if number % 4 == 0 else None
        specs.append(Spec(number, deps=deps, title=title, body=f"Body of {number}.  "))
    return todo_text(specs, list_items=False, eol="\r\n")


def load_sources(fixtures: Path) -> list[Source]:
    sources = []
    for name, count in (("proofchecker-43ce1ce.md", 24), ("modelchecker-9402af1.md", 30)):
        path = fixtures / "todo" / name
        if not path.is_file():
            pytest.fail(f"missing fixture {path}: the shared fixtures must be present")
        text = path.read_bytes().decode("utf-8")
        open_tasks = sorted(t.number for t in parse_todo(text).tasks if t.state == "open")
        assert len(open_tasks) > count, (name, open_tasks)
        sources.append(Source(name, text, tuple(open_tasks[:count]), open_tasks[-1]))
    sources.append(Source("generated-60", generated_text(), tuple(range(1, 31)), 60))
    return sources


def kept_lines(text: str) -> list[str]:
    """Every line that no status write may touch, in order, endings included."""
    return [line for line in text.splitlines(keepends=True) if not LIFECYCLE_LINE.match(line)]


def status_rows(doc: TodoDocument) -> dict[int, int]:
    """How many lines of each task's section look like a Status field."""
    return {
        task.number: sum(
            1 for line in doc.lines[task.heading_line : task.end_line] if STATUS_LINE.match(line)
        )
        for task in doc.tasks
    }


def assert_whole(text: str, original: str) -> TodoDocument:
    """TODO.md is a complete file: same tasks once each, one Status each, other lines intact."""
    doc = parse_todo(text)
    before = Counter(task.number for task in parse_todo(original).tasks)
    after = Counter(task.number for task in doc.tasks)
    assert after == before
    assert set(after.values()) == {1}
    rows_before = status_rows(parse_todo(original))
    for task in doc.tasks:
        statuses = [f for f in (*task.fields, *task.repeated) if f.key == "status"]
        assert len(statuses) == 1, task.number
    assert status_rows(doc) == rows_before
    assert kept_lines(text) == kept_lines(original)
    return doc


def temp_files(ws: Workspace) -> list[str]:
    return sorted(p.name for p in ws.repo.glob(".TODO.md.*.tmp"))


def kill_marked(mark: str) -> None:
    """SIGKILL the process groups of every process carrying ``mark``, then wait for them."""
    own = os.getpgrp()
    for pid in marked_processes(mark):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            group = os.getpgid(pid)
            if group != own:
                os.killpg(group, signal.SIGKILL)
            os.kill(pid, signal.SIGKILL)
    assert wait_for(lambda: not marked_processes(mark), timeout=10), marked_processes(mark)


@contextlib.contextmanager
def orphans_killed(mark: str) -> Iterator[None]:
    try:
        yield
    finally:
        kill_marked(mark)


@dataclass
class TrialReport:
    alive_at_kill: bool
    unchanged: bool
    left_in_progress: int
    left_temp: bool


def run_trial(root: Path, source: Source, rng: random.Random, duration: float) -> TrialReport:
    ws = make_workspace(root)
    ws.todo.write_bytes(source.text.encode("utf-8"))
    trial_id = f"{root.name}-{rng.getrandbits(48):x}"
    mark = f"CRASH_TRIAL={trial_id}"
    env = {
        "CRASH_PIDS": str(root / "pids"),
        "CRASH_TRIAL": trial_id,
        **{f"S_{n}": f"{rng.uniform(0, 0.05):.3f}" for n in (*source.selection, source.sentinel)},
    }
    selection = ",".join(map(str, source.selection))
    delay = rng.uniform(0, min(MAX_KILL_DELAY, duration))
    with orphans_killed(mark):
        proc = ws.start(selection, "--max-parallel", str(WIDTH), executor=EXECUTOR, env=env)
        try:
            time.sleep(delay)
            alive = proc.poll() is None
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.wait(timeout=30)
        killed_text = ws.todo.read_bytes().decode("utf-8")
        doc = assert_whole(killed_text, source.text)
        original = {t.number: t.status for t in parse_todo(source.text).tasks}
        for task in doc.tasks:
            if task.number in source.selection:
                assert task.status in (original[task.number], "[IN PROGRESS]", "[COMPLETED]")
            else:
                assert task.status == original[task.number], task.number
        left_temp = bool(temp_files(ws))
        if not left_temp:
            # What a writer killed between its temp file and the rename leaves behind.
            (ws.repo / ".TODO.md.k1ll3d.tmp").write_bytes(killed_text.encode()[:100])
        in_progress = [
            t.number
            for t in doc.tasks
            if t.status == "[IN PROGRESS]" and original[t.number] != "[IN PROGRESS]"
        ]
        again = sorted({*in_progress, source.sentinel})
        started = time.monotonic()
        result = ws.run(
            ",".join(map(str, again)), "--max-parallel", str(WIDTH), executor=EXECUTOR, env=env
        )
        took = time.monotonic() - started
        assert result.code == 0, (source.name, result.err)
        # The lock file the killed run left is free: nothing waited on it (a held lock would
        # stall every write for a minute, then fail it).
        assert took < 30, took
        assert result.summary is not None
        assert result.summary["status_updates_failed"] == []
        assert result.outcomes() == dict.fromkeys(again, "completed")
        final = assert_whole(result.todo, source.text)
        done = {t.number for t in final.tasks if t.state == "done"}
        assert set(again) <= done
        assert temp_files(ws) == []
        assert (ws.repo / "TODO.md.lock").exists()
    return TrialReport(
        alive_at_kill=alive,
        unchanged=killed_text == source.text,
        left_in_progress=len(in_progress),
        left_temp=left_temp,
    )


def calibrate(root: Path, source: Source) -> float:
    """Wall time of one run of ``source`` to the end, so that kills land while it runs."""
    root.mkdir()
    ws = make_workspace(root)
    ws.todo.write_bytes(source.text.encode("utf-8"))
    mark = f"CRASH_TRIAL={root.name}"
    env = {"CRASH_PIDS": str(root / "pids"), "CRASH_TRIAL": root.name}
    env |= {f"S_{n}": "0.025" for n in source.selection}
    with orphans_killed(mark):
        started = time.monotonic()
        result = ws.run(
            ",".join(map(str, source.selection)),
            "--max-parallel",
            str(WIDTH),
            executor=EXECUTOR,
            env=env,
        )
        took = time.monotonic() - started
    assert result.code == 0, result.err
    assert set(result.outcomes().values()) == {"completed"}
    assert_whole(result.todo, source.text)
    return took


def test_sigkill_at_random_moments_leaves_a_whole_file(tmp_path: Path, fixtures_dir: Path) -> None:
    """Forty-odd SIGKILLs at random moments: the file is always whole and the next run recovers."""
    rng = random.Random(SEED)
    sources = load_sources(fixtures_dir)
    durations = {s.name: calibrate(tmp_path / f"calibrate-{i}", s) for i, s in enumerate(sources)}
    reports = []
    for trial in range(TRIALS):
        source = sources[trial % len(sources)]
        root = tmp_path / f"trial-{trial}"
        root.mkdir()
        try:
            reports.append(run_trial(root, source, rng, durations[source.name]))
        except AssertionError as exc:
            raise AssertionError(f"trial {trial} ({source.name}, seed {SEED}): {exc}") from exc
    # The kills spread over the run: before the first write, and while tasks were running.
    assert sum(r.alive_at_kill for r in reports) >= TRIALS // 2, reports
    assert any(r.unchanged for r in reports), reports
    assert sum(r.left_in_progress > 0 for r in reports) >= 5, reports
