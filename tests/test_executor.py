"""Executor processes (SPEC 5): timeouts, output volume, result protocol and environment."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from runhelpers import (
    Spec,
    Workspace,
    all_gone,
    clean_env,
    kill_quietly,
    make_workspace,
    process_gone,
    read_pids,
    wait_for,
)

from batchaction import executor
from batchaction.repo import repository_root


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    """A workspace with the probe executor and no TODO.md yet."""
    return make_workspace(tmp_path)


class TestTimeout:
    def test_timeout_kills_the_whole_process_group(self, ws: Workspace) -> None:
        """On timeout a grandchild that ignores SIGTERM is killed too; the task is timed-out."""
        ws.write([Spec(1)])
        pids = ws.root / "pids"
        quoted = shlex.quote(str(pids))
        command = (
            f"echo $$ >> {quoted}; "
            f"sh -c 'trap \"\" TERM; echo $$ >> {quoted}; exec sleep 60' & wait"
        )
        try:
            result = ws.run("1", "--timeout", "1", "--grace", "1", executor=command)
            recorded = read_pids(pids)
            assert len(recorded) == 2
            assert all_gone(recorded)
        finally:
            kill_quietly(p for p in read_pids(pids) if not process_gone(p))
        assert result.code == 1, result.err
        task = result.tasks[1]
        assert task["outcome"] == "timed-out"
        assert task["reason"] == "timed out after 1s"
        fields = result.fields(1)
        assert fields["Status"] == "[FAILED]"
        assert fields["Failure Reason"] == "timed out after 1s"

    @pytest.mark.slow
    def test_descendant_dies_one_grace_period_after_timeout(self, ws: Workspace) -> None:
        """While later tasks run, a SIGTERM-proof descendant is killed when the grace ends."""
        ws.write([Spec(n) for n in range(1, 13)])
        pids, started = ws.root / "pids", ws.root / "started"
        command = (
            "case {number} in 1) "
            f"date +%s.%N > {shlex.quote(str(started))}; "
            f"sh -c 'trap \"\" TERM; echo $$ >> {shlex.quote(str(pids))}; exec sleep 60' & wait;; "
            f"*) exec {ws.probe_command()};; esac"
        )
        timeout, grace = 1.0, 2.0
        # One at a time: 1 times out first, then 2-12 keep the run busy for about 4.5 s more.
        proc = ws.start(
            "1-12",
            "--max-parallel",
            "1",
            "--timeout",
            "1",
            "--grace",
            "2",
            executor=command,
            env={"PROBE_SLEEP": "0.4"},
        )
        try:
            assert wait_for(lambda: bool(read_pids(pids)), timeout=30)
            (pid,) = read_pids(pids)
            assert wait_for(lambda: process_gone(pid), timeout=30, interval=0.01)
            died = time.time()
            result = ws.finish(proc)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            kill_quietly(p for p in read_pids(pids) if not process_gone(p))
        assert result.code == 1, result.err
        assert result.tasks[1]["outcome"] == "timed-out"
        assert [result.tasks[n]["outcome"] for n in range(2, 13)] == ["completed"] * 11
        lived = died - float(started.read_text(encoding="utf-8"))
        # SIGTERM is ignored, so it lives through the grace period, and not a second one.
        assert timeout + grace - 0.5 < lived < timeout + grace + 1.0, lived
        assert ws.timeline().ends[12] > died

    def test_executor_ignoring_sigterm_is_killed(self, ws: Workspace) -> None:
        """An executor that ignores SIGTERM itself is killed with SIGKILL after the grace period."""
        ws.write([Spec(1)])
        pids = ws.root / "pids"
        command = f'trap "" TERM; echo $$ >> {shlex.quote(str(pids))}; sleep 60 & wait'
        try:
            result = ws.run("1", "--timeout", "0.5", "--grace", "0.5", executor=command)
        finally:
            kill_quietly(p for p in read_pids(pids) if not process_gone(p))
        assert result.code == 1, result.err
        assert result.tasks[1]["outcome"] == "timed-out"
        assert result.tasks[1]["exit_code"] == -9
        assert all_gone(read_pids(pids))


# 200 000 lines of 1000 bytes: 200 MB of output.
BIG_OUTPUT = "yes \"$(printf '%0999d' 7)\" | head -c 200000000"
MAX_RSS_KB = 150 * 1024


def peak_rss_kb(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, int, str]:
    """Run ``args`` with stdout to /dev/null: (exit code, peak RSS in KiB, stderr)."""
    time_bin = shutil.which("time")
    if time_bin:
        proc = subprocess.run(
            [time_bin, "-v", *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            timeout=300,
            check=False,
        )
        match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
        assert match is not None, proc.stderr[-2000:]
        return proc.returncode, int(match[1]), proc.stderr
    wrapper = (
        "import resource, subprocess, sys\n"
        "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode\n"
        "print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", wrapper, *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=300,
        check=False,
    )
    code, rss = proc.stderr.strip().splitlines()[-1].split()
    return int(code), int(rss), proc.stderr


class TestOutputVolume:
    @pytest.mark.slow
    @pytest.mark.parametrize("mode", ["--no-stream", "--stream"])
    def test_huge_output_neither_deadlocks_nor_grows_memory(self, ws: Workspace, mode: str) -> None:
        """200 MB of executor output completes, keeps the run's memory small and the tail short."""
        ws.write([Spec(1)])
        code, rss_kb, err = peak_rss_kb(
            ws.args("1", mode, executor=BIG_OUTPUT), ws.repo, ws.full_env()
        )
        try:
            assert code == 0, err[-3000:]
            assert rss_kb < MAX_RSS_KB, f"peak RSS {rss_kb} KiB"
            summary = json.loads(ws.summary_json.read_text(encoding="utf-8"))
            (task,) = summary["tasks"]
            assert task["outcome"] == "completed"
            assert 0 < len(task["log_tail"]) <= 50
            assert all(line == "0" * 998 + "7" for line in task["log_tail"])
            assert Path(task["log_path"]).stat().st_size == 200_000_000
        finally:
            shutil.rmtree(ws.log_dir, ignore_errors=True)


