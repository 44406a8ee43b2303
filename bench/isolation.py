"""What worktree isolation costs: the same batch with ``--isolation none`` and ``worktree``.

    python bench/isolation.py [--tasks 20] [--width 5] [--files 2000] [--runs 3]

A git repository of ``--files`` small tracked files (the size of the checkout each worktree
needs), and a TODO.md of ``--tasks`` independent tasks. Each task runs
``fixtures/executors/agent.sh`` without sleeping (AGENT_SLEEP=0): it writes one file and, in
worktree mode, commits it, so every task is checked out, committed and integrated. Prints the
best and median wall time of ``--runs`` whole ``batchaction run`` processes per mode, and the
cost per task of isolation: (worktree - none) / tasks.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import batchaction_argv, child_env

AGENT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "executors" / "agent.sh"


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def make_repo(root: Path, tasks: int, files: int) -> Path:
    repo = root / "repo"
    (repo / "src").mkdir(parents=True)
    for n in range(files):
        (repo / "src" / f"f{n}.txt").write_text(f"file {n}\n")
    todo = ["# TODO", ""]
    for n in range(1, tasks + 1):
        todo += [f"### {n}. Task {n}", "- **Status**: [NOT STARTED]", ""]
    (repo / "TODO.md").write_text("\n".join(todo))
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=b", "-c", "user.email=b@example.invalid", "commit", "-qm", "init")
    return repo


def one_run(root: Path, args: argparse.Namespace, mode: str, cache: Path) -> float:
    scratch = Path(tempfile.mkdtemp(dir=root))
    repo = make_repo(scratch, args.tasks, args.files)
    env = child_env(cache) | {
        "AGENT_SLEEP": "0",
        "AGENT_COMMIT": "1" if mode == "worktree" else "0",
    }
    command = [
        *batchaction_argv(), "run", f"1-{args.tasks}", "--executor", f"{AGENT} {{number}}",
        "--max-parallel", str(args.width), "--isolation", mode, "--no-stream",
    ]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{mode} run failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--width", type=int, default=5)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="batchaction-bench-") as tmp:
        root = Path(tmp)
        cache = root / "pycache"
        one_run(root, args, "none", cache)  # warm-up: bytecode cache
        times: dict[str, list[float]] = {"none": [], "worktree": []}
        for _ in range(args.runs):
            for mode, values in times.items():
                values.append(one_run(root, args, mode, cache))
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, git repository of "
          f"{args.files} files, {args.tasks} agent tasks, {args.width} wide")  # fmt: skip
    print(f"{'isolation':>10} {'best s':>8} {'median s':>9}")
    for mode, values in times.items():
        print(f"{mode:>10} {min(values):8.3f} {statistics.median(values):9.3f}")
    per_task = (
        statistics.median(times["worktree"]) - statistics.median(times["none"])
    ) / args.tasks
    print(f"isolation costs {per_task * 1000:.0f} ms per task (median difference / tasks)")


if __name__ == "__main__":
    main()
