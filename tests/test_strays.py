"""No process outlives its task: what an executor leaves running (a ``setsid`` daemon, a double
fork, agent.sh's build server) is killed when *its* task ends, while other tasks still run, and
the summary names it; executors and their daemons die with a SIGKILLed batchaction; exit codes
and deaths by signal pass through the per-task supervisor unchanged. Real processes throughout:
``batchaction run`` as a subprocess, processes found in ``/proc``."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from runhelpers import (
    Spec,
    Workspace,
    clean_env,
    kill_quietly,
    make_workspace,
    process_gone,
    read_pids,
    wait_for,
)

AGENT = Path(__file__).resolve().parent / "fixtures" / "executors" / "agent.sh"


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return make_workspace(tmp_path)


@pytest.fixture
def mark() -> str:
    """A word no other process on the machine carries."""
    return f"stray-mark-{os.getpid()}-{time.monotonic_ns()}"


def marked(mark: str) -> list[int]:
    """Live processes (not zombies) with ``mark`` in their command line or environment."""
    needle = mark.encode()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            seen = Path(f"/proc/{name}/cmdline").read_bytes()
            seen += Path(f"/proc/{name}/environ").read_bytes()
            if needle in seen and not process_gone(int(name)):
                found.append(int(name))
    return found


def daemon(style: str, pidfile: Path, mark: str) -> str:
    """Shell that leaves a daemon behind which sleeps forever, with an empty environment (so no
    ``BATCH_RUN_TOKEN`` either) and ``mark`` as its ``$0``; its pid goes to ``pidfile``. The
    shell then waits until the daemon is up."""
    body = shlex.quote(f"echo $$ >> {shlex.quote(str(pidfile))}; while :; do sleep 1; done")
    started = f"env -i /bin/sh -c {body} {mark} </dev/null >/dev/null 2>&1"
    leave = {
        "setsid": f"setsid {started} &",  # a new session; a child of the executor until it ends
        "daemon": f"( setsid {started} & );",  # daemon(3): fork, setsid, fork; an orphan at once
        "double-fork": f"( {started} & );",  # an orphan, still in the executor's group
    }[style]
    return f"{leave} while [ ! -s {shlex.quote(str(pidfile))} ]; do sleep 0.02; done"


def cleanup(mark: str, *pidfiles: Path) -> None:
    pids = [pid for path in pidfiles for pid in read_pids(path)]
    kill_quietly([*pids, *marked(mark)])


class TestStraysDieWithTheirTask:
    @pytest.mark.parametrize("style", ["setsid", "daemon"])
    @pytest.mark.parametrize(
        ("ending", "expected"),
        [("exit 0", ("completed", 0)), ("exit 3", ("failed", 3)), ("sleep 60", ("timed-out", -15))],
    )
    def test_a_daemon_is_killed_when_its_task_ends_not_at_the_end_of_the_run(
        self, ws: Workspace, mark: str, style: str, ending: str, expected: tuple[str, int]
    ) -> None:
        """Task 1 leaves a daemon that dropped its environment, then succeeds, fails or times
        out; tasks 2-6 keep the run busy for seconds after. The daemon is gone before the last
        of them ends, and the summary names it under task 1 (pid and command line)."""
        ws.write([Spec(n) for n in range(1, 7)])
        pidfile = ws.root / "daemon.pid"
        command = (
            f"case {{number}} in 1) {daemon(style, pidfile, mark)}; {ending};; "
            f"*) exec {ws.probe_command()};; esac"
        )
        proc = ws.start(
            "1-6", "--max-parallel", "2", "--timeout", "3", "--grace", "1",
            executor=command, env={"PROBE_SLEEP": "1.2"},
        )  # fmt: skip
        try:
            assert wait_for(lambda: bool(read_pids(pidfile)), timeout=30)
            (pid,) = read_pids(pidfile)
            assert wait_for(lambda: process_gone(pid), timeout=15, interval=0.01), (
                f"the daemon of task 1 still runs: {marked(mark)}"
            )
            died = time.time()
            result = ws.finish(proc)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            cleanup(mark, pidfile)
        assert result.code == (0 if expected[0] == "completed" else 1), result.err
        task = result.tasks[1]
        assert (task["outcome"], task["exit_code"]) == expected
        assert max(ws.timeline().ends.values()) > died  # killed while the run went on
        # The daemon, and maybe the `sleep 1` it had running.
        strays = {s["pid"]: s["command"] for s in task["strays"]}
        assert mark in strays.get(pid, ""), task["strays"]
        assert all(result.tasks[n]["strays"] == [] for n in range(2, 7))
        markdown = ws.summary_md.read_text(encoding="utf-8")
        assert "left running by their task, killed when it ended" in markdown
        assert f"(pid {pid})" in markdown

    @pytest.mark.parametrize(("isolation", "selection"), [("worktree", "1-3"), ("none", "1")])
    def test_agent_daemons_are_killed_and_listed(
        self, tmp_path: Path, mark: str, isolation: str, selection: str
    ) -> None:
        """agent.sh with AGENT_DAEMON=1 leaves ``setsid sleep 300``: each one is killed when
        its task ends and listed under that task."""
        repo = tmp_path / "repo"
        repo.mkdir()
        for args in (
            ["init", "-q", "-b", "main"],
            ["config", "user.name", "Maintainer"],
            ["config", "user.email", "maintainer@example.invalid"],
        ):
            subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)
        (repo / "TODO.md").write_text(
            "# TODO\n\n"
            + "".join(f"### {n}. Task {n}\n- **Status**: [NOT STARTED]\n\n" for n in (1, 2, 3))
        )
        subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
        subprocess.run(["git", "commit", "-qm", "init"], cwd=repo, check=True)
        summary = tmp_path / "summary.json"
        env = clean_env({"AGENT_DAEMON": "1", "AGENT_SLEEP": "0.15", "AGENT_TEST_MARK": mark})
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "batchaction", "run", selection, "--executor",
                 f"{shlex.quote(str(AGENT))} {{number}}", "--isolation", isolation,
                 "--summary-json", str(summary), "--grace", "1"],
                cwd=repo, env=env, capture_output=True, text=True, timeout=120, check=False,
            )  # fmt: skip
            assert proc.returncode == 0, proc.stderr
            assert wait_for(lambda: not marked(mark), timeout=10), marked(mark)
        finally:
            cleanup(mark)
        tasks = json.loads(summary.read_text())["tasks"]
        assert len(tasks) == (3 if selection == "1-3" else 1)
        for task in tasks:
            assert [s["command"] for s in task["strays"]] == ["sleep 300"], task


class TestExecutorsDieWithBatchaction:
    def test_sigkill_of_batchaction_leaves_no_executor_or_daemon(
        self, ws: Workspace, mark: str
    ) -> None:
        """Three tasks each leave a daemon and then sleep; batchaction is SIGKILLed. Every
        supervisor gets its parent-death signal and kills its task: executors, daemons and
        supervisors are all gone within seconds (none is left for the next run to find)."""
        ws.write([Spec(n) for n in (1, 2, 3)])
        pids = ws.root / "daemons.pid"
        leave = daemon("setsid", ws.root / "daemon-{number}.pid", mark)
        command = f"{leave}; echo $$ >> {shlex.quote(str(pids))}; sleep 600"
        proc = ws.start("1-3", "--grace", "1", executor=command, env={"STRAY_TEST_MARK": mark})
        pidfiles = [ws.root / f"daemon-{n}.pid" for n in (1, 2, 3)]
        try:
            assert wait_for(lambda: len(read_pids(pids)) == 3, timeout=30), ws.root / "run.err"
            executors = read_pids(pids)
            daemons = [pid for path in pidfiles for pid in read_pids(path)]
            assert len(daemons) == 3
            assert len(marked(mark)) >= 9  # supervisors, executors (and their sleeps), daemons
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            assert wait_for(lambda: not marked(mark), timeout=15), marked(mark)
            assert all(process_gone(pid) for pid in executors + daemons)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            cleanup(mark, pids, *pidfiles)

    def test_a_task_that_kills_its_supervisor_leaves_nothing_behind(
        self, ws: Workspace, mark: str
    ) -> None:
        """An executor that SIGKILLs its parent (its supervisor) fails the task; its group and
        the daemon it left (which kept ``BATCH_RUN_TOKEN``) are still stopped."""
        ws.write([Spec(1)])
        command = "setsid sleep 300 & kill -9 $PPID; sleep 300"
        try:
            result = ws.run(
                "1", "--grace", "1", executor=command, env={"STRAY_TEST_MARK": mark}, timeout=60
            )
            assert wait_for(lambda: not marked(mark), timeout=10), marked(mark)
        finally:
            cleanup(mark)
        assert result.tasks[1]["outcome"] == "failed", result.err
        assert result.tasks[1]["reason"] == "killed by SIGKILL"


EXITS = (
    ("exit 7", 7, "exit code 7"),
    ("exit 137", 137, "exit code 137"),
    ("kill -TERM $$", -15, "killed by SIGTERM"),
    ("kill -KILL $$", -9, "killed by SIGKILL"),
    ("kill -USR1 $$", -10, "killed by SIGUSR1"),
    ("kill -INT $$", -2, "killed by SIGINT"),
)


class TestExitStatusPassesThrough:
    def test_exit_codes_and_signals_are_the_executors(self, ws: Workspace) -> None:
        """Exit 137 and death by SIGKILL stay distinct; SIGUSR1 (what the supervisor takes as
        a kill request) and SIGINT kill the executor, not the supervisor's judgement."""
        ws.write([Spec(n) for n in range(1, len(EXITS) + 1)])
        arms = " ".join(f"{n}) {shell};;" for n, (shell, _, _) in enumerate(EXITS, 1))
        result = ws.run("1-6", executor=f"case {{number}} in {arms} esac")
        assert result.code == 1, result.err
        for number, (_, code, reason) in enumerate(EXITS, 1):
            task = result.tasks[number]
            assert (task["exit_code"], task["reason"]) == (code, reason), task
            assert task["strays"] == []

    def test_exit_code_survives_a_stray(self, ws: Workspace, mark: str) -> None:
        """The executor exits 5 after leaving a daemon: the task fails with exit code 5, and
        the daemon is listed."""
        ws.write([Spec(1)])
        pidfile = ws.root / "daemon.pid"
        try:
            result = ws.run(
                "1", "--grace", "1", executor=f"{daemon('double-fork', pidfile, mark)}; exit 5"
            )
        finally:
            cleanup(mark, pidfile)
        task = result.tasks[1]
        assert (task["exit_code"], task["reason"]) == (5, "exit code 5"), result.err
        assert read_pids(pidfile)[0] in [s["pid"] for s in task["strays"]], task["strays"]


