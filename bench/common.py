"""Shared helpers for the benchmark scripts: TODO.md generation, timing, medians, tables."""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple


def batchaction_argv() -> list[str]:
    """The installed ``batchaction`` entry point (next to this interpreter), else ``-m``."""
    beside = Path(sys.executable).with_name("batchaction")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("batchaction")
    return [found] if found else [sys.executable, "-m", "batchaction"]


def child_env(cache: Path) -> dict[str, str]:
    """Environment for timed batchaction runs: bytecode cached (under ``cache``), as installed.

    An editable checkout run with PYTHONDONTWRITEBYTECODE=1 would recompile the package on every
    start; an installed wheel (and the container image) ships compiled bytecode.
    """
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(cache)
    return env


def todo_text(tasks: Iterable[tuple[int, Sequence[int], str | None]]) -> str:
    """TODO.md with ``### N. Task N`` sections: (number, dependencies, effort or None)."""
    out = ["# TODO\n\n"]
    for number, deps, effort in tasks:
        out.append(f"### {number}. Task {number}\n\n**Status**: [NOT STARTED]\n")
        out.append(f"**Dependencies**: {', '.join(map(str, deps)) if deps else 'None'}\n")
        if effort:
            out.append(f"**Effort**: {effort}\n")
        out.append("\n")
    return "".join(out)


class Timing(NamedTuple):
    wall: float  # seconds, time.perf_counter around subprocess.run
    cpu: float  # user + system seconds of the command and everything it waited for
    proc: subprocess.CompletedProcess[str]


def timed(argv: Sequence[str], **kwargs: Any) -> Timing:
    """Run one command to completion; it must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(
            f"command failed ({proc.returncode}): {' '.join(argv)[:200]}\n{proc.stderr[-2000:]}"
        )
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return Timing(wall, cpu, proc)


def run_batchaction(
    workdir: Path, selection: str, executor: str, env: Mapping[str, str], *extra: str
) -> tuple[float, dict[str, Any]]:
    """Time one ``batchaction run`` on ``workdir/TODO.md``; return (wall seconds, JSON summary)."""
    todo = workdir / "TODO.md"
    summary = workdir / "summary.json"
    argv = [
        *batchaction_argv(),
        "run",
        selection,
        "--executor",
        executor,
        "--todo",
        str(todo),
        "--no-stream",
        "--summary-json",
        str(summary),
        "--log-dir",
        str(workdir / "logs"),
        *extra,
    ]
    wall = timed(argv, cwd=workdir, env=env).wall
    return wall, json.loads(summary.read_text(encoding="utf-8"))


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def print_table(title: str, header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """A plain fixed-width table: first column left, the others right; floats to 3 places."""
    cells = [[f"{v:.3f}" if isinstance(v, float) else str(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(header)]
    print(f"\n{title}")
    for row in [list(header), ["-" * w for w in widths], *cells]:
        first, *rest = zip(row, widths, strict=True)
        print("  ".join([first[0].ljust(first[1]), *(c.rjust(w) for c, w in rest)]).rstrip())


def machine() -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{os.cpu_count()} CPUs, load average {load}, Python {sys.version.split()[0]}"


def fresh_dir(root: Path, name: str, todo: str) -> Path:
    """A new directory under ``root`` holding a fresh TODO.md."""
    path = root / name
    path.mkdir(parents=True)
    (path / "TODO.md").write_text(todo, encoding="utf-8")
    return path


def count_status(todo: Path, marker: str = "[COMPLETED]") -> int:
    return sum(
        1
        for line in todo.read_text(encoding="utf-8").splitlines()
        if line.startswith("**Status**:") and marker in line
    )


def warm_up(root: Path, env: Mapping[str, str]) -> None:
    """One untimed run so the bytecode cache and the OS caches are warm."""
    work = fresh_dir(root, "warm-up", todo_text([(1, (), None), (2, (1,), None)]))
    run_batchaction(work, "1-2", "true", env)
