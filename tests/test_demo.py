"""``batchaction demo`` (SPEC 9): the whole pipeline on the bundled example, as a real process."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from runhelpers import clean_env

from batchaction.summary import schema

EXAMPLE = Path(__file__).resolve().parent.parent / "batchaction" / "example"
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# What the example executor does, task by task (batchaction/example/executor.sh).
AGENT_COMMITS = {2: "agent 2", 3: "agent 3", 5: "agent 5"}  # commit under their own name
LEFT_UNCOMMITTED = {4: "Add full-text search", 9: "Plan the sharing feature"}
OUTCOMES = {
    2: "completed",
    3: "completed",
    4: "completed",
    5: "completed",
    6: "failed",  # edits the line of README.md that task 5 edits: a conflict
    7: "failed",
    8: "timed-out",
    9: "in-progress",
    10: "blocked",
    12: "blocked",
}


def run_demo(cwd: Path, scratch: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``batchaction demo ARGS`` as a real process, its temporary files under ``scratch``."""
    return subprocess.run(
        [sys.executable, "-m", "batchaction", "demo", *args],
        cwd=cwd,
        env=clean_env({"TMPDIR": str(scratch)}),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def git_out(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout


@pytest.fixture(scope="module")
def kept(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    """One ``demo --keep`` run: its process and its scratch directory."""
    base = tmp_path_factory.mktemp("demo")
    scratch = base / "tmp"
    scratch.mkdir()
    proc = run_demo(base, scratch, "--keep")
    assert proc.returncode == 0, proc.stderr
    (root,) = scratch.iterdir()
    return proc, root


def _tasks(root: Path) -> dict[int, dict[str, Any]]:
    summary = json.loads((root / "summary.json").read_text(encoding="utf-8"))
    return {t["number"]: t for t in summary["tasks"]}


def test_examples_are_copies_of_the_bundled_example() -> None:
    """``examples/`` shows the files the demo runs, byte for byte."""
    for name in ("TODO.md", "executor.sh"):
        assert (EXAMPLES / name).read_bytes() == (EXAMPLE / name).read_bytes(), name


@pytest.mark.slow
class TestDemo:
    def test_demo_runs_and_cleans_up(self, tmp_path: Path) -> None:
        """The demo exits 0, prints the summary and the bot's commit, and leaves nothing behind."""
        cwd = tmp_path / "cwd"
        scratch = tmp_path / "tmp"
        cwd.mkdir()
        scratch.mkdir()
        proc = run_demo(cwd, scratch)
        assert proc.returncode == 0, proc.stderr
        out = proc.stdout
        assert "**batchaction** failure:" in out
        assert "| Wave | Task | Outcome | Duration | Reason |" in out
        for outcome in ("completed", "failed", "timed-out", "in-progress", "blocked"):
            assert f" {outcome} |" in out, outcome
        assert "<details>" in out
        assert "**Next steps**" in out
        commits = [line for line in out.splitlines() if ": " in line and "[bot]" in line]
        assert any("github-actions[bot]: " in line for line in commits), out
        assert "+- **Status**: [FAILED]" in out or "+**Status**: [FAILED]" in out
        assert "Traceback" not in proc.stderr
        assert list(cwd.iterdir()) == []
        assert list(scratch.iterdir()) == []

    def test_kept_summary_records_the_pushed_commit(
        self, kept: tuple[subprocess.CompletedProcess[str], Path]
    ) -> None:
        """With ``--keep`` the scratch directory stays, and its JSON summary names the commit
        the demo pushed to its bare remote."""
        _, root = kept
        summary = json.loads((root / "summary.json").read_text(encoding="utf-8"))
        jsonschema.Draft202012Validator(schema()).validate(summary)
        commit = summary["commit"]
        assert commit["pushed"] is True
        remote_tip = git_out(root / "work", "rev-parse", "origin/main").strip()
        assert commit["sha"] == remote_tip

    def test_outcomes(self, kept: tuple[subprocess.CompletedProcess[str], Path]) -> None:
        _, root = kept
        tasks = _tasks(root)
        assert {n: t["outcome"] for n, t in tasks.items()} == OUTCOMES
        # Task 3 reads schema.sql from task 2, task 5 the modules of tasks 3 and 4: each exits
        # non-zero when the file is missing, so completing proves it saw the integrated work.
        assert any("schema.sql (from task 2)" in line for line in tasks[3]["log_tail"])
        assert any("from tasks 3 and 4" in line for line in tasks[5]["log_tail"])
        for number in (10, 12):
            assert tasks[number]["reason"] == "blocked by failed task 7"

    def test_pushed_history_holds_each_task_commit_once(
        self, kept: tuple[subprocess.CompletedProcess[str], Path]
    ) -> None:
        """The bare remote's main: the task list, every integrated task's commit exactly once
        (the agents' own under their names, leftovers as ``task N: <title>``) in dependency
        order, and the bot's status commit on top; nothing of the conflicting task."""
        proc, root = kept
        log = git_out(root / "remote.git", "log", "--format=%an\t%s", "main").splitlines()
        authors = [line.split("\t", 1)[0] for line in log]
        subjects = [line.split("\t", 1)[1] for line in log]
        assert log[-1] == "Demo Maintainer\tAdd the task list", log
        assert authors[0] == "github-actions[bot]", log
        assert subjects[0].startswith("tasks: "), log
        assert authors.count("github-actions[bot]") == 1, log
        where: dict[int, int] = {}
        for number, author in AGENT_COMMITS.items():
            assert authors.count(author) == 1, (number, log)
            where[number] = authors.index(author)
        for number, title in LEFT_UNCOMMITTED.items():
            subject = f"task {number}: {title}"
            assert subjects.count(subject) == 1, (subject, log)
            where[number] = subjects.index(subject)
        assert "agent 6" not in authors, log
        assert not any(s.startswith(("task 6", "task 7", "task 8")) for s in subjects), log
        assert len(log) == 2 + len(AGENT_COMMITS) + len(LEFT_UNCOMMITTED), log
        # Newest first: a dependency's commit is further down than its dependents'.
        for dependency, dependent in ((2, 3), (2, 4), (3, 5), (4, 5)):
            assert where[dependency] > where[dependent], (dependency, dependent, log)
        # What the agents made is on main; task 5's edit of README.md won, task 6's did not.
        files = git_out(root / "remote.git", "ls-tree", "-r", "--name-only", "main").split()
        for path in ("schema.sql", "notes/storage.py", "notes/search.py", "notes/api.py"):
            assert path in files, files
        assert "plans/sharing.md" in files, files
        assert "notes/importer.py" not in files, files
        readme = git_out(root / "remote.git", "show", "main:README.md")
        assert "python -m notes serve" in readme
        assert "python -m notes import" not in readme
        # The demo printed that history as it is.
        printed = git_out(root / "work", "log", "--format=%h %an: %s", "origin/main")
        assert printed in proc.stdout

    def test_conflicting_task_fails_and_its_work_is_kept(
        self, kept: tuple[subprocess.CompletedProcess[str], Path]
    ) -> None:
        proc, root = kept
        task = _tasks(root)[6]
        assert task["outcome"] == "failed"
        match = re.fullmatch(
            r"conflict in README\.md \(kept on (batchaction/\S+/task-6)\)", task["reason"]
        )
        assert match, task["reason"]
        branch = match.group(1)
        assert task["branch"] == branch
        work = root / "work"
        assert git_out(work, "branch", "--list", "batchaction/*").split() == [branch]
        kept_log = git_out(work, "log", "--format=%an\t%s", f"origin/main..{branch}").splitlines()
        assert [line.split("\t", 1)[0] for line in kept_log] == ["agent 6"], kept_log
        assert "python -m notes import" in git_out(work, "show", f"{branch}:README.md")
        assert "notes/importer.py" in git_out(work, "ls-tree", "-r", "--name-only", branch)
        # The demo named the branch and showed its commit.
        assert branch in proc.stdout
        assert "agent 6: " in proc.stdout
