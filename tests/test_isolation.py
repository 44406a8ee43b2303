"""Worktree isolation with executors that behave like coding agents (fixtures/executors/agent.sh):
they write files, commit with ``git add -A``, rewrite TODO.md without the lock and print
progress bars. Real processes, real git."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from runhelpers import wait_for

AGENT = Path(__file__).resolve().parent / "fixtures" / "executors" / "agent.sh"
BATCHACTION = [sys.executable, "-m", "batchaction"]


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout.strip()


def todo_text(count: int, deps: dict[int, int] | None = None) -> str:
    out = ["# TODO", ""]
    for n in range(1, count + 1):
        out += [f"### {n}. Task {n}", "- **Status**: [NOT STARTED]"]
        if deps and n in deps:
            out.append(f"- **Dependencies**: Task {deps[n]}")
        out.append("")
    return "\n".join(out)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    for args in (
        ["init", "-q", "-b", "main"],
        ["config", "user.name", "Maintainer"],
        ["config", "user.email", "maintainer@example.invalid"],
    ):
        git(root, *args)
    (root / "exec.sh").write_text(
        '#!/bin/sh\nn=$1\nif [ "$n" -gt 5 ]; then export AGENT_NEEDS=$((n - 5)); fi\n'
        f'exec "{AGENT}" "$n"\n',
        encoding="utf-8",
    )
    (root / "exec.sh").chmod(0o755)
    (root / "shared.txt").write_text("".join(f"task {n}: todo\n" for n in range(1, 11)))
    (root / "TODO.md").write_text(todo_text(10, {n: n - 5 for n in range(6, 11)}))
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "init")
    return root


def run(repo: Path, selection: str, *extra: str, **env: str) -> tuple[int, dict[str, Any], str]:
    summary = repo.parent / "summary.json"
    summary.unlink(missing_ok=True)
    full = {**os.environ, "AGENT_SLEEP": "0.15", **env}
    proc = subprocess.run(
        [
            *BATCHACTION, "run", selection, "--executor", "./exec.sh {number}",
            "--summary-json", str(summary), "--grace", "1", *extra,
        ],
        cwd=repo, env=full, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    data = json.loads(summary.read_text()) if summary.exists() else {}
    return proc.returncode, data, proc.stderr


def task_commits(repo: Path, since: str) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {}
    for sha in git(repo, "rev-list", f"{since}..HEAD").split():
        subject = git(repo, "log", "-1", "--format=%s", sha)
        files = git(repo, "diff-tree", "--no-commit-id", "--name-only", "-r", sha).split()
        result[subject] = sorted(files)
    return result


def no_leftovers(repo: Path) -> None:
    """No worktree, temporary ref, index or run directory is left behind."""
    assert git(repo, "worktree", "list").count("\n") == 0
    assert git(repo, "for-each-ref", "refs/batchaction") == ""
    common = repo / ".git"
    assert not list((common / "batchaction" / "worktrees").glob("*"))
    assert not list(common.glob("batchaction-index-*"))


class TestAgentsInParallel:
    def test_ten_agents_five_wide_every_commit_carries_only_its_own_files(self, repo: Path) -> None:
        """The issue's scenario: ten agents at --max-parallel 5 that commit with git add -A,
        edit their own line of a shared file and rewrite TODO.md without the lock."""
        start = git(repo, "rev-parse", "HEAD")
        code, summary, err = run(
            repo, "1-10", "--max-parallel", "5",
            AGENT_SHARED="shared.txt", AGENT_TODO="TODO.md", AGENT_NOISY="1",
        )  # fmt: skip
        assert code == 0, err
        assert {t["number"]: t["outcome"] for t in summary["tasks"]} == dict.fromkeys(
            range(1, 11), "completed"
        )
        commits = task_commits(repo, start)
        assert commits == {
            f"task {n}: agent work": ["shared.txt", f"work/task-{n}.txt"] for n in range(1, 11)
        }
        assert (repo / "shared.txt").read_text() == "".join(
            f"task {n}: done\n" for n in range(1, 11)
        )
        todo = (repo / "TODO.md").read_text()
        assert todo.count("[COMPLETED]") == 10
        assert "RESEARCHED" not in todo  # our outcome is written over the agent's own status
        assert summary["isolation"]["mode"] == "worktree"
        assert summary["isolation"]["branch"] == "main"
        assert "* main fast-forwarded to " in err
        no_leftovers(repo)

    def test_dependents_see_their_dependencies_work(self, repo: Path) -> None:
        """Task 6 needs work/task-1.txt: it starts from a tip that holds task 1's commit."""
        code, summary, err = run(repo, "1,6")
        assert code == 0, err
        assert [t["outcome"] for t in summary["tasks"]] == ["completed", "completed"]


