"""What worktree isolation costs a task, and what running agents side by side in it buys.

    python bench/isolation.py [--files 2000,20000] [--tasks 50] [--width 5]
                              [--batch 30] [--sleep 0.1,1] [--batch-files 2000] [--runs 3]

Every repository is made fresh: ``--files`` small tracked files, 100 to a directory, and a
TODO.md, committed and packed (as a clone is).

(a) Per-task overhead of isolation, for each size in ``--files``: the package's own
``Workspaces`` (what ``run --isolation worktree`` uses) driven in this process, ``--width``
tasks in flight. For each task: its status set to in progress in the shared TODO.md (as the
run does; untimed), ``Workspaces.start`` (TODO read, pooled worktree reset to the integration
tip: ``checkout --force`` and ``clean -ffdx``), then ``agent.sh`` in the worktree, untimed
(AGENT_SLEEP=0: it writes a file and commits with ``git add -A``, TODO.md copy included),
then, ``--width`` tasks later, ``Workspaces.finish`` (TODO merge, leftover commit,
integration onto the tip, worktree back to the pool). The figure is start + finish, per task,
over ``--tasks`` tasks. The first ``--width`` tasks are left out of it: their starts make the
pool (``git worktree add``, one checkout of the whole tree each), reported on its own line.
Also printed: the git processes a task starts (counted where they are run; not counted: the
three long-running ones, object reader, tree and ref writers, that a run starts once).

(b) ``--batch`` committing agent tasks (agent.sh with AGENT_COMMIT=1 and, in turn, each
AGENT_SLEEP of ``--sleep``, a comma-separated list) on a repository of ``--batch-files``
files, as whole ``batchaction run`` processes: ``--max-parallel --width --isolation
worktree`` against ``--max-parallel 1 --isolation none`` (one by one in one work tree, the
safe alternative without worktrees); the isolated run includes the pool's creation. Best and
median wall time of ``--runs`` runs each (after one untimed warm-up run, each run on a fresh
repository that is removed after it), and the ratio of the medians. A run that fails is made
again and said so: one by one in the shared work tree, an agent's ``git add -A`` can trip
over batchaction's own temporary TODO file (``unable to stat '.TODO.md.*.tmp'``).
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from common import batchaction_argv, child_env, machine, median, print_table, timed, todo_text

ROOT = Path(__file__).resolve().parents[1]
AGENT = ROOT / "tests" / "fixtures" / "executors" / "agent.sh"
sys.path.insert(0, str(ROOT))  # the package of this checkout, also when it is not installed

from batchaction import history, integration, workspaces, worktrees  # noqa: E402
from batchaction.workspaces import Workspaces  # noqa: E402
from batchaction.writeback import StatusChange, write_changes  # noqa: E402

OVERHEAD = ("median", "mean", "p90", "start", "finish", "git/task")


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def make_repo(path: Path, files: int, tasks: int) -> Path:
    """A committed, packed repository of ``files`` files and a TODO.md of ``tasks`` tasks."""
    for n in range(files):
        target = path / "src" / f"d{n // 100:03d}" / f"f{n}.txt"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(f"file {n}\n", encoding="utf-8")
    (path / "TODO.md").write_text(todo_text((n, (), None) for n in range(1, tasks + 1)))
    git(path, "init", "-q", "-b", "main")
    git(path, "add", "-A")
    git(path, "-c", "user.name=b", "-c", "user.email=b@example.invalid", "commit", "-qm", "init")
    git(path, "repack", "-adq")
    return path


@contextmanager
def counting_git() -> Iterator[collections.Counter[str]]:
    """Count the git processes the isolation modules start, by subcommand."""
    counts: collections.Counter[str] = collections.Counter()
    modules = [m for m in (worktrees, integration, history, workspaces) if hasattr(m, "git")]
    originals = [m.git for m in modules]

    def wrap(inner: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: str, **kwargs: Any) -> Any:
            counts[args[0] if args else "?"] += 1
            return inner(*args, **kwargs)

        return counted

    for module, original in zip(modules, originals, strict=True):
        module.git = wrap(original)
    try:
        yield counts
    finally:
        for module, original in zip(modules, originals, strict=True):
            module.git = original


def overhead(root: Path, files: int, args: argparse.Namespace) -> dict[str, Any]:
    """(a) for one repository size: milliseconds per task, and the pool's creation in s."""
    total = args.width + args.tasks
    repo = make_repo(root / f"repo-{files}", files, total)
    todo = repo / "TODO.md"
    ws = Workspaces(repo=repo, todo=todo, max_parallel=args.width, started_in=repo)
    ws.open()
    env = dict(os.environ, AGENT_SLEEP="0", AGENT_COMMIT="1")
    day = time.strftime("%Y-%m-%d")
    took: dict[int, list[float]] = collections.defaultdict(list)  # task -> [start, finish]
    calls: collections.Counter[str] = collections.Counter()  # of the measured tasks
    flight: collections.deque[int] = collections.deque()
    with counting_git() as counts:

        def timed_call(number: int, call: Callable[[], Any]) -> Any:
            before = collections.Counter(counts)
            began = time.perf_counter()
            result = call()
            took[number].append(time.perf_counter() - began)
            if number > args.width:
                calls.update(counts - before)
            return result

        for number in range(1, total + 1 + args.width):
            if len(flight) == args.width or number > total:
                done = flight.popleft()
                work = timed_call(
                    done, lambda n=done: ws.finish(n, f"Task {n}", integrate=True, keep=False)
                )
                if not work.integrated or work.conflicts:
                    sys.exit(f"task {done} was not integrated: {work}")
                write_changes(todo, [StatusChange(done, "completed", day)])
            if number > total:
                continue
            write_changes(todo, [StatusChange(number, "in-progress", day)])
            tree = timed_call(number, lambda n=number: ws.start(n))
            subprocess.run(
                [str(AGENT), str(number)], cwd=tree.path, env=env | ws.environment(tree),
                check=True, capture_output=True,
            )  # fmt: skip
            flight.append(number)
    ws.close()
    measured = [took[n] for n in range(args.width + 1, total + 1)]
    per_task = [sum(pair) for pair in measured]
    return {
        "pool": sum(took[n][0] for n in range(1, args.width + 1)),
        "median": median(per_task) * 1000,
        "mean": statistics.fmean(per_task) * 1000,
        "p90": statistics.quantiles(per_task, n=10)[-1] * 1000 if len(per_task) > 1 else 0.0,
        "start": median([pair[0] for pair in measured]) * 1000,
        "finish": median([pair[1] for pair in measured]) * 1000,
        "git/task": sum(calls.values()) / args.tasks,
        "detail": ", ".join(f"{k} {v / args.tasks:.1f}" for k, v in calls.most_common()),
    }