def result_run(ws: Workspace, documents: dict[int, str], **codes: int) -> Any:
    """Run tasks 1..N where task n writes ``documents[n]`` as its result file."""
    env = {f"PROBE_RESULT_{n}": text for n, text in documents.items()}
    env.update({f"PROBE_EXIT_{name.lstrip('t')}": str(code) for name, code in codes.items()})
    return ws.run(f"1-{max(documents)}", env=env)


class TestResultProtocol:
    def test_in_progress_keeps_status_and_blocks_dependents(self, ws: Workspace) -> None:
        """``in-progress`` keeps the task [IN PROGRESS] and blocks the tasks that depend on it."""
        ws.write([Spec(1), Spec(2, deps="Task 1"), Spec(3)])
        result = ws.run(
            "1-3",
            env={
                "PROBE_RESULT_1": json.dumps({"status": "in-progress", "summary": "plan written"})
            },
        )
        assert result.code == 1, result.err
        assert result.outcomes() == {1: "in-progress", 2: "blocked", 3: "completed"}
        assert result.tasks[1]["reason"] == "plan written"
        assert result.tasks[2]["blocked_by"] == [1]
        assert result.tasks[2]["reason"] == "waits for task 1, still in progress"
        fields = result.fields(1)
        assert fields["Status"] == "[IN PROGRESS]"
        assert "Completed" not in fields
        assert result.fields(2)["Status"] == "[BLOCKED]"
        assert set(ws.timeline().starts) == {1, 3}

    def test_in_progress_alone_is_success(self, ws: Workspace) -> None:
        """A run whose tasks complete or report in-progress exits 0."""
        ws.write([Spec(1), Spec(2)])
        result = ws.run("1-2", env={"PROBE_RESULT_1": '{"status": "in-progress"}'})
        assert result.code == 0, result.err
        assert result.outcomes() == {1: "in-progress", 2: "completed"}
        assert result.summary is not None
        assert result.summary["result"] == "success"

    @pytest.mark.parametrize(
        ("document", "reason"),
        [
            ("this is not json", "malformed result file: not JSON"),
            (
                '{"status": "done"}',
                "malformed result file: status 'done' is not completed, in-progress or failed",
            ),
            ('["completed"]', "malformed result file: expected a JSON object"),
            (
                '{"status": "completed", "summary": 3}',
                "malformed result file: summary must be text",
            ),
        ],
        ids=["not-json", "wrong-status", "not-object", "summary-not-text"],
    )
    def test_malformed_result_fails_the_task(
        self, ws: Workspace, document: str, reason: str
    ) -> None:
        """A result file that is not a valid result document fails the task with a clear reason."""
        ws.write([Spec(1)])
        result = ws.run("1", env={"PROBE_RESULT_1": document})
        assert result.code == 1, result.err
        task = result.tasks[1]
        assert task["outcome"] == "failed"
        assert task["exit_code"] == 0
        assert task["reason"].startswith(reason)
        assert result.fields(1)["Failure Reason"].startswith(reason)

    def test_exit_zero_with_failed_result_is_failed(self, ws: Workspace) -> None:
        """Exit 0 with ``{"status": "failed"}`` is a failure, with the executor's summary."""
        ws.write([Spec(1)])
        document = json.dumps({"status": "failed", "summary": "tests broke"})
        result = ws.run("1", env={"PROBE_RESULT_1": document})
        assert result.code == 1, result.err
        assert result.tasks[1]["outcome"] == "failed"
        assert result.tasks[1]["reason"] == "the executor reported failure: tests broke"

    def test_nonzero_exit_wins_over_completed_result(self, ws: Workspace) -> None:
        """A non-zero exit fails the task even when the result file claims completion."""
        ws.write([Spec(1)])
        document = json.dumps({"status": "completed", "summary": "looked fine"})
        result = ws.run("1", env={"PROBE_RESULT_1": document, "PROBE_EXIT_1": "2"})
        assert result.tasks[1]["outcome"] == "failed"
        assert result.tasks[1]["reason"] == "exit code 2: looked fine"

    def test_completed_result_summary_is_the_reason(self, ws: Workspace) -> None:
        """``completed`` with a summary completes the task and keeps the summary as its note."""
        ws.write([Spec(1)])
        document = json.dumps({"status": "completed", "summary": "all green"})
        result = ws.run("1", env={"PROBE_RESULT_1": document})
        assert result.code == 0, result.err
        assert result.tasks[1]["outcome"] == "completed"
        assert result.tasks[1]["reason"] == "all green"


