"""Cost of the per-task supervisor (``batchaction/subreaper.py``) that kills what a task leaves.

    python bench/strays.py [--tasks 50] [--width 5] [--runs 5] [--baseline DIR] [--quick]

Two measures:

- one executor ``true``, started and waited for ``--spawns`` times in a row: ``/bin/sh -c true``
  in a new session (what batchaction did before the supervisor), then through
  ``executor.spawn`` (the supervisor: a Python interpreter with ``-I -S``, then the shell).
  Median wall milliseconds per start, and CPU milliseconds (user + system of the children);
- ``batchaction run`` of ``--tasks`` tasks ``true``, ``--width`` wide, every run on a fresh
  TODO.md: median wall and CPU seconds, and milliseconds a task. With ``--baseline DIR`` (a
  checkout of the code before the supervisor, e.g. ``git worktree add DIR <commit>``) the
  same runs are made with that code, the two taking turns, and the differences are printed.

``--quick``: 10 tasks, 20 spawns, 1 run (a smoke test).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import child_env, count_status, fresh_dir, machine, print_table, timed, todo_text

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HERE))

from batchaction import executor  # noqa: E402 - the checkout this script belongs to


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def spawn_costs(count: int, root: Path) -> dict[str, tuple[float, float]]:
    """Median wall ms and mean CPU ms of one start-and-wait, direct and supervised."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    results: dict[str, tuple[float, float]] = {}
    try:
        for name in ("direct", "supervised"):
            walls: list[float] = []
            cpu_before = _children_cpu()
            for _ in range(count):
                start = time.perf_counter()
                if name == "direct":
                    proc = subprocess.Popen(
                        ["/bin/sh", "-c", "true"], cwd=root, stdin=subprocess.DEVNULL,
                        stdout=devnull, stderr=subprocess.STDOUT, start_new_session=True,
                    )  # fmt: skip
                    proc.wait()
                else:
                    report = os.memfd_create("bench-report")
                    proc = executor.spawn(
                        "true", cwd=root, env=dict(os.environ), log=devnull, stream=False,
                        grace=1.0, report=report,
                    )  # fmt: skip
                    proc.wait()
                    os.close(report)
                if proc.returncode != 0:
                    raise SystemExit(f"{name}: exit {proc.returncode}")
                walls.append((time.perf_counter() - start) * 1000)
            cpu = (_children_cpu() - cpu_before) * 1000 / count
            results[name] = (statistics.median(walls), cpu)
    finally:
        os.close(devnull)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--width", type=int, default=5)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--spawns", type=int, default=200)
    parser.add_argument("--baseline", type=Path, help="a checkout of the code to compare with")
    parser.add_argument("--quick", action="store_true", help="10 tasks, 20 spawns, 1 run")
    args = parser.parse_args(argv)
    if args.quick:
        args.tasks, args.spawns, args.runs = 10, 20, 1
    trees = {"supervised": HERE}
    if args.baseline is not None:
        if not (args.baseline / "batchaction" / "__init__.py").is_file():
            print(f"{args.baseline} holds no batchaction package", file=sys.stderr)
            return 2
        trees = {"baseline": args.baseline.resolve(), **trees}
    n, width = args.tasks, args.width
    todo = todo_text((i, (), None) for i in range(1, n + 1))
    walls: dict[str, list[float]] = {name: [] for name in trees}
    cpus: dict[str, list[float]] = {name: [] for name in trees}
    with tempfile.TemporaryDirectory(prefix="bench-strays-") as tmp:
        root = Path(tmp)
        costs = spawn_costs(args.spawns, root)
        counter = 0

        def once(name: str) -> tuple[float, float]:
            nonlocal counter
            counter += 1
            work = fresh_dir(root, f"run{counter}", todo)
            env = {**child_env(root / f"pycache-{name}"), "PYTHONPATH": str(trees[name])}
            argv = [sys.executable, "-m", "batchaction", "run", f"1-{n}", "--executor", "true"]
            argv += ["--max-parallel", str(width), "--no-stream", "--todo", str(work / "TODO.md")]
            argv += ["--log-dir", str(work / "logs")]
            timing = timed(argv, cwd=work, env=env)
            if count_status(work / "TODO.md") != n:
                raise SystemExit(f"{name}: not every task is [COMPLETED]")
            return timing.wall, timing.cpu

        for name in trees:  # warm-up: caches, bytecode
            once(name)
        for _ in range(args.runs):
            for name in trees:
                wall, cpu = once(name)
                walls[name].append(wall)
                cpus[name].append(cpu)

    print(f"strays: the per-task supervisor; {machine()}")
    print_table(
        f"one executor `true`, started and waited for {args.spawns} times in a row",
        ("start", "median wall ms", "cpu ms"),
        [(name, wall, cpu) for name, (wall, cpu) in costs.items()],
    )
    added = costs["supervised"][0] - costs["direct"][0]
    print(f"  the supervisor adds {added:.1f} ms wall and "
          f"{costs['supervised'][1] - costs['direct'][1]:.1f} ms CPU to each start")  # fmt: skip
    rows = [
        (name, statistics.median(walls[name]), min(walls[name]),
         statistics.median(walls[name]) / n * 1000, statistics.median(cpus[name]))
        for name in trees
    ]  # fmt: skip
    print_table(
        f"batchaction run: {n} tasks `true`, {width} wide, {args.runs} run(s) each"
        + (", interleaved" if len(trees) > 1 else ""),
        ("code", "median wall s", "best wall s", "ms/task", "median cpu s"),
        rows,
    )
    if "baseline" in trees:
        wall_diff = statistics.median(walls["supervised"]) - statistics.median(walls["baseline"])
        cpu_diff = statistics.median(cpus["supervised"]) - statistics.median(cpus["baseline"])
        print(f"  supervised - baseline: {wall_diff * 1000 / n:+.1f} ms wall and "
              f"{cpu_diff * 1000 / n:+.1f} ms CPU a task")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