class TestWorkIsNeverLost:
    def test_conflict_fails_the_task_blocks_dependents_keeps_the_work(self, repo: Path) -> None:
        """Two agents overwrite the same line: the second to finish fails with the file named;
        its dependent is blocked; an independent task goes on; the work stays on a branch."""
        code, summary, err = run(
            repo, "1-3,6-8", "--max-parallel", "3", AGENT_CONFLICT="shared.txt"
        )
        assert code == 1, err
        tasks = {t["number"]: t for t in summary["tasks"]}
        failed = [n for n in (1, 2, 3) if tasks[n]["outcome"] == "failed"]
        assert len(failed) == 2  # three agents edit line 1: the first integrated wins
        for n in failed:
            assert tasks[n]["reason"].startswith("conflict in shared.txt")
            branch = tasks[n]["branch"]
            assert branch
            assert branch.endswith(f"/task-{n}")
            assert git(repo, "show", f"{branch}:work/task-{n}.txt").startswith(f"task {n}")
            assert tasks[n + 5]["outcome"] == "blocked"
        no_leftovers(repo)

    def test_a_failed_agent_keeps_its_commits_on_a_branch(self, repo: Path) -> None:
        code, summary, err = run(repo, "2-3", AGENT_FAIL="2")
        assert code == 1, err
        tasks = {t["number"]: t for t in summary["tasks"]}
        assert tasks[2]["outcome"] == "failed"
        assert tasks[3]["outcome"] == "completed"
        branch = tasks[2]["branch"]
        assert git(repo, "log", "-1", "--format=%s", branch) == "task 2: agent work"
        assert not (repo / "work" / "task-2.txt").exists()
        assert (repo / "work" / "task-3.txt").exists()

    def test_uncommitted_work_is_committed_on_the_tasks_behalf(self, repo: Path) -> None:
        start = git(repo, "rev-parse", "HEAD")
        code, _, err = run(repo, "4", AGENT_COMMIT="0", AGENT_TODO="TODO.md")
        assert code == 0, err
        assert task_commits(repo, start) == {"task 4: Task 4": ["work/task-4.txt"]}

    def test_interrupt_keeps_running_work_and_cleans_up(self, repo: Path) -> None:
        summary_path = repo.parent / "summary.json"
        proc = subprocess.Popen(
            [
                *BATCHACTION, "run", "1-2", "--executor", "./exec.sh {number}",
                "--summary-json", str(summary_path), "--grace", "5",
            ],
            cwd=repo, env={**os.environ, "AGENT_SLEEP": "30"},
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert wait_for((repo / ".git" / "batchaction").exists, timeout=30)
        time.sleep(1.0)  # the agents have written their first step
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        summary = json.loads(summary_path.read_text())
        for task in summary["tasks"]:
            assert task["outcome"] == "cancelled"
            assert git(repo, "show", f"{task['branch']}:work/task-{task['number']}.txt")
        no_leftovers(repo)

    def test_work_of_a_killed_run_is_saved_at_the_next_run(self, repo: Path) -> None:
        proc = subprocess.Popen(
            [*BATCHACTION, "run", "1", "--executor", "./exec.sh {number}"],
            cwd=repo, env={**os.environ, "AGENT_SLEEP": "30"},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        assert wait_for((repo / ".git" / "batchaction").exists, timeout=30)
        time.sleep(1.0)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        code, _, err = run(repo, "3")
        assert code == 0, err
        assert "work left by a killed run was saved on" in err
        saved = [
            b for b in git(repo, "branch", "--format=%(refname:short)").split() if "task-1" in b
        ]
        assert len(saved) == 1
        assert git(repo, "show", f"{saved[0]}:work/task-1.txt").startswith("task 1, step 1")
        no_leftovers(repo)


class TestTheBranch:
    def test_dirty_overlapping_work_tree_is_never_touched(self, repo: Path) -> None:
        """A local edit of a file a task changed: the branch stays, the tip is on
        batchaction/<run-id>, and the summary says how to take it."""
        (repo / "shared.txt").write_text("my local edit\n")
        head = git(repo, "rev-parse", "HEAD")
        code, summary, err = run(repo, "1", AGENT_SHARED="shared.txt")
        assert code == 0, err
        assert (repo / "shared.txt").read_text() == "my local edit\n"
        assert git(repo, "rev-parse", "HEAD") == head
        result = summary["isolation"]["result_branch"]
        assert result
        assert result.startswith("batchaction/")
        assert f"git merge --ff-only {result}" in summary["isolation"]["message"]
        assert "not on your branch (local changes overlap it): take it with" in err
        assert "uncommitted changes to tracked files" in err

    def test_isolation_none_runs_in_the_work_tree(self, repo: Path) -> None:
        code, summary, err = run(repo, "4", "--isolation", "none", AGENT_COMMIT="0")
        assert code == 0, err
        assert summary["isolation"] == {"mode": "none"}
        assert (repo / "work" / "task-4.txt").exists()
        assert git(repo, "status", "--porcelain", "--", "work")  # left as the agent left it

    def test_outside_git_there_is_a_notice(self, tmp_path: Path) -> None:
        plain = tmp_path / "plain"
        plain.mkdir()
        (plain / "TODO.md").write_text(todo_text(1))
        proc = subprocess.run(
            [*BATCHACTION, "run", "1", "--executor", "true"],
            cwd=plain, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert "tasks share the work tree" in proc.stderr


def processes_with(mark: str) -> list[int]:
    """Live processes whose environment holds ``mark``."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            if mark.encode() in Path(f"/proc/{name}/environ").read_bytes():
                found.append(int(name))
        except OSError:
            continue
    return found


class TestNothingOutlivesTheRun:
    @pytest.mark.parametrize(("isolation", "selection"), [("worktree", "1-3"), ("none", "1")])
    def test_a_daemon_that_left_the_group_is_stopped(
        self, repo: Path, isolation: str, selection: str
    ) -> None:
        """agent.sh leaves `setsid sleep 300` behind: a new session, out of the task's process
        group; it carries the task's token, and is stopped when the task ends."""
        mark = f"mark-{os.getpid()}-{time.monotonic_ns()}"
        code, _, err = run(
            repo, selection, "--isolation", isolation, AGENT_DAEMON="1", AGENT_TEST_MARK=mark
        )
        assert code == 0, err
        assert wait_for(lambda: not processes_with(mark), timeout=10), processes_with(mark)


class TestWhatAFreshWorktreeLacks:
    def test_copied_and_linked_files_reach_the_task_and_are_never_committed(
        self, repo: Path
    ) -> None:
        """worktree-copy and worktree-link bring untracked, ignored files (.env, a dependency
        folder) into every worktree; neither ends up in a commit."""
        (repo / ".gitignore").write_text(".env\nvendor/\n")
        git(repo, "add", ".gitignore")
        git(repo, "commit", "-q", "-m", "ignore")
        (repo / ".env").write_text("SECRET=1\n")
        (repo / "vendor").mkdir()
        (repo / "vendor" / "lib.txt").write_text("lib\n")
        (repo / "check.sh").write_text(
            "#!/bin/sh\nset -e\ntest -f .env\ntest -L vendor\ncat vendor/lib.txt\n"
            "echo out > out-$1.txt\ngit add -A\ngit -c user.name=a -c user.email=a@b "
            'commit -qm "task $1"\n'
        )
        (repo / "check.sh").chmod(0o755)
        config = repo / ".github" / "batchaction.yml"
        config.parent.mkdir()
        config.write_text("worktree-copy: ['.env']\nworktree-link: ['vendor']\n")
        start = git(repo, "rev-parse", "HEAD")
        summary_path = repo.parent / "summary.json"
        proc = subprocess.run(
            [*BATCHACTION, "run", "1", "--executor", "../repo/check.sh {number}",
             "--summary-json", str(summary_path)],
            cwd=repo, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert task_commits(repo, start) == {"task 1": ["out-1.txt"]}


class TestOldGit:
    @pytest.fixture
    def old_git(self, tmp_path: Path) -> dict[str, str]:
        """A ``git`` on PATH that says it is 2.30 and otherwise is the real git."""
        import shutil

        real = shutil.which("git")
        assert real is not None
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        fake = bin_dir / "git"
        fake.write_text(
            f'#!/bin/sh\nif [ "$1" = version ]; then echo "git version 2.30.0"; exit 0; fi\n'
            f'exec "{real}" "$@"\n'
        )
        fake.chmod(0o755)
        return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}

    def test_default_falls_back_to_the_shared_work_tree(
        self, repo: Path, old_git: dict[str, str]
    ) -> None:
        code, summary, err = run(repo, "4", AGENT_COMMIT="0", **old_git)
        assert code == 0, err
        assert "git 2.30.0 is older than 2.38: tasks share the work tree" in err
        assert summary["isolation"] == {"mode": "none"}

    def test_asking_for_worktrees_is_a_clear_error(
        self, repo: Path, old_git: dict[str, str]
    ) -> None:
        code, _, err = run(repo, "4", "--isolation", "worktree", **old_git)
        assert code == 2
        assert "needs git 2.38 or later (this is git 2.30.0)" in err
        assert "Traceback" not in err


def script(repo: Path, name: str, body: str) -> str:
    """An executor script outside the repository; returns its command with {number}."""
    path = repo.parent / name
    path.write_text("#!/bin/sh\nset -e\nn=$1\n" + body)
    path.chmod(0o755)
    return f"{path} {{number}}"


def run_with(
    repo: Path, selection: str, executor: str, *extra: str
) -> tuple[int, dict[str, Any], str]:
    summary = repo.parent / "summary.json"
    summary.unlink(missing_ok=True)
    proc = subprocess.run(
        [*BATCHACTION, "run", selection, "--executor", executor, "--summary-json", str(summary),
         "--grace", "1", *extra],
        cwd=repo, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    data = json.loads(summary.read_text()) if summary.exists() else {}
    return proc.returncode, data, proc.stderr


class TestAgentsThatBreakThings:
    """From a review that tried to make isolation lose work: each case keeps it now."""

    def test_a_stale_index_lock_loses_nothing(self, repo: Path) -> None:
        """An agent killed mid-commit leaves index.lock: leftovers are committed without it."""
        start = git(repo, "rev-parse", "HEAD")
        executor = script(
            repo, "lock.sh",
            'echo "work $n" > "out-$n.txt"\ntouch "$(git rev-parse --git-path index.lock)"\n',
        )  # fmt: skip
        code, summary, err = run_with(repo, "1-2", executor)
        assert code == 0, err
        assert [t["outcome"] for t in summary["tasks"]] == ["completed", "completed"]
        assert task_commits(repo, start) == {
            "task 1: Task 1": ["out-1.txt"],
            "task 2: Task 2": ["out-2.txt"],
        }
        no_leftovers(repo)

    def test_a_binary_conflict_fails_one_task_cleanly(self, repo: Path) -> None:
        executor = script(repo, "bin.sh", 'printf "\\000\\377 task %s" "$n" > blob.bin\n')
        code, summary, err = run_with(repo, "1-2", executor)
        assert code == 1, err
        assert "Traceback" not in err
        outcomes = sorted(t["outcome"] for t in summary["tasks"])
        assert outcomes == ["completed", "failed"]
        failed = next(t for t in summary["tasks"] if t["outcome"] == "failed")
        assert failed["reason"].startswith("conflict in blob.bin")
        assert failed["branch"]
        no_leftovers(repo)

    def test_a_line_the_agent_adds_under_its_status_is_kept(self, repo: Path) -> None:
        executor = script(
            repo, "plan.sh",
            "awk -v n=\"$n\" '{ print } $0 ~ \"^### \" n \"\\\\.\" { hit = 1 } "
            "hit && /Status/ { print \"- **Plan**: written by the agent\"; hit = 0 }' "
            "TODO.md > t && mv t TODO.md\n",
        )  # fmt: skip
        code, _, err = run_with(repo, "3", executor)
        assert code == 0, err
        todo = (repo / "TODO.md").read_text()
        section = todo.split("### 3. Task 3", 1)[1].split("###", 1)[0]
        assert "- **Plan**: written by the agent" in section
        assert "[COMPLETED]" in section

    def test_a_task_that_deletes_its_git_link_keeps_its_work(self, repo: Path) -> None:
        """The worktree's .git file is put back: the work is read, and the slot serves on."""
        start = git(repo, "rev-parse", "HEAD")
        executor = script(
            repo, "rm.sh", 'echo w > "w-$n.txt"\nif [ "$n" = 1 ]; then rm -f .git; fi\n'
        )
        code, summary, err = run_with(repo, "1-3", executor, "--max-parallel", "1")
        assert code == 0, err
        assert [t["outcome"] for t in summary["tasks"]] == ["completed"] * 3
        assert set(task_commits(repo, start)) == {f"task {n}: Task {n}" for n in (1, 2, 3)}
        no_leftovers(repo)


class TestTodoEditsAreNeverLost:
    def test_an_edit_outside_its_section_is_kept_on_the_tasks_branch(self, repo: Path) -> None:
        executor = script(repo, "other.sh", "sed -i 's/^# TODO$/# TODO (edited)/' TODO.md\n")
        code, summary, err = run_with(repo, "2", executor)
        assert code == 0, err
        (task,) = summary["tasks"]
        assert "outside its own section" in task["reason"]
        assert (repo / "TODO.md").read_text().startswith("# TODO\n")
        assert git(repo, "show", f"{task['branch']}:TODO.md").startswith("# TODO (edited)")


class TestKilledRuns:
    def test_a_stale_lock_in_a_killed_runs_worktree_does_not_stop_the_next_run(
        self, repo: Path
    ) -> None:
        mark = f"mark-{os.getpid()}-{time.monotonic_ns()}"
        executor = script(
            repo, "stale.sh",
            'echo "w $n" > "w-$n.txt"\ntouch "$(git rev-parse --git-path index.lock)"\n'
            "sleep 60\n",
        )  # fmt: skip
        proc = subprocess.Popen(
            [*BATCHACTION, "run", "1", "--executor", executor],
            cwd=repo, env={**os.environ, "AGENT_TEST_MARK": mark},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        assert wait_for(
            lambda: bool(list(repo.glob(".git/batchaction/worktrees/*/slot-1/w-1.txt"))), timeout=30
        )
        os.kill(proc.pid, signal.SIGKILL)  # the run only: its executor lives on, as it would
        proc.wait(timeout=30)
        code, _, err = run(repo, "4", AGENT_COMMIT="0")
        assert code == 0, err
        saved = [
            b for b in git(repo, "branch", "--format=%(refname:short)").split() if "task-1" in b
        ]
        assert len(saved) == 1
        assert git(repo, "show", f"{saved[0]}:w-1.txt") == "w 1"
        assert wait_for(lambda: not processes_with(mark), timeout=10)  # the orphan was stopped
        no_leftovers(repo)


class TestTheBranchMoved:
    def test_a_commit_on_the_branch_during_the_run_is_reported(self, repo: Path) -> None:
        """Someone commits on the branch while tasks run: the result stays on
        batchaction/<run-id>, and the console says so and how to take it."""
        executor = script(
            repo, "moves.sh",
            'echo w > "w-$n.txt"\ngit -C "$(dirname "$BATCH_TODO_PATH")" -c user.name=x '
            '-c user.email=x@y commit -q --allow-empty -m "meanwhile"\n',
        )  # fmt: skip
        code, summary, err = run_with(repo, "1", executor)
        assert code == 0, err
        result = summary["isolation"]["result_branch"]
        assert result
        assert git(repo, "log", "-1", "--format=%s") == "meanwhile"
        assert f"main moved during the run): take it with git merge {result}" in err
        assert git(repo, "show", f"{result}:w-1.txt") == "w"
