"""Resource limits: huge lines, huge executor output, many tasks. Memory stays bounded, time
grows linearly, nothing crashes.

Peak RSS is measured in a wrapper child: it runs ``batchaction`` as its only child and reads
``getrusage(RUSAGE_CHILDREN).ru_maxrss`` once that child has been waited for. The numbers are
recorded as test properties (``--junitxml``) and printed (``-s``).
"""

from __future__ import annotations

import json
import os
import re
import signal
import statistics
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from runhelpers import Spec, clean_env, status_lines, todo_text

from batchaction.todo import parse_todo

pytestmark = pytest.mark.slow

MB = 1024 * 1024
BIG_LINE = 100 * MB
OUTPUT_BYTES = 200_000_000
PLAN_LINT_LIMIT_MB = 800
RUN_LIMIT_MB = 1600  # 16 times the size of the file: a copy per task or per write would pass it
OUTPUT_LIMIT_MB = 100  # half of what the executor prints
MANY_TASKS_LIMIT_MB = 800

MEASURE = r"""
import json, resource, subprocess, sys, time

spec = json.loads(sys.argv[1])
started = time.monotonic()
size = lines = 0
head = b""
with open(spec["stderr"], "wb") as err:
    proc = subprocess.Popen(
        spec["argv"], cwd=spec["cwd"], env=spec["env"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err,
    )
    while True:
        chunk = proc.stdout.read(1 << 16)
        if not chunk:
            break
        size += len(chunk)
        lines += chunk.count(b"\n")
        if len(head) < 1 << 16:
            head += chunk[: (1 << 16) - len(head)]
    code = proc.wait()
print(json.dumps({
    "code": code,
    "wall": time.monotonic() - started,
    "peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    "stdout_bytes": size,
    "stdout_lines": lines,
    "stdout_head": head.decode("utf-8", "replace"),
}))
"""


@dataclass(frozen=True)
class Measured:
    code: int
    wall: float
    peak_mb: float
    stdout_bytes: int
    stdout_lines: int
    stdout_head: str  # the first 64 KiB
    err: str


