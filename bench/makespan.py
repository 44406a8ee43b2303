"""Makespan on seeded random DAGs: batchaction eager and waves against the lower bound and make.

    python bench/makespan.py [--seeds 10] [--tasks 40] [--width 4] [--quick]

Each task depends on 0-3 earlier ones and sleeps 0.1-0.6 s (drawn from the seed); its
``**Effort**`` is proportional to the sleep, so the planner's critical path matches the real
durations. Lower bound LB = max(critical path, total work / width). ``make -jW`` runs the same
graph (one target per task, same prerequisites, recipe ``sleep X && touch $@``).
Wall = the whole command, interpreter start included; in-run = the summary's ``duration_s``.
"""

from __future__ import annotations

import argparse
import heapq
import random
import statistics
import sys
import tempfile
from pathlib import Path

from common import (
    child_env,
    count_status,
    fresh_dir,
    machine,
    median,
    print_table,
    run_batchaction,
    timed,
    todo_text,
    warm_up,
)

Graph = list[tuple[int, tuple[int, ...], float]]  # (number, dependencies, sleep seconds)


def random_dag(seed: int, tasks: int, low: float, high: float) -> Graph:
    rng = random.Random(seed)
    graph: Graph = []
    for number in range(1, tasks + 1):
        count = rng.randint(0, min(3, number - 1))
        deps = tuple(sorted(rng.sample(range(1, number), count)))
        graph.append((number, deps, round(rng.uniform(low, high), 2)))
    return graph


def lower_bound(graph: Graph, width: int) -> tuple[float, float, float]:
    """(critical path, total work / width, their max); numbers are topologically ordered."""
    finish: dict[int, float] = {}
    for number, deps, sleep in graph:
        finish[number] = sleep + max((finish[d] for d in deps), default=0.0)
    critical = max(finish.values())
    spread = sum(sleep for _, _, sleep in graph) / width
    return critical, spread, max(critical, spread)


def list_schedule(graph: Graph, width: int) -> float:
    """Makespan of eager with zero overhead: longest remaining chain first, then lowest number."""
    dependents: dict[int, list[int]] = {number: [] for number, _, _ in graph}
    for number, deps, _ in graph:
        for dep in deps:
            dependents[dep].append(number)
    duration = {number: sleep for number, _, sleep in graph}
    chain: dict[int, float] = {}
    for number, _, sleep in reversed(graph):
        chain[number] = sleep + max((chain[c] for c in dependents[number]), default=0.0)
    waiting = {number: len(deps) for number, deps, _ in graph}
    ready = [(-chain[n], n) for n, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    running: list[tuple[float, int]] = []
    now = 0.0
    while ready or running:
        while ready and len(running) < width:
            _, number = heapq.heappop(ready)
            heapq.heappush(running, (now + duration[number], number))
        now, number = heapq.heappop(running)
        for child in dependents[number]:
            waiting[child] -= 1
            if waiting[child] == 0:
                heapq.heappush(ready, (-chain[child], child))
    return now


def makefile(graph: Graph) -> str:
    lines = [".PHONY: all", "all: " + " ".join(f"t{n}" for n, _, _ in graph), ""]
    for number, deps, sleep in graph:
        lines.append(f"t{number}: " + " ".join(f"t{d}" for d in deps))
        lines.append(f"\tsleep {sleep} && touch $@")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--width", type=int, default=4)
    parser.add_argument("--min-sleep", type=float, default=0.1)
    parser.add_argument("--max-sleep", type=float, default=0.6)
    parser.add_argument("--quick", action="store_true", help="1 seed, 8 short tasks (smoke test)")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.tasks, args.min_sleep, args.max_sleep = 1, 8, 0.02, 0.1
    width, n = args.width, args.tasks
    per_seed: list[tuple[object, ...]] = []
    ratios: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-makespan-") as tmp:
        root = Path(tmp)
        env = child_env(root / "pycache")
        warm_up(root, env)
        for seed in range(1, args.seeds + 1):
            graph = random_dag(seed, n, args.min_sleep, args.max_sleep)
            critical, spread, bound = lower_bound(graph, width)
            ideal = list_schedule(graph, width)
            todo = todo_text(
                (number, deps, f"{round(sleep * 100)} minutes") for number, deps, sleep in graph
            )
            executor = (
                "case {number} in "
                + " ".join(f"{number}) sleep {sleep};;" for number, _, sleep in graph)
                + " esac"
            )
            measured: dict[str, tuple[float, float]] = {}
            for strategy in ("eager", "waves"):
                work = fresh_dir(root, f"{seed}-{strategy}", todo)
                wall, summary = run_batchaction(
                    work,
                    f"1-{n}",
                    executor,
                    env,
                    "--max-parallel",
                    str(width),
                    "--strategy",
                    strategy,
                )
                if count_status(work / "TODO.md") != n:
                    raise SystemExit(f"seed {seed} {strategy}: not every task is [COMPLETED]")
                measured[strategy] = (wall, float(summary["duration_s"]))
            work = fresh_dir(root, f"{seed}-make", "")
            (work / "Makefile").write_text(makefile(graph), encoding="utf-8")
            make_wall = timed(["make", "-r", f"-j{width}", "all"], cwd=work).wall
            eager, eager_in = measured["eager"]
            waves, waves_in = measured["waves"]
            row = {
                "eager/LB": eager / bound,
                "waves/LB": waves / bound,
                "make/LB": make_wall / bound,
                "eager/make": eager / make_wall,
                "eager in-run/LB": eager_in / bound,
                "waves in-run/LB": waves_in / bound,
                "eager in-run/make": eager_in / make_wall,
                "list/LB": ideal / bound,
                "eager in-run/list": eager_in / ideal,
            }
            for key, value in row.items():
                ratios.setdefault(key, []).append(value)
            per_seed.append(
                (
                    seed,
                    critical,
                    spread,
                    bound,
                    ideal,
                    eager,
                    eager_in,
                    waves,
                    waves_in,
                    make_wall,
                    row["eager/LB"],
                    row["waves/LB"],
                    row["make/LB"],
                    row["eager/make"],
                )
            )
    print(
        f"makespan: {args.seeds} seeded DAGs x {n} tasks, 0-3 deps each, "
        f"sleep {args.min_sleep}-{args.max_sleep} s, {width} wide; {machine()}"
    )
    print_table(
        "per seed (seconds; LB = max(critical path, work/width); list = eager with zero overhead)",
        (
            "seed",
            "crit",
            "work/w",
            "LB",
            "list",
            "eager",
            "eager in-run",
            "waves",
            "waves in-run",
            "make",
            "eager/LB",
            "waves/LB",
            "make/LB",
            "eager/make",
        ),
        per_seed,
    )
    print_table(
        "aggregate over seeds (targets: eager/LB <= 1.10, eager/make < 1, waves visibly slower)",
        ("ratio", "median", "mean", "min", "max"),
        [(key, median(v), statistics.fmean(v), min(v), max(v)) for key, v in ratios.items()],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
