"""Peak memory and wall time of ``batchaction`` on large inputs.

    python bench/resources.py [--runs 3] [--quick]

Each case runs ``batchaction`` as a whole process (interpreter start included), its standard
output to /dev/null. Peak RSS and wall time come from ``/usr/bin/time -f '%e %M'`` when GNU time
is installed (apt package ``time``), else from a wrapper child that reads
``getrusage(RUSAGE_CHILDREN)`` after waiting for the command. Cases:

- plan of a 10,000-task file (all selected, ``--max-tasks 10000``);
- run of 500 tasks (``true``) selected from that file;
- an executor printing 200 MB (lines of 82 bytes), with ``--stream`` and ``--no-stream``;
- a TODO.md holding a 100 MB line: in a task's description, and as a Status value (plan, run);
- ``batchaction action`` (a dispatched run, pushed to a local bare remote) whose one task
  prints 1 GB on one line, a progress bar redrawn with ``\r`` and no line break: peak RSS of
  the action process itself (``VmHWM`` in ``/proc/<pid>/status``, read every 50 ms until it
  exits) and of its largest process (GNU time), and the bytes the job log gets (the action's
  stdout and stderr) against the size of the task's whole log;
- per-task time of ``run`` for 50 and 500 no-op tasks (the run's own ``duration_s`` over the
  number of tasks, best of ``--runs``, the two sizes taking turns) and their ratio: about 1
  when the cost per task does not grow with the number of tasks.

``--quick`` divides every size by ten (and the scaling pair is 20 vs 200), one run each.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from common import batchaction_argv, child_env, machine, print_table, todo_text

MB = 1024 * 1024
LINE = "src/module.py:120: error: something went wrong in this part of the code compiling"

WRAPPER = r"""
import json, resource, subprocess, sys, time
argv, cwd = json.loads(sys.argv[1]), sys.argv[2]
started = time.monotonic()
code = subprocess.call(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=open("stderr.txt", "wb"))
wall = time.monotonic() - started
print(json.dumps([code, wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss]))
"""


class Measure(NamedTuple):
    wall: float  # seconds
    peak_mb: float


def measure(argv: Sequence[str], cwd: Path, env: dict[str, str]) -> Measure:
    """Run one command to completion (it must succeed): its wall time and peak RSS."""
    gnu_time = shutil.which("time")
    stderr = cwd / "stderr.txt"
    if gnu_time is not None:
        report = cwd / "time.txt"
        with stderr.open("wb") as err:
            code = subprocess.call(
                [gnu_time, "-o", str(report), "-f", "%e %M", *argv],
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        wall_text, peak_kb = report.read_text(encoding="utf-8").split()[-2:]
        wall, peak = float(wall_text), int(peak_kb)
    else:
        out = subprocess.run(
            [sys.executable, "-c", WRAPPER, json.dumps(list(argv)), str(cwd)],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        code, wall, peak = json.loads(out.stdout)
    if code != 0:
        tail = stderr.read_text(encoding="utf-8", errors="replace")[-2000:]
        raise SystemExit(f"command failed ({code}): {' '.join(argv)[:200]}\n{tail}")
    return Measure(float(wall), peak / 1024)


def many_tasks(count: int) -> str:
    """``count`` tasks; every fifth depends on the task three before it."""
    return todo_text(
        (n, (n - 3,) if n % 5 == 0 and n > 3 else (), None) for n in range(1, count + 1)
    )


def with_big_line(path: Path, size: int, *, in_status: bool) -> None:
    """Three tasks; task 2 holds a line of ``size`` bytes (its Status value, or a description)."""
    text = todo_text([(1, (), None), (2, (), None), (3, (2,), None)])
    if in_status:
        cut = text.index("[NOT STARTED]", text.index("### 2.")) + len("[NOT STARTED]")
        before, lead, filler, after = text[:cut], " ", b"x", text[cut:]
    else:
        cut = text.index("### 3.")
        before, lead, filler, after = text[:cut], "Description: ", b"lorem ipsum dolor ", "\n\n"
        after += text[cut:]
    block = filler * (MB // len(filler))
    with path.open("wb") as handle:
        handle.write((before + lead).encode())
        written = 0
        while written < size:
            piece = block[: size - written]
            handle.write(piece)
            written += len(piece)
        handle.write(after.encode())


def workdir(root: Path, name: str) -> Path:
    path = root / name
    path.mkdir()
    return path


def run_args(selection: str, executor: str, *extra: str) -> list[str]:
    return [*batchaction_argv(), "run", selection, "--executor", executor, *extra]


PROGRESS = "yes 'progress 42% [##########          ]' | tr '\\n' '\\r' | head -c {size}"


class ActionCost(NamedTuple):
    wall: float  # seconds
    action_mb: float  # peak RSS of the action process
    tree_mb: float  # peak RSS of the largest process (GNU time's %M), 0 without GNU time
    job_log: int  # bytes the action wrote to stdout and stderr
    task_log: int  # bytes of the task's whole log


def action_with_big_line(root: Path, size: int, env: dict[str, str]) -> ActionCost:
    """Run ``batchaction action`` on a one-task repository whose executor prints ``size``
    bytes without a line break (``PROGRESS``), then a last line."""
    remote, work = root / "remote.git", root / "action-workspace"
    git = ["git", "-c", "user.name=Bench", "-c", "user.email=bench@example.invalid"]
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True)
    subprocess.run(["git", "remote", "add", "origin", str(remote)], cwd=work, check=True)
    (work / "TODO.md").write_text(many_tasks(1), encoding="utf-8")
    subprocess.run([*git, "add", "TODO.md"], cwd=work, check=True)
    subprocess.run([*git, "commit", "-qm", "tasks"], cwd=work, check=True)
    subprocess.run(["git", "push", "-q", "origin", "HEAD:main"], cwd=work, check=True)
    event = root / "event.json"
    event.write_text(json.dumps({"inputs": {"tasks": "1"}, "ref": "refs/heads/main"}))
    executor = PROGRESS.format(size=size) + "; echo; echo done"
    action_env = {
        **env,
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": "workflow_dispatch",
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_WORKSPACE": str(work),
        "GITHUB_REPOSITORY": "bench/resources",
        "GITHUB_RUN_ID": "1",
        "GITHUB_OUTPUT": str(root / "output.txt"),
        "GITHUB_STEP_SUMMARY": str(root / "step-summary.md"),
        "INPUT_EXECUTOR": executor,
        "INPUT_TIMEOUT": "1h",
    }
    gnu_time = shutil.which("time")
    report = root / "time.txt"
    timed = [gnu_time, "-o", str(report), "-f", "%M"] if gnu_time else []
    out, err = root / "job-stdout.txt", root / "job-stderr.txt"
    started = time.monotonic()
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(
            [*timed, *batchaction_argv(), "action"],
            cwd=root,
            env=action_env,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
        )
        action_kb = 0
        while proc.poll() is None:
            action_kb = max(action_kb, _action_peak_kb(proc.pid, timed=bool(timed)))
            time.sleep(0.05)
    wall = time.monotonic() - started
    if proc.returncode != 0:
        tail = err.read_text(encoding="utf-8", errors="replace")[-2000:]
        raise SystemExit(f"batchaction action failed ({proc.returncode}):\n{tail}")
    (task_log,) = (work / ".batchaction" / "logs").glob("run-*/task-1.log")
    tree_kb = int(report.read_text(encoding="utf-8").split()[-1]) if timed else 0
    return ActionCost(
        wall,
        action_kb / 1024,
        tree_kb / 1024,
        out.stat().st_size + err.stat().st_size,
        task_log.stat().st_size,
    )


def _action_peak_kb(pid: int, *, timed: bool) -> int:
    """``VmHWM`` (peak RSS, KiB) of the action: ``pid`` itself, or its child under GNU time."""
    if timed:
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            return 0
        if not children:
            return 0
        pid = int(children[0])
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def per_task_ms(root: Path, counts: Sequence[int], runs: int, env: dict[str, str]) -> list[float]:
    """The run's own duration per task (interpreter start excluded) for each of ``counts``:
    best of ``runs``, the sizes taking turns so that they see the same load."""
    best = [float("inf")] * len(counts)
    for attempt in range(runs):
        for index, count in enumerate(counts):
            work = workdir(root, f"scale-{count}-{attempt}")
            (work / "TODO.md").write_text(many_tasks(count), encoding="utf-8")
            summary = work / "summary.json"
            argv = run_args(f"1-{count}", "true", "--no-stream", "--summary-json", str(summary))
            measure(argv, work, env)
            data = json.loads(summary.read_text(encoding="utf-8"))
            if data["counts"]["completed"] != count:
                raise SystemExit(f"{count} tasks: only {data['counts']['completed']} completed")
            best[index] = min(best[index], data["duration_s"] / count * 1000)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each scaling size (best)")
    parser.add_argument("--quick", action="store_true", help="sizes divided by ten, one run")
    args = parser.parse_args(argv)
    scale = 10 if args.quick else 1
    runs = 1 if args.quick else args.runs
    tasks, selected = 10_000 // scale, 500 // scale
    output, line = 200_000_000 // scale, 100 * MB // scale
    small, large = (20, 200) if args.quick else (50, 500)
    how = "GNU time" if shutil.which("time") else "getrusage(RUSAGE_CHILDREN) of a wrapper"
    print(f"batchaction resources: {machine()}; measured with {how}")
    rows: list[tuple[str, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="batchaction-resources-") as tmp:
        root = Path(tmp)
        env = child_env(root / "pycache")
        warm = workdir(root, "warm-up")
        (warm / "TODO.md").write_text(many_tasks(3), encoding="utf-8")
        measure(run_args("1-3", "true", "--no-stream"), warm, env)

        work = workdir(root, "many")
        (work / "TODO.md").write_text(many_tasks(tasks), encoding="utf-8")
        plan = [*batchaction_argv(), "plan", f"1-{tasks}", "--max-tasks", str(tasks), "--json"]
        rows.append((f"plan, {tasks:,} tasks", *measure(plan, work, env)))
        first = tasks // 5 + 1
        selection = f"{first}-{first + selected - 1}"
        result = measure(run_args(selection, "true", "--no-stream"), work, env)
        rows.append((f"run, {selected} of {tasks:,} tasks", *result))

        for mode in ("--stream", "--no-stream"):
            work = workdir(root, f"output{mode}")
            (work / "TODO.md").write_text(many_tasks(1), encoding="utf-8")
            loud = f"yes '{LINE}' | head -c {output}"
            result = measure(run_args("1", loud, mode, "--log-dir", str(work / "logs")), work, env)
            rows.append((f"run, {output // 1_000_000} MB executor output, {mode}", *result))
            shutil.rmtree(work)

        for where, in_status in (("description", False), ("Status value", True)):
            work = workdir(root, f"line-{in_status}")
            with_big_line(work / "TODO.md", line, in_status=in_status)
            label = f"{line // MB} MB line ({where})"
            rows.append(
                (f"plan, {label}", *measure([*batchaction_argv(), "plan", "1-3"], work, env))
            )
            rows.append(
                (f"run, {label}", *measure(run_args("1-3", "true", "--no-stream"), work, env))
            )
            shutil.rmtree(work)

        big = 1_000_000_000 // scale
        cost = action_with_big_line(workdir(root, "action"), big, env)
        shutil.rmtree(root / "action")

        started = time.monotonic()
        per_small, per_large = per_task_ms(root, (small, large), runs, env)
        scaling_wall = time.monotonic() - started

    print_table(
        "Peak RSS and wall time",
        ["case", "peak RSS MB", "wall s"],
        [(name, f"{peak:.1f}", f"{wall:.2f}") for name, wall, peak in rows],
    )
    print_table(
        f"action, one task printing {big / 1e9:g} GB on one line (\\r, no line break)",
        ["peak RSS MB: action", "largest process", "job log bytes", "task log bytes", "wall s"],
        [
            (
                f"{cost.action_mb:.1f}",
                f"{cost.tree_mb:.1f}",
                f"{cost.job_log:,}",
                f"{cost.task_log:,}",
                f"{cost.wall:.1f}",
            )
        ],
    )
    print_table(
        f"run of no-op tasks: time per task (best of {runs}; {scaling_wall:.1f} s in all)",
        ["tasks", "ms per task", "ratio"],
        [
            (str(small), f"{per_small:.2f}", "1.00"),
            (str(large), f"{per_large:.2f}", f"{per_large / per_small:.2f}"),
        ],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