def measure(args: list[str], cwd: Path, timeout: float = 180) -> Measured:
    """Run ``python -m batchaction ARGS`` under the wrapper; stdout is counted, its start kept."""
    stderr = cwd / f"stderr-{args[0]}.txt"
    spec = {
        "argv": [sys.executable, "-m", "batchaction", *args],
        "cwd": str(cwd),
        "env": clean_env(),
        "stderr": str(stderr),
    }
    wrapper = subprocess.Popen(
        [sys.executable, "-c", MEASURE, json.dumps(spec)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = wrapper.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(wrapper.pid, signal.SIGKILL)
        wrapper.communicate()
        pytest.fail(f"batchaction {' '.join(args)[:80]} did not finish in {timeout}s")
    assert wrapper.returncode == 0, err
    data = json.loads(out)
    return Measured(err=stderr.read_text(encoding="utf-8", errors="replace"), **data)


@pytest.fixture
def report(record_property: Any) -> Callable[[str, float], None]:
    """Record a figure as a test property and print it."""

    def add(name: str, value: float) -> None:
        record_property(name, round(value, 3))
        print(f"{name} = {value:.3f}")

    return add


def write_with_big_line(path: Path, specs: list[Spec], placeholder: str, filler: bytes) -> None:
    """Write ``todo_text(specs)`` with ``placeholder`` replaced by 100 MB of ``filler``, in
    chunks (the test process never holds the whole line)."""
    head, tail = todo_text(specs).encode().split(placeholder.encode())
    repeat = BIG_LINE // len(filler)
    with path.open("wb") as handle:
        handle.write(head)
        block = filler * (MB // len(filler))
        written = 0
        while written + len(block) <= repeat * len(filler):
            handle.write(block)
            written += len(block)
        handle.write(filler * ((repeat * len(filler) - written) // len(filler)))
        handle.write(tail)


LIFECYCLE = re.compile(rb"[ \t]*(?:- )?\*\*(?:Status|Started|Completed)\*\*:")


def kept_lines(path: Path) -> Iterator[bytes]:
    """The lines no status write may touch, one at a time (a 100 MB line is one item)."""
    with path.open("rb") as handle:
        for line in handle:
            if not LIFECYCLE.match(line):
                yield line


def statuses(path: Path) -> dict[int, str]:
    text = path.read_bytes().decode("utf-8")
    return {t.number: t.status for t in parse_todo(text).tasks}


def plan_lint_run(tmp_path: Path, report: Any, label: str) -> None:
    """plan and lint bounded in memory; run completes and writes the statuses."""
    todo = tmp_path / "TODO.md"
    original = tmp_path / "TODO.orig"
    original.write_bytes(todo.read_bytes())
    plan = measure(["plan", "1-3", "--json"], tmp_path)
    report(f"{label}_plan_peak_mb", plan.peak_mb)
    report(f"{label}_plan_wall_s", plan.wall)
    assert plan.code == 0, plan.err
    assert plan.peak_mb < PLAN_LINT_LIMIT_MB, plan.peak_mb
    assert json.loads(plan.stdout_head)["waves"] == [[1, 2], [3]]
    lint = measure(["lint"], tmp_path)
    report(f"{label}_lint_peak_mb", lint.peak_mb)
    assert lint.code == 0, lint.err
    assert "Traceback" not in lint.err
    assert lint.peak_mb < PLAN_LINT_LIMIT_MB, lint.peak_mb
    run = measure(
        ["run", "1-3", "--executor", 'test -s "$BATCH_TASK_FILE"', "--no-stream"], tmp_path
    )
    report(f"{label}_run_peak_mb", run.peak_mb)
    report(f"{label}_run_wall_s", run.wall)
    assert run.code == 0, run.err
    assert run.peak_mb < RUN_LIMIT_MB, run.peak_mb
    assert statuses(todo) == dict.fromkeys((1, 2, 3), "[COMPLETED]")
    assert all(a == b for a, b in zip(kept_lines(todo), kept_lines(original), strict=True))
    assert sorted(p.name for p in tmp_path.glob(".TODO.md.*")) == []


def test_100mb_line_in_a_description(tmp_path: Path, report: Any) -> None:
    """A 100 MB line in task 2's description: plan/lint stay under 800 MB, run keeps the line."""
    specs = [Spec(1), Spec(2, body="@@BIG@@"), Spec(3, deps="Task 2")]
    write_with_big_line(tmp_path / "TODO.md", specs, "@@BIG@@", b"lorem ipsum dolor sit amet ")
    assert (tmp_path / "TODO.md").stat().st_size > BIG_LINE
    plan_lint_run(tmp_path, report, "description")
    assert (tmp_path / "TODO.md").stat().st_size > BIG_LINE


def test_100mb_status_value(tmp_path: Path, report: Any) -> None:
    """A Status value of 100 MB: parsed, planned as open, and replaced whole by the run."""
    specs = [Spec(1), Spec(2, status="[NOT STARTED] @@BIG@@"), Spec(3, deps="Task 2")]
    write_with_big_line(tmp_path / "TODO.md", specs, "@@BIG@@", b"x")
    plan_lint_run(tmp_path, report, "status")
    assert (tmp_path / "TODO.md").stat().st_size < MB


# Lines of 82 bytes, like a compiler's messages: about 2.4 million of them.
MESSAGE = "src/module.py:120: error: something went wrong in this part of the code "
LINES = "yes '" + MESSAGE + "compiling' | head -c {n}"


@pytest.mark.parametrize(
    ("mode", "command"),
    [
        ("--stream", LINES),
        ("--no-stream", LINES),
        ("--stream", "head -c {n} /dev/zero | tr '\\0' x"),
    ],
    ids=["stream_lines", "no_stream_lines", "stream_one_line"],
)
def test_200mb_of_executor_output(
    tmp_path: Path, report: Any, mode: str, command: str, request: pytest.FixtureRequest
) -> None:
    """An executor printing 200 MB: memory stays bounded, the log holds every byte, the summary
    holds a bounded tail."""
    (tmp_path / "TODO.md").write_text(todo_text([Spec(1)]), encoding="utf-8")
    logs = tmp_path / "logs"
    summary = tmp_path / "summary.json"
    run = measure(
        [
            "run",
            "1",
            "--executor",
            command.replace("{n}", str(OUTPUT_BYTES)),
            mode,
            "--log-dir",
            str(logs),
            "--summary-json",
            str(summary),
        ],
        tmp_path,
    )
    label = "output_" + request.node.callspec.id
    report(f"{label}_peak_mb", run.peak_mb)
    report(f"{label}_wall_s", run.wall)
    assert run.code == 0, run.err
    assert run.peak_mb < OUTPUT_LIMIT_MB, run.peak_mb
    log = logs / "task-1.log"
    try:
        assert log.stat().st_size == OUTPUT_BYTES
        if mode == "--stream":
            # Every byte is echoed, each line led by "[1] " (and a newline added to a piece
            # that had none); a line without end is echoed in pieces of bounded size
            # (64-128 KiB), not gathered whole.
            echoed = run.stdout_bytes - len("[1] ") * run.stdout_lines
            assert OUTPUT_BYTES <= echoed <= OUTPUT_BYTES + run.stdout_lines
            assert run.stdout_lines >= OUTPUT_BYTES // (256 * 1024)
        else:
            assert run.stdout_bytes == 0
        task = json.loads(summary.read_text(encoding="utf-8"))["tasks"][0]
        assert task["outcome"] == "completed"
        assert len(task["log_tail"]) <= 50
        assert all(len(line) <= 1000 for line in task["log_tail"])
        assert summary.stat().st_size < MB
    finally:
        log.unlink(missing_ok=True)


def test_stream_echoes_a_last_line_without_newline(tmp_path: Path) -> None:
    """--stream echoes the last piece of output even when it has no newline and the executor
    closes its output well before it exits."""
    (tmp_path / "TODO.md").write_text(todo_text([Spec(1)]), encoding="utf-8")
    executor = "printf 'first line\\nlast words'; exec >&- 2>&-; sleep 0.5"
    run = measure(["run", "1", "--executor", executor, "--stream"], tmp_path)
    assert run.code == 0, run.err
    assert run.stdout_head == "[1] first line\n[1] last words\n"


def many_tasks_text(count: int) -> str:
    """``count`` tasks, every fifth depending on the task three before it."""
    specs = [
        Spec(n, deps=f"Task {n - 3}" if n % 5 == 0 and n > 3 else "None", body=f"About {n}.")
        for n in range(1, count + 1)
    ]
    return todo_text(specs)


def test_10k_tasks_500_selected(tmp_path: Path, report: Any) -> None:
    """A 10,000-task file: plan of all of it, and a run of 500 of its tasks, in bounded memory."""
    todo = tmp_path / "TODO.md"
    original = many_tasks_text(10_000)
    todo.write_text(original, encoding="utf-8")
    plan = measure(["plan", "1-10000", "--max-tasks", "10000", "--json"], tmp_path)
    report("plan_10k_peak_mb", plan.peak_mb)
    report("plan_10k_wall_s", plan.wall)
    assert plan.code == 0, plan.err
    assert plan.peak_mb < MANY_TASKS_LIMIT_MB
    run = measure(["run", "2001-2500", "--executor", "true", "--no-stream"], tmp_path)
    report("run_500_of_10k_peak_mb", run.peak_mb)
    report("run_500_of_10k_wall_s", run.wall)
    assert run.code == 0, run.err
    assert run.peak_mb < MANY_TASKS_LIMIT_MB
    before = status_lines(original)
    after = status_lines(todo.read_text(encoding="utf-8"))
    assert sorted(after) == sorted(before)
    selected = range(2001, 2501)
    assert all("[COMPLETED]" in after[n] for n in selected)
    assert all(after[n] == before[n] for n in after if n not in selected)


def per_task_seconds(root: Path, count: int) -> float:
    """The run's own duration (interpreter start excluded) per task."""
    work = root / f"n{count}-{len(list(root.iterdir()))}"
    work.mkdir()
    (work / "TODO.md").write_text(many_tasks_text(count), encoding="utf-8")
    summary = work / "summary.json"
    run = measure(
        ["run", f"1-{count}", "--executor", "true", "--no-stream", "--summary-json", str(summary)],
        work,
    )
    assert run.code == 0, run.err
    data = json.loads(summary.read_text(encoding="utf-8"))
    assert data["counts"]["completed"] == count
    return float(data["duration_s"]) / count


def test_run_time_per_task_does_not_grow(tmp_path: Path, report: Any) -> None:
    """500 no-op tasks cost per task less than three times what 50 do (no quadratic blow-up).

    The sizes are measured in turn, three times each, so that both see the same load; the
    median of the short runs is compared with the best of the long ones, so that a moment of
    load during a long run cannot fail the test, while a cost per task that grows with the
    number of tasks (ten times more at 500 when it is linear in it) still does.
    """
    small, large = [], []
    for _ in range(3):
        small.append(per_task_seconds(tmp_path, 50))
        large.append(per_task_seconds(tmp_path, 500))
    per_small, per_large = statistics.median(small), min(large)
    report("per_task_ms_50", per_small * 1000)
    report("per_task_ms_500", per_large * 1000)
    report("per_task_ratio_500_over_50", per_large / per_small)
    assert per_large < 3 * per_small, (small, large)