class TestTheExecutorSeesWhatItWasGiven:
    def test_environment_and_file_descriptors_are_unchanged(self, ws: Workspace) -> None:
        """Without LANG and LC_* (and batchaction told not to), the supervisor's Python would
        set LC_CTYPE (PEP 538): the executor does not see it. The supervisor's report (a
        memfd) is not among its open descriptors."""
        ws.write([Spec(1)])
        env_file, fds_file = ws.root / "env.txt", ws.root / "fds.txt"
        command = f"env > {env_file}; ls -l /proc/$$/fd/ > {fds_file}"
        env = {
            k: v
            for k, v in clean_env().items()
            if k != "LANG" and not k.startswith("LC_") and not k.startswith("PYTHON")
        } | {"PYTHONCOERCECLOCALE": "0"}
        proc = subprocess.run(
            ws.args("1", executor=command), cwd=ws.repo, env=env, capture_output=True,
            text=True, timeout=60, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        names = {line.split("=", 1)[0] for line in env_file.read_text().splitlines()}
        assert not {n for n in names if n.startswith("LC_") or n == "LANG"}, names
        assert {"PATH", "BATCH_TASK_NUMBER", "BATCH_RUN_TOKEN"} <= names
        fds = fds_file.read_text()
        assert " 0 -> /dev/null" in fds
        assert "memfd" not in fds, fds
