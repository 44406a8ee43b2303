"""Three scheduling scenarios: independent tasks, a dependency chain, one root with a fan-out.

    python bench/scenarios.py [--runs 3] [--quick]

(a) 50 independent ``sleep 0.1`` tasks at 5 wide; (b) a 20-deep chain (each task depends on
the previous one) whose executor records its own start and end (``date +%s%N``), giving the
hand-off = dependent's start - dependency's end per edge (the floor: the same executor
chained by a plain shell script); (c) one root (``sleep 0.2``) with 49
dependents (``true``) at 5 wide. Status writes are on throughout. Wall = the whole command,
interpreter start included; in-run = the summary's ``duration_s``.
"""

from __future__ import annotations

import argparse
import shlex
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

WIDTH = 5


def run_checked(work: Path, n: int, executor: str, env: dict[str, str]) -> tuple[float, float]:
    wall, summary = run_batchaction(work, f"1-{n}", executor, env, "--max-parallel", str(WIDTH))
    done = count_status(work / "TODO.md")
    if done != n:
        raise SystemExit(f"{work.name}: {done}/{n} tasks [COMPLETED] in TODO.md")
    return wall, float(summary["duration_s"])


def handoffs_ms(log: Path) -> list[float]:
    """Per edge n-1 -> n: start of n minus end of n-1, from the executor's own records."""
    stamps: dict[tuple[str, int], int] = {}
    for line in log.read_text(encoding="utf-8").splitlines():
        kind, number, ns = line.split()
        stamps[kind, int(number)] = int(ns)
    chain = sorted(n for kind, n in stamps if kind == "start")
    return [(stamps["start", n] - stamps["end", n - 1]) / 1e6 for n in chain if n > 1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per scenario (median wall)")
    parser.add_argument("--quick", action="store_true", help="small sizes, 1 run (smoke test)")
    args = parser.parse_args(argv)
    independent, sleep_a, depth, fanout, sleep_c = 50, 0.1, 20, 49, 0.2
    if args.quick:
        args.runs, independent, depth, fanout = 1, 10, 5, 9
    rows: list[tuple[object, ...]] = []
    edges: list[float] = []
    floor: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-scenarios-") as tmp:
        root = Path(tmp)
        env = child_env(root / "pycache")
        warm_up(root, env)
        walls: dict[str, list[tuple[float, float]]] = {"a": [], "b": [], "c": []}
        for run in range(args.runs):
            todo_a = todo_text((i, (), None) for i in range(1, independent + 1))
            work = fresh_dir(root, f"a{run}", todo_a)
            walls["a"].append(run_checked(work, independent, f"sleep {sleep_a}", env))

            work = fresh_dir(
                root,
                f"b{run}",
                todo_text((i, (i - 1,) if i > 1 else (), None) for i in range(1, depth + 1)),
            )
            log = shlex.quote(str(work / "stamps"))
            recorder = (
                f'echo "start {{number}} $(date +%s%N)" >> {log}; '
                f'echo "end {{number}} $(date +%s%N)" >> {log}'
            )
            walls["b"].append(run_checked(work, depth, recorder, env))
            edges += handoffs_ms(work / "stamps")
            # The floor: the same executor chained by a plain shell script.
            (work / "stamps").unlink()
            chain = "".join(
                f"/bin/sh -c {shlex.quote(recorder.replace('{number}', str(i)))}\n"
                for i in range(1, depth + 1)
            )
            timed(["sh", "-c", chain], cwd=work)
            floor += handoffs_ms(work / "stamps")

            todo_c = todo_text((i, (1,) if i > 1 else (), None) for i in range(1, fanout + 2))
            work = fresh_dir(root, f"c{run}", todo_c)
            executor = f"case {{number}} in 1) sleep {sleep_c};; esac"
            walls["c"].append(run_checked(work, fanout + 1, executor, env))

    ideal_a = independent * sleep_a / WIDTH
    ideal_c = max(sleep_c, sleep_c / WIDTH)
    for key, label, ideal in (
        ("a", f"(a) {independent} independent x sleep {sleep_a}", ideal_a),
        ("b", f"(b) chain of {depth} (true + timestamps)", None),
        ("c", f"(c) 1 root (sleep {sleep_c}) + {fanout} dependents (true)", ideal_c),
    ):
        wall = median([w for w, _ in walls[key]])
        inrun = median([d for _, d in walls[key]])
        if ideal is None:
            rows.append((label, wall, inrun, "-", "-", "-"))
        else:
            rows.append((label, wall, inrun, ideal, wall - ideal, inrun - ideal))
    print(f"scenarios: {WIDTH} wide, median of {args.runs} run(s); {machine()}")
    print_table(
        "wall time (s)",
        ("scenario", "wall", "in-run", "ideal", "overhead", "in-run overhead"),
        rows,
    )
    print_table(
        "(b) hand-off = dependent's start - dependency's end (target <= 10 ms);"
        " floor = the same executor chained by a plain shell script",
        ("chained by", "edges", "median ms", "p90 ms", "max ms"),
        [
            (name, len(v), median(v), sorted(v)[int(0.9 * (len(v) - 1))], max(v))
            for name, v in (("batchaction", edges), ("sh (floor)", floor))
        ],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
