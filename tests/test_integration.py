"""Integration of task commits onto a private ref (real git, no work tree touched)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from batchaction.integration import IntegrationRef

REF = "refs/batchaction/test/tip"
COMMITTER = {"GIT_COMMITTER_NAME": "batchaction", "GIT_COMMITTER_EMAIL": "ba@example.com"}


def git(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    full = {**os.environ, **COMMITTER, **(env or {})}
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True, env=full
    ).stdout.strip()


def commit(repo: Path, files: dict[str, str], message: str, author: str = "agent") -> str:
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text, encoding="utf-8")
    git(repo, "add", "-A")
    env = {"GIT_AUTHOR_NAME": author, "GIT_AUTHOR_EMAIL": f"{author}@example.com"}
    git(repo, "commit", "-q", "-m", message, env=env)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    commit(root, {"a.txt": "a1\na2\na3\n", "b.txt": "b\n", "TODO.md": "# TODO\n"}, "base")
    return root


def branch_from(repo: Path, start: str, name: str) -> None:
    git(repo, "checkout", "-q", "-B", name, start)


def files_at(repo: Path, rev: str) -> dict[str, str]:
    names = git(repo, "ls-tree", "-r", "--name-only", rev).split()
    return {n: git(repo, "show", f"{rev}:{n}") for n in names}


class TestReplay:
    def test_two_tasks_replay_linearly_with_authors_and_messages(self, repo: Path) -> None:
        start = git(repo, "rev-parse", "HEAD")
        ref = IntegrationRef(repo, REF, start, strip=["TODO.md"], committer=COMMITTER)
        branch_from(repo, start, "t1")
        commit(repo, {"a.txt": "A1\na2\na3\n"}, "task 1: first", author="agent1")
        head1 = commit(repo, {"one.txt": "1\n"}, "task 1: second", author="agent1")
        branch_from(repo, start, "t2")
        head2 = commit(repo, {"a.txt": "a1\na2\nA3\n", "b.txt": "B\n"}, "task 2", author="agent2")
        first = ref.integrate(1, "One", start, head1)
        second = ref.integrate(2, "Two", start, head2)
        assert first.ok
        assert second.ok
        assert len(first.commits) == 2
        assert len(second.commits) == 1
        log = git(repo, "log", "--format=%an|%s|%P", REF).splitlines()
        assert [line.split("|")[:2] for line in log] == [
            ["agent2", "task 2"],
            ["agent1", "task 1: second"],
            ["agent1", "task 1: first"],
            ["agent", "base"],
        ]
        assert all(len(line.split("|")[2].split()) == 1 for line in log[:-1])  # linear
        assert files_at(repo, REF)["a.txt"] == "A1\na2\nA3"
        assert git(repo, "rev-parse", REF) == second.tip == ref.tip

    def test_conflict_names_the_files_and_leaves_the_tip(self, repo: Path) -> None:
        start = git(repo, "rev-parse", "HEAD")
        ref = IntegrationRef(repo, REF, start, committer=COMMITTER)
        branch_from(repo, start, "t1")
        head1 = commit(repo, {"a.txt": "edited by task 1\na2\na3\n"}, "task 1")
        branch_from(repo, start, "t2")
        head2 = commit(repo, {"a.txt": "edited by task 2\na2\na3\n", "c.txt": "c\n"}, "task 2")
        assert ref.integrate(1, "One", start, head1).ok
        tip = ref.tip
        result = ref.integrate(2, "Two", start, head2)
        assert not result.ok
        assert result.conflicts == ("a.txt",)
        assert ref.tip == tip == git(repo, "rev-parse", REF)

    def test_todo_edits_are_stripped_and_empty_commits_dropped(self, repo: Path) -> None:
        start = git(repo, "rev-parse", "HEAD")
        ref = IntegrationRef(repo, REF, start, strip=["TODO.md", "TODO.md.lock"], committer={})
        branch_from(repo, start, "t1")
        commit(repo, {"TODO.md": "# TODO\n- **Status**: [RESEARCHED]\n"}, "only the todo")
        head = commit(repo, {"TODO.md.lock": "", "work.txt": "w\n"}, "work and lock")
        result = ref.integrate(1, "One", start, head)
        assert result.ok
        assert len(result.commits) == 1
        files = files_at(repo, REF)
        assert files["TODO.md"] == "# TODO"
        assert "TODO.md.lock" not in files
        assert files["work.txt"] == "w"

    def test_history_with_merges_is_squashed_author_kept(self, repo: Path) -> None:
        start = git(repo, "rev-parse", "HEAD")
        ref = IntegrationRef(repo, REF, start, committer=COMMITTER)
        branch_from(repo, start, "side")
        commit(repo, {"side.txt": "s\n"}, "side work", author="agent7")
        branch_from(repo, start, "t7")
        commit(repo, {"main.txt": "m\n"}, "main work", author="agent7")
        git(repo, "merge", "-q", "--no-edit", "side", env={"GIT_AUTHOR_NAME": "agent7"})
        head = git(repo, "rev-parse", "HEAD")
        result = ref.integrate(7, "Seven", start, head)
        assert result.ok
        assert len(result.commits) == 1
        message = git(repo, "log", "-1", "--format=%an|%B", REF)
        assert message.startswith("agent7|task 7: Seven")
        assert "side work" in message
        assert "main work" in message
        assert {"side.txt", "main.txt"} <= set(files_at(repo, REF))

    def test_nothing_to_integrate(self, repo: Path) -> None:
        start = git(repo, "rev-parse", "HEAD")
        ref = IntegrationRef(repo, REF, start)
        assert ref.integrate(1, "One", start, start).commits == ()
        ref.delete()
        found = subprocess.run(["git", "rev-parse", "--verify", "-q", REF], cwd=repo, check=False)
        assert found.returncode != 0