ENV_SCRIPT = """\
import json, os, sys
from pathlib import Path

number = os.environ["BATCH_TASK_NUMBER"]
record = {
    "env": dict(os.environ),
    "cwd": os.getcwd(),
    "argv": sys.argv[1:],
    "task_file": json.loads(Path(os.environ["BATCH_TASK_FILE"]).read_text(encoding="utf-8")),
    "result_file_exists": Path(os.environ["BATCH_RESULT_FILE"]).exists(),
}
out = Path(os.environ["PROBE_OUT"]) / f"env-{number}.json"
out.write_text(json.dumps(record), encoding="utf-8")
"""
NASTY_TITLE = 'Run $(touch pwned) and `touch pwned2`; echo {title} "quoted" ünïcode 🚀'
PARENT_SECRETS = {
    "INPUT_TASKS": "1-3",
    "INPUT_GITHUB-TOKEN": "input-token-value",
    "INPUT_EXECUTOR": "echo hi",
    "GITHUB_TOKEN": "ghs_parenttoken",
    "GH_TOKEN": "gh-parent-token",
}


class TestEnvironment:
    @pytest.fixture
    def records(self, tmp_path: Path) -> tuple[Workspace, dict[int, dict[str, Any]]]:
        """Run tasks 1-3 from a subdirectory of a git repository with an env-recording executor."""
        ws = make_workspace(tmp_path, git=True)
        ws.write(
            [
                Spec(1, title=NASTY_TITLE, body="**Description**: the body of task one"),
                Spec(2, deps="Task 1"),
                Spec(3, deps="Task 1, Task 2"),
            ]
        )
        script = tmp_path / "record_env.py"
        script.write_text(ENV_SCRIPT, encoding="utf-8")
        out = tmp_path / "records"
        out.mkdir()
        sub = ws.repo / "sub" / "dir"
        sub.mkdir(parents=True)
        command = f"{shlex.quote(sys.executable)} {shlex.quote(str(script))} {{number}} '{{title}}'"
        env = {**PARENT_SECRETS, "PROBE_OUT": str(out), "KEEP_ME": "kept"}
        proc = subprocess.run(
            [*ws.args("1-3", "--todo", str(ws.todo), executor=command)],
            cwd=sub,
            env={**clean_env(), **env},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        records = {
            n: json.loads((out / f"env-{n}.json").read_text(encoding="utf-8")) for n in (1, 2, 3)
        }
        return ws, records

    def test_batch_variables(self, records: tuple[Workspace, dict[int, dict[str, Any]]]) -> None:
        """Every BATCH_* variable is set to the task's number, title, wave, deps and paths."""
        ws, by_task = records
        env1, env2, env3 = (by_task[n]["env"] for n in (1, 2, 3))
        assert env1["BATCH_TASK_NUMBER"] == "1"
        assert env1["BATCH_TASK_TITLE"] == NASTY_TITLE
        assert env2["BATCH_TASK_TITLE"] == "Task number 2"
        assert [env["BATCH_TASK_WAVE"] for env in (env1, env2, env3)] == ["1", "2", "3"]
        assert env1["BATCH_TASK_DEPENDENCIES"] == ""
        assert env2["BATCH_TASK_DEPENDENCIES"] == "1"
        assert env3["BATCH_TASK_DEPENDENCIES"] == "1,2"
        for env in (env1, env2, env3):
            assert Path(env["BATCH_TODO_PATH"]) == ws.todo.resolve()
            assert Path(env["BATCH_TASK_FILE"]).name == f"task-{env['BATCH_TASK_NUMBER']}.json"
            assert Path(env["BATCH_RESULT_FILE"]).name == (
                f"result-{env['BATCH_TASK_NUMBER']}.json"
            )
        assert not any(record["result_file_exists"] for record in by_task.values())

    def test_task_file_holds_the_task(
        self, records: tuple[Workspace, dict[int, dict[str, Any]]]
    ) -> None:
        """BATCH_TASK_FILE is JSON with the task's number, title, dependencies and whole body."""
        _, by_task = records
        document = by_task[1]["task_file"]
        assert document["number"] == 1
        assert document["title"] == NASTY_TITLE
        assert document["dependencies"] == []
        assert document["body"].startswith(f"### 1. {NASTY_TITLE}\n")
        assert "**Description**: the body of task one" in document["body"]
        assert "### 2." not in document["body"]
        assert by_task[3]["task_file"]["dependencies"] == [1, 2]

    def test_inputs_and_tokens_are_removed(
        self, records: tuple[Workspace, dict[int, dict[str, Any]]]
    ) -> None:
        """INPUT_* variables and GitHub tokens set in the parent never reach the executor."""
        _, by_task = records
        for record in by_task.values():
            env = record["env"]
            assert not [key for key in env if key.upper().startswith("INPUT_")]
            assert "GITHUB_TOKEN" not in env
            assert "GH_TOKEN" not in env
            assert not set(env.values()) & set(PARENT_SECRETS.values())
            assert env["KEEP_ME"] == "kept"

    def test_only_number_is_substituted(
        self, records: tuple[Workspace, dict[int, dict[str, Any]]]
    ) -> None:
        """Only ``{number}`` is replaced in the command; title text is never executed."""
        ws, by_task = records
        assert by_task[1]["argv"] == ["1", "{title}"]
        assert by_task[3]["argv"] == ["3", "{title}"]
        leftovers = list(ws.root.rglob("pwned*"))
        assert leftovers == []

    def test_cwd_is_the_repository_root(
        self, records: tuple[Workspace, dict[int, dict[str, Any]]]
    ) -> None:
        """Executors run in the git top-level directory, not where batchaction was started."""
        ws, by_task = records
        for record in by_task.values():
            assert Path(record["cwd"]).resolve() == ws.repo.resolve()


class TestReadResult:
    def test_absent_or_empty_file_means_no_result(self, tmp_path: Path) -> None:
        """No result file, or an empty one, reports nothing."""
        assert executor.read_result(tmp_path / "missing.json") == (None, None, None)
        empty = tmp_path / "empty.json"
        empty.write_text("  \n", encoding="utf-8")
        assert executor.read_result(empty) == (None, None, None)

    def test_oversized_file_is_malformed(self, tmp_path: Path) -> None:
        """A result file over 1 MiB is refused without being parsed."""
        path = tmp_path / "big.json"
        path.write_text('{"status": "completed", "summary": "' + "x" * (1 << 20) + '"}')
        status, _, problem = executor.read_result(path)
        assert status is None
        assert problem == "malformed result file: larger than 1 MiB"

    def test_valid_document(self, tmp_path: Path) -> None:
        """A well-formed document yields its status and summary."""
        path = tmp_path / "ok.json"
        path.write_text('{"status": "in-progress", "summary": "half way", "extra": 1}')
        assert executor.read_result(path) == ("in-progress", "half way", None)


class TestReadTail:
    def test_tail_is_bounded(self, tmp_path: Path) -> None:
        """The log tail is at most 50 lines, the last ones, each cut to 1000 characters."""
        path = tmp_path / "log"
        path.write_text("".join(f"line {n}\n" for n in range(500)) + "y" * 5000 + "\n")
        tail = executor.read_tail(path)
        assert len(tail) == 50
        assert tail[-2] == "line 499"
        assert tail[-1] == "y" * 1000

    def test_missing_log_has_no_tail(self, tmp_path: Path) -> None:
        """A log that was never written has an empty tail."""
        assert executor.read_tail(tmp_path / "none") == []


class TestCommand:
    def test_number_is_the_only_substitution(self) -> None:
        """``{number}`` becomes digits; other braces stay as they are."""
        assert executor.command_for("run {number} {title} {{number}}", 7) == "run 7 {title} {7}"


class TestRepositoryRoot:
    """The executors' working directory agrees with ``git rev-parse --show-toplevel``."""

    @staticmethod
    def git_toplevel(cwd: Path) -> Path | None:
        out = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=False,
        )
        return Path(out.stdout.strip()) if out.returncode == 0 else None

    def test_nested_directory_of_a_clone(self, tmp_path: Path) -> None:
        repo = tmp_path / "repo"
        deep = repo / "a" / "b"
        deep.mkdir(parents=True)
        subprocess.run(["git", "init", "-q", str(repo)], check=True)
        assert repository_root(deep) == repo == self.git_toplevel(deep)

    def test_linked_worktree_has_a_git_file(self, tmp_path: Path) -> None:
        repo = tmp_path / "repo"
        subprocess.run(["git", "init", "-q", str(repo)], check=True)
        git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
        subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "x"], check=True)
        linked = tmp_path / "linked"
        subprocess.run([*git, "worktree", "add", "-q", str(linked)], check=True)
        (linked / "sub").mkdir()
        assert (linked / ".git").is_file()
        found = repository_root(linked / "sub")
        assert found == linked == self.git_toplevel(linked / "sub")

    def test_outside_git_is_the_start(self, tmp_path: Path) -> None:
        start = tmp_path / "plain"
        start.mkdir()
        if self.git_toplevel(start) is not None:
            pytest.skip("the temporary directory is inside a git work tree")
        assert repository_root(start) == start

    def test_git_work_tree_in_the_environment_is_asked_of_git(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        repo = tmp_path / "repo"
        subprocess.run(["git", "init", "-q", str(repo)], check=True)
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        monkeypatch.setenv("GIT_DIR", str(repo / ".git"))
        monkeypatch.setenv("GIT_WORK_TREE", str(repo))
        assert repository_root(elsewhere) == repo
