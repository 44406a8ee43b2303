"""``batchaction demo``: the whole pipeline on the bundled example, in a temporary directory.

A bare repository stands in for GitHub; a clone of it is the workspace. Each task runs in a
worktree of its own, as a coding agent would: the example executor writes files and commits them
under the task's own name (or leaves them for batchaction to commit), reads what its dependencies
made, and two independent tasks rewrite the same line of README.md, so the second to finish
conflicts and its work is kept on a branch. One more task fails, one times out and one is left in
progress. The integrated work and the status commit (as the bot) are pushed; the demo prints the
summary, the pushed history, the kept branch and the status commit. Nothing outside the temporary
directory changes.
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

from batchaction.gitops import commit_back, commit_message, git, head, identity_env
from batchaction.planner import plan
from batchaction.progress import HumanReporter, final_report
from batchaction.runner import RunRequest, execute, write_outputs
from batchaction.settings import Settings
from batchaction.textlines import read_todo_text
from batchaction.todo import parse_todo
from batchaction.workspaces import IDENTITY_EMAIL, IDENTITY_NAME
from batchaction.writeback import StatusChange

SELECTION = list(range(2, 13))
LOG_FORMAT = "--format=%h %an: %s"
CONFLICT = re.compile(r"conflict in (.+?) \(kept on ")

# The scratch project's README: tasks 5 and 6 both rewrite its Usage line.
README = """# notes-service

A small backend for Markdown notes.

Usage: nothing to run yet.
"""


def _setup(root: Path) -> Path:
    remote = root / "remote.git"
    work = root / "work"
    git("init", "--quiet", "--bare", "--initial-branch=main", str(remote), cwd=root)
    git("init", "--quiet", "--initial-branch=main", str(work), cwd=root)
    example = resources.files("batchaction").joinpath("example")
    for name in ("TODO.md", "executor.sh"):
        (work / name).write_bytes(example.joinpath(name).read_bytes())
    (work / "executor.sh").chmod(0o755)
    (work / "README.md").write_text(README, encoding="utf-8")
    env = identity_env("Demo Maintainer", "maintainer@example.invalid")
    git("add", "README.md", "TODO.md", "executor.sh", cwd=work)
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
        settings = Settings(
            executor="./executor.sh",
            max_parallel=3,
            timeout=2.0,
            grace=1.0,
            task_author=f"{IDENTITY_NAME} <{IDENTITY_EMAIL}>",
        )
        print(f"batchaction demo: a scratch repository in {root}", file=sys.stderr)
        print(
            f"$ batchaction run 2-12 --executor ./executor.sh --timeout {settings.timeout:g}s\n",
            file=sys.stderr,
        )
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
        print("---- What was pushed: git log origin/main ----\n")
        git("fetch", "--quiet", "origin", cwd=work)
        print(git("log", LOG_FORMAT, "origin/main", cwd=work).stdout)
        _print_kept(work, result.summary)
        print("---- The status commit ----\n")
        if committed.sha and committed.pushed:
            diff = git("show", "--stat", "--patch", "--format=", committed.sha, cwd=work)
            print(diff.stdout)
        else:
            print(f"nothing pushed: {committed.error or 'no status changed'}\n")
        print(f"Files are in {root}" if keep else "The scratch repository has been removed.")
        return result.exit_code if result.exit_code > 1 else 0
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


def _print_kept(work: Path, summary: dict[str, Any]) -> None:
    """The branches that keep work that was not integrated: their commits and, for a task that
    conflicted, how the conflicting files differ from what was pushed."""
    listed = git("branch", "--list", "batchaction/*", cwd=work).stdout
    print("---- Work kept on branches, not integrated ----\n")
    print("$ git branch --list 'batchaction/*'")
    print(listed.rstrip() or "(none)")
    conflicts = {
        t["branch"]: match.group(1).split(", ")
        for t in summary["tasks"]
        if t.get("branch") and (match := CONFLICT.match(t.get("reason") or ""))
    }
    for branch in listed.replace("*", " ").split():
        print(f"\n$ git log --format='%h %an: %s' origin/main..{branch}")
        print(git("log", LOG_FORMAT, f"origin/main..{branch}", cwd=work).stdout.rstrip())
        if branch in conflicts:
            paths = conflicts[branch]
            print(f"\n$ git diff origin/main {branch} -- {' '.join(paths)}")
            print(git("diff", "origin/main", branch, "--", *paths, cwd=work).stdout.rstrip())
    print()