def batch_run(root: Path, args: argparse.Namespace, sleep: str, isolated: bool) -> float:
    """(b): one whole ``batchaction run`` of ``--batch`` agent tasks; its wall time in s. A
    run that fails is made again on a fresh repository (twice at most), and said so."""
    env = child_env(root / "pycache") | {"AGENT_SLEEP": sleep, "AGENT_COMMIT": "1"}
    width, mode = (args.width, "worktree") if isolated else (1, "none")
    command = [
        *batchaction_argv(), "run", f"1-{args.batch}", "--executor", f"{AGENT} {{number}}",
        "--max-parallel", str(width), "--isolation", mode, "--no-stream",
    ]  # fmt: skip
    for attempt in range(3):
        scratch = Path(tempfile.mkdtemp(dir=root))
        repo = make_repo(scratch / "repo", args.batch_files, args.batch)
        try:
            wall = timed(command, cwd=repo, env=env).wall
        except SystemExit as failed:
            if attempt == 2:
                raise
            print(f"  ({mode} run failed, made again: {str(failed).splitlines()[-1][:120]})")
            continue
        finally:
            log = git(repo, "log", "--format=%s", "HEAD")
            shutil.rmtree(scratch)  # its pages go back before the next run
        if sum(line.endswith(": agent work") for line in log.splitlines()) != args.batch:
            sys.exit(f"{mode}: not every task's commit reached the branch:\n{log}")
        break
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", default="2000,20000", help="repository sizes for (a)")
    parser.add_argument("--tasks", type=int, default=50, help="measured tasks for (a)")
    parser.add_argument("--width", type=int, default=5)
    parser.add_argument("--batch", type=int, default=30, help="tasks for (b); 0: skip (b)")
    parser.add_argument("--sleep", default="0.1", help="AGENT_SLEEP values for (b), s")
    parser.add_argument("--batch-files", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"{machine()}, {git(ROOT, 'version')}")
    with tempfile.TemporaryDirectory(prefix="batchaction-bench-") as tmp:
        root = Path(tmp)
        rows: list[tuple[object, ...]] = []
        for files in (int(f) for f in args.files.split(",") if f):
            got = overhead(root, files, args)
            print(f"  {files} files, git processes a task: {got['detail']}")
            rows.append((files, got["pool"], *(f"{got[k]:.1f}" for k in OVERHEAD)))
        if rows:
            title = (
                f"(a) isolation overhead a task (start + finish), ms, over {args.tasks} tasks, "
                f"{args.width} in flight; the pool's creation ({args.width} checkouts), s, apart"
            )
            print_table(title, ["files", "pool s", *OVERHEAD], rows)
        if not args.batch:
            return
        batch_run(root, args, "0", False)  # warm-up: bytecode cache
        results = []
        for sleep in (s for s in args.sleep.split(",") if s):
            times: dict[bool, list[float]] = {True: [], False: []}
            for _ in range(args.runs):
                for isolated in (True, False):
                    times[isolated].append(batch_run(root, args, sleep, isolated))
                print(f"  AGENT_SLEEP={sleep}: {args.width} wide isolated "
                      f"{times[True][-1]:.2f} s, one by one {times[False][-1]:.2f} s")  # fmt: skip
            isolated, serial = median(times[True]), median(times[False])
            results.append((sleep, min(times[True]), isolated, min(times[False]), serial,
                            f"{isolated / serial:.2f}x"))  # fmt: skip
        print_table(
            f"(b) {args.batch} committing agent tasks, repository of {args.batch_files} files: "
            f"{args.width} wide isolated against one by one in one work tree, wall s "
            f"(best, median of {args.runs}); ratio of the medians",
            ["AGENT_SLEEP", "isolated best", "median", "one by one best", "median", "ratio"],
            results,
        )


if __name__ == "__main__":
    main()
