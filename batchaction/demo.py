"""``batchaction demo``: the whole pipeline on the bundled example, in a temporary directory.

A bare repository stands in for GitHub; a clone of it is the workspace. The example executor
completes most tasks, fails one, times out on one and leaves one in progress; the status
changes are committed as the bot and pushed. Nothing outside the temporary directory changes.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from importlib import resources
from pathlib import Path

from batchaction.gitops import commit_back, commit_message, git, head, identity_env
from batchaction.planner import plan
from batchaction.progress import HumanReporter, final_report
from batchaction.runner import RunRequest, execute, write_outputs
from batchaction.settings import Settings
from batchaction.textlines import read_todo_text
from batchaction.todo import parse_todo
from batchaction.writeback import StatusChange

SELECTION = list(range(2, 13))


def _setup(root: Path) -> Path:
    remote = root / "remote.git"
    work = root / "work"
    git("init", "--quiet", "--bare", "--initial-branch=main", str(remote), cwd=root)
    git("init", "--quiet", "--initial-branch=main", str(work), cwd=root)
    example = resources.files("batchaction").joinpath("example")
    for name in ("TODO.md", "executor.sh"):
        (work / name).write_bytes(example.joinpath(name).read_bytes())
    (work / "executor.sh").chmod(0o755)
    env = identity_env("Demo Maintainer", "maintainer@example.invalid")
    git("add", "TODO.md", "executor.sh", cwd=work)
    git("commit", "--quiet", "-m", "Add the task list", cwd=work, env=env)
    git("remote", "add", "origin", str(remote), cwd=work)
    git("push", "--quiet", "origin", "main", cwd=work)
    return work


def run_demo(keep: bool = False) -> int:
    root = Path(tempfile.mkdtemp(prefix="batchaction-demo-"))
    try:
        work = _setup(root)
        todo = work / "TODO.md"
        doc = parse_todo(read_todo_text(todo))
        the_plan = plan(doc.tasks, SELECTION)
        settings = Settings(executor="./executor.sh", max_parallel=3, timeout=3.0, grace=1.0)
        print(f"batchaction demo: a scratch repository in {root}", file=sys.stderr)
        print("$ batchaction run 2-12 --executor ./executor.sh --timeout 3s\n", file=sys.stderr)
        applied: list[StatusChange] = []
        base = head(work)
        result = execute(
            RunRequest(
                settings=settings,
                todo=todo,
                doc=doc,
                plan=the_plan,
                reporter=HumanReporter(len(the_plan.run)),
                cwd=work,
                log_dir=root / "logs",
                on_write=lambda patch: applied.extend(patch.applied),
            )
        )
        print(final_report(result.summary), file=sys.stderr)
        outcomes = {t["number"]: t["outcome"] for t in result.summary["tasks"]}
        committed = commit_back(
            work,
            todo=todo,
            base=base,
            branch="main",
            changes=applied,
            message=commit_message(outcomes),
        )
        result.summary["commit"] = committed.as_summary()
        write_outputs(result.summary, result.markdown, root / "summary.json", None)
        print("---- Markdown summary (as posted on the pull request) ----\n")
        print(result.markdown)
        print("---- What was committed and pushed ----\n")
        git("fetch", "--quiet", "origin", cwd=work)
        log = git("log", "--format=%h %an: %s", "origin/main", cwd=work)
        print(log.stdout)
        if committed.sha and committed.pushed:
            diff = git("show", "--stat", "--patch", "--format=", committed.sha, cwd=work)
            print(diff.stdout)
        else:
            print(f"nothing pushed: {committed.error or 'no status changed'}")
        print(f"Files are in {root}" if keep else "The scratch repository has been removed.")
        return result.exit_code if result.exit_code > 1 else 0
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
