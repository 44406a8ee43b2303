"""Dispatch cost: N no-op tasks at W wide, batchaction (status writes on) vs GNU parallel, xargs.

    python bench/dispatch.py [--tasks 500] [--width 5] [--runs 5] [--quick]

Runs are interleaved (batchaction, parallel, xargs, batchaction, ...); every batchaction run
gets a fresh TODO.md and must leave all tasks ``[COMPLETED]``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from common import (
    Timing,
    batchaction_argv,
    child_env,
    count_status,
    fresh_dir,
    machine,
    median,
    print_table,
    timed,
    todo_text,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--width", type=int, default=5)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="20 tasks, 1 run (smoke test)")
    args = parser.parse_args(argv)
    if args.quick:
        args.tasks, args.runs = 20, 1
    if shutil.which("parallel") is None:
        print("GNU parallel is not installed", file=sys.stderr)
        return 2
    n, width = args.tasks, args.width
    todo = todo_text((i, (), None) for i in range(1, n + 1))
    commands = {
        "batchaction": f"batchaction run 1-{n} --executor true --max-parallel {width} --no-stream",
        "parallel": f"seq {n} | parallel -j{width} true",
        "xargs": f"seq {n} | xargs -P{width} -n1 true",
    }
    walls: dict[str, list[float]] = {tool: [] for tool in commands}
    cpus: dict[str, list[float]] = {tool: [] for tool in commands}
    with tempfile.TemporaryDirectory(prefix="bench-dispatch-") as tmp:
        root = Path(tmp)
        env = child_env(root / "pycache")
        counter = 0

        def once(tool: str) -> Timing:
            nonlocal counter
            if tool != "batchaction":
                return timed(["sh", "-c", commands[tool]], cwd=root)
            counter += 1
            work = fresh_dir(root, f"run{counter}", todo)
            argv = [*batchaction_argv(), "run", f"1-{n}", "--executor", "true"]
            argv += ["--max-parallel", str(width), "--no-stream", "--todo", str(work / "TODO.md")]
            argv += ["--log-dir", str(work / "logs")]
            timing = timed(argv, cwd=work, env=env)
            done = count_status(work / "TODO.md")
            if done != n:
                raise SystemExit(f"batchaction left {done}/{n} tasks [COMPLETED] in TODO.md")
            return timing

        for tool in commands:  # warm-up: caches, bytecode
            once(tool)
        for _ in range(args.runs):
            for tool in commands:
                timing = once(tool)
                walls[tool].append(timing.wall)
                cpus[tool].append(timing.cpu)

    print(f"dispatch: {n} no-op tasks, {width} wide, {args.runs} interleaved runs; {machine()}")
    for tool, command in commands.items():
        print(f"  {tool:<12} {command}")
    print(f"  TODO.md after every batchaction run: {n}/{n} [COMPLETED]")
    rows = [
        (tool, median(w), min(w), max(w), median(w) / n * 1000, median(cpus[tool]))
        for tool, w in walls.items()
    ]
    print_table(
        "wall time (s); cpu = median user+sys seconds of the tool and its children",
        ("tool", "median", "min", "max", "ms/task", "cpu"),
        rows,
    )
    ba = median(walls["batchaction"])
    print_table(
        "ratios of medians",
        ("ratio", "value"),
        [
            ("batchaction/parallel", ba / median(walls["parallel"])),
            ("batchaction/xargs", ba / median(walls["xargs"])),
            ("cpu batchaction/parallel", median(cpus["batchaction"]) / median(cpus["parallel"])),
        ],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
