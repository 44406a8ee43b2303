"""How ``batchaction plan`` scales with the size of TODO.md.

    python bench/plan_scale.py [--sizes 1000,10000,100000] [--runs 5] [--seed 1]

For each size N, writes a TODO.md of N tasks in the list-item style (``- **Status**: ...``,
about 0.6 KB per task with a description paragraph; each task depends on up to 3 earlier tasks
drawn from a seeded RNG; some tasks are already done), then times
``batchaction plan 1-N --max-tasks N --json`` as a whole process, interpreter start included:
best and median wall time of ``--runs`` runs (after one untimed warm-up run), the best CPU
time (user + system, less sensitive to a busy machine) and the peak RSS of the process (both
from ``wait4``). The target is 10k tasks in at most 1.0 s, growing near-linearly.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from common import batchaction_argv, child_env

TARGET_SIZE = 10_000
TARGET_SECONDS = 1.0
DONE_SHARE = 0.15
WINDOW = 200  # dependencies are drawn from this many tasks before each task

_WORDS = (
    "prove", "lemma", "refactor", "module", "parser", "status", "field", "dependency", "wave",
    "schedule", "update", "test", "coverage", "document", "example", "archive", "migrate",
    "verify", "benchmark", "profile", "cache", "index", "graph", "heading", "section", "marker",
    "summary", "report", "theorem", "axiom", "context", "build", "release",
)  # fmt: skip


def sentence(rng: random.Random, words: int) -> str:
    text = " ".join(rng.choice(_WORDS) for _ in range(words))
    return text[0].upper() + text[1:] + "."


def render_deps(deps: Sequence[int], style: int) -> str:
    if not deps:
        return "None"
    if style == 0:
        return ", ".join(map(str, deps))
    if style == 1:
        return ", ".join(f"Task {n}" for n in deps)
    return "Tasks " + ", ".join(map(str, deps)) + " (see plan)"


def generate(size: int, seed: int) -> tuple[str, int]:
    """A TODO.md text with ``size`` tasks, and how many of them are open."""
    rng = random.Random(seed)
    out = ["# TODO\n\n## High Priority\n\n"]
    open_count = 0
    for number in range(1, size + 1):
        earlier = range(max(1, number - WINDOW), number)
        deps = sorted(rng.sample(earlier, min(len(earlier), rng.randint(0, 3))))
        done = rng.random() < DONE_SHARE
        open_count += not done
        status = "[COMPLETED]" if done else rng.choice(["[NOT STARTED]", "[PLANNED]"])
        out.append(
            f"### {number}. {sentence(rng, 6)[:-1]}\n"
            f"- **Effort**: {rng.randint(1, 8)} hours\n"
            f"- **Status**: {status}\n"
            f"- **Priority**: {rng.choice(['High', 'Medium', 'Low'])}\n"
            f"- **Language**: {rng.choice(['python', 'lean', 'markdown'])}\n"
            f"- **Blocking**: None\n"
            f"- **Dependencies**: {render_deps(deps, rng.randrange(3))}\n"
            f"- **Files Affected**:\n"
            f"  - src/{rng.choice(_WORDS)}/{rng.choice(_WORDS)}.py\n"
            f"- **Description**: {sentence(rng, 10)}\n\n"
            f"{sentence(rng, 16)} {sentence(rng, 14)} {sentence(rng, 8)}\n\n"
        )
    return "".join(out), open_count


class Run(NamedTuple):
    wall: float
    cpu: float  # user + system seconds of the child
    max_rss_kb: int
    stdout: str


def run_once(argv: Sequence[str], cwd: Path, env: dict[str, str]) -> Run:
    """One whole-process run: wall time around spawn and wait, peak RSS of that child."""
    out_path, err_path = cwd / "plan.out", cwd / "plan.err"
    with out_path.open("w", encoding="utf-8") as out, err_path.open("w", encoding="utf-8") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(
            f"{' '.join(argv)} exited {proc.returncode}:\n"
            + err_path.read_text(encoding="utf-8")[-2000:]
        )
    # ru_maxrss is in kilobytes on Linux.
    cpu = usage.ru_utime + usage.ru_stime
    return Run(wall, cpu, usage.ru_maxrss, out_path.read_text(encoding="utf-8"))


class Row(NamedTuple):
    size: int
    file_mb: float
    median: float
    best: float
    cpu: float
    rss_mb: float
    waves: int


def measure(size: int, runs: int, seed: int, work: Path, cache: Path) -> Row:
    text, open_count = generate(size, seed)
    folder = work / f"n{size}"
    folder.mkdir()
    (folder / "TODO.md").write_text(text, encoding="utf-8")
    argv = [*batchaction_argv(), "plan", f"1-{size}", "--max-tasks", str(size), "--json"]
    env = child_env(cache)
    warm = run_once(argv, folder, env)
    data = json.loads(warm.stdout)
    planned = sum(len(wave) for wave in data["waves"])
    if planned != open_count:
        raise SystemExit(f"{size} tasks: planned {planned}, expected {open_count} open tasks")
    timings = [run_once(argv, folder, env) for _ in range(runs)]
    walls = [t.wall for t in timings]
    return Row(
        size=size,
        file_mb=len(text.encode("utf-8")) / 1e6,
        median=statistics.median(walls),
        best=min(walls),
        cpu=min(t.cpu for t in timings),
        rss_mb=max(t.max_rss_kb for t in timings) / 1024,
        waves=len(data["waves"]),
    )


def print_table(rows: Sequence[Row]) -> None:
    header = (
        "tasks",
        "file MB",
        "median wall s",
        "best wall s",
        "best CPU s",
        "peak RSS MB",
        "waves",
        "growth",
    )
    lines = [header]
    previous: Row | None = None
    for row in rows:
        growth = "-"
        if previous is not None:
            growth = f"x{row.median / previous.median:.2f} for x{row.size / previous.size:g}"
        lines.append(
            (
                str(row.size),
                f"{row.file_mb:.1f}",
                f"{row.median:.3f}",
                f"{row.best:.3f}",
                f"{row.cpu:.3f}",
                f"{row.rss_mb:.1f}",
                str(row.waves),
                growth,
            )
        )
        previous = row
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        print("  ".join(cell.rjust(width) for cell, width in zip(line, widths, strict=True)))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        default="1000,10000,100000",
        help="comma-separated task counts (default: 1000,10000,100000)",
    )
    parser.add_argument("--runs", type=int, default=5, help="timed runs per size (default 5)")
    parser.add_argument("--seed", type=int, default=1, help="RNG seed for the generated files")
    parser.add_argument("--quick", action="store_true", help="1k and 2k tasks, 1 run (smoke test)")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.runs = "1000,2000", 1
    sizes = sorted({int(s) for s in args.sizes.replace(" ", "").split(",") if s})
    if not sizes or min(sizes) < 1 or args.runs < 1:
        parser.error("sizes and runs must be positive")

    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, command: ", end="")
    print(" ".join([Path(batchaction_argv()[0]).name, *batchaction_argv()[1:]]), "plan 1-N ...")
    with tempfile.TemporaryDirectory(prefix="plan-scale-") as tmp:
        work = Path(tmp)
        cache = work / "pycache"
        rows = [measure(size, args.runs, args.seed, work, cache) for size in sizes]
    print_table(rows)
    by_size = {row.size: row for row in rows}
    if 10_000 in by_size and 100_000 in by_size:
        ratio = by_size[100_000].median / by_size[10_000].median
        print(f"growth 100k/10k: x{ratio:.2f} (linear would be x10.00)")
    if TARGET_SIZE in by_size:
        verdict = "met" if by_size[TARGET_SIZE].median <= TARGET_SECONDS else "MISSED"
        print(f"target {TARGET_SIZE} tasks <= {TARGET_SECONDS:.1f} s wall: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
