"""``batchaction status set`` writes any status, idempotently, and drops fields that no longer
hold; ``--todo`` and the configuration are found from the repository root (real processes)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

RunCli = Callable[..., tuple[int, str, str]]

BRACKETED = (
    "# TODO\n\n### 1. One\n- **Status**: [NOT STARTED]\n- **Effort**: 1 hour\n\n"
    "### 2. Two\n- **Status**: [COMPLETED]\n- **Completed**: 2026-01-01\n"
)
PLAIN = (
    "# TODO\n\n### 1. One\n**Status**: Not Started\n**Effort**: 1 hour\n\n"
    "### 2. Two\n**Status**: Done\n"
)


def read(path: Path) -> str:
    with path.open(encoding="utf-8", newline="") as handle:
        return handle.read()


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write(text)
    return path


def section(text: str, number: int) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"### {number}."))
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("#")), len(lines))
    return lines[start:end]


class TestAnyStatus:
    @pytest.mark.parametrize(
        ("word", "bracketed", "plain"),
        [
            ("planned", "[PLANNED]", "Planned"),
            ("researched", "[RESEARCHED]", "Researched"),
            ("[ON HOLD]", "[ON HOLD]", "On Hold"),
            ("on-hold", "[ON HOLD]", "On Hold"),
        ],
    )
    def test_other_words_follow_the_file_style(
        self, cli: RunCli, tmp_path: Path, word: str, bracketed: str, plain: str
    ) -> None:
        for text, expected in ((BRACKETED, bracketed), (PLAIN, plain)):
            todo = write(tmp_path / "TODO.md", text)
            code, _, err = cli("status", "set", "1", word, cwd=tmp_path)
            assert code == 0, err
            status_line = next(line for line in section(read(todo), 1) if "Status" in line)
            assert status_line.endswith(f"**: {expected}")
            assert len(read(todo).splitlines()) == len(text.splitlines())

    def test_five_outcomes_keep_their_meaning(self, cli: RunCli, tmp_path: Path) -> None:
        todo = write(tmp_path / "TODO.md", BRACKETED)
        assert cli("status", "set", "1", "in-progress", cwd=tmp_path)[0] == 0
        assert "- **Status**: [IN PROGRESS]" in section(read(todo), 1)
        assert any(line.startswith("- **Started**: ") for line in section(read(todo), 1))

    @pytest.mark.parametrize("word", ["", "two\nlines", "x" * 101, "***"])
    def test_unwritable_words_are_refused(self, cli: RunCli, tmp_path: Path, word: str) -> None:
        todo = write(tmp_path / "TODO.md", BRACKETED)
        code, out, err = cli("status", "set", "1", word, cwd=tmp_path)
        assert code == 2, (out, err)
        assert "invalid status" in err
        assert "Traceback" not in err
        assert read(todo) == BRACKETED


class TestIdempotent:
    @pytest.mark.parametrize("word", ["completed", "failed", "blocked", "in-progress", "planned"])
    def test_setting_twice_changes_nothing_more(
        self, cli: RunCli, tmp_path: Path, word: str
    ) -> None:
        todo = write(tmp_path / "TODO.md", BRACKETED)
        assert cli("status", "set", "1", word, "--reason", "r", cwd=tmp_path)[0] == 0
        once = read(todo)
        assert cli("status", "set", "1", word, "--reason", "r", cwd=tmp_path)[0] == 0
        assert read(todo) == once


class TestStaleFields:
    FAILED = (
        "### 5. Task\n- **Status**: [FAILED]\n- **Started**: 2026-01-01\n"
        "- **Failed**: 2026-01-02\n- **Failure Reason**: exit 1\n- **Effort**: 2 hours\n"
    )
    BLOCKED = (
        "### 5. Task\n- **Status**: [BLOCKED]\n- **Blocked**: 2026-01-02\n"
        "- **Blocking Reason**: blocked by failed task 4\n- **Effort**: 2 hours\n"
    )

    def test_completing_removes_failed_and_failure_reason(
        self, cli: RunCli, tmp_path: Path
    ) -> None:
        todo = write(tmp_path / "TODO.md", self.FAILED)
        assert cli("status", "set", "5", "completed", cwd=tmp_path)[0] == 0
        lines = section(read(todo), 5)
        assert not any("Failed" in line or "Failure Reason" in line for line in lines)
        assert "- **Started**: 2026-01-01" in lines
        assert "- **Effort**: 2 hours" in lines
        assert any(line.startswith("- **Completed**: ") for line in lines)

    def test_running_again_removes_the_blocking_reason(self, cli: RunCli, tmp_path: Path) -> None:
        todo = write(tmp_path / "TODO.md", self.BLOCKED)
        assert cli("status", "set", "5", "in-progress", cwd=tmp_path)[0] == 0
        lines = section(read(todo), 5)
        assert not any("Blocking Reason" in line or "Blocked" in line for line in lines)
        assert "- **Effort**: 2 hours" in lines

    def test_a_blocked_line_written_by_a_person_stays(self, cli: RunCli, tmp_path: Path) -> None:
        """``Blocked: Task 887 completed with sorries`` (ProofChecker 84be697) is not a date the
        tool wrote: it is kept."""
        text = self.BLOCKED.replace("2026-01-02", "Task 887 completed with sorries")
        todo = write(tmp_path / "TODO.md", text)
        assert cli("status", "set", "5", "completed", cwd=tmp_path)[0] == 0
        assert "- **Blocked**: Task 887 completed with sorries" in section(read(todo), 5)


class TestLineBreaks:
    def test_new_lines_copy_the_two_space_break(self, cli: RunCli, tmp_path: Path) -> None:
        """Fields ending in two spaces (a Markdown line break) get new siblings that do too,
        so GitHub does not run them into one paragraph."""
        text = "### 5. Task\n**Status**: [NOT STARTED]  \n**Effort**: 1 hour  \n\nBody.\n"
        todo = write(tmp_path / "TODO.md", text)
        assert cli("status", "set", "5", "failed", "--reason", "exit 1", cwd=tmp_path)[0] == 0
        lines = read(todo).split("\n")
        assert "**Status**: [FAILED]  " in lines
        assert any(line.startswith("**Failed**: ") and line.endswith("  ") for line in lines)
        assert "**Failure Reason**: exit 1  " in lines

    def test_no_break_added_where_the_task_has_none(self, cli: RunCli, tmp_path: Path) -> None:
        text = "### 5. Task\n- **Status**: [NOT STARTED]\n"
        todo = write(tmp_path / "TODO.md", text)
        assert cli("status", "set", "5", "completed", cwd=tmp_path)[0] == 0
        assert not any(line.endswith(" ") for line in read(todo).split("\n"))

    def test_list_items_need_no_break(self, cli: RunCli, tmp_path: Path) -> None:
        text = "### 5. Task\n- **Status**: [NOT STARTED]  \n"
        todo = write(tmp_path / "TODO.md", text)
        assert cli("status", "set", "5", "completed", cwd=tmp_path)[0] == 0
        assert any(
            line.startswith("- **Completed**: ") and not line.endswith(" ")
            for line in read(todo).split("\n")
        )


class TestRefusals:
    def test_two_status_fields_are_refused(self, cli: RunCli, tmp_path: Path) -> None:
        text = "### 5. Task\n- **Status**: [NOT STARTED]\n- **Status**: [COMPLETED]\n"
        todo = write(tmp_path / "TODO.md", text)
        code, _, err = cli("status", "set", "5", "completed", cwd=tmp_path)
        assert code == 2
        assert "lines 2 and 3" in err
        assert read(todo) == text


def git_repo(root: Path) -> Path:
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / "docs" / "deep").mkdir(parents=True)
    return root / "docs" / "deep"


class TestFromASubdirectory:
    def test_plan_lint_and_status_find_todo_and_config_at_the_root(
        self, cli: RunCli, tmp_path: Path
    ) -> None:
        """In a subdirectory, the TODO file and .github/batchaction.yml (with its
        dependency-fields) are those of the repository root."""
        sub = git_repo(tmp_path)
        write(
            tmp_path / "specs" / "TODO.md",
            "### 1. A\n- **Status**: open\n\n### 2. B\n- **Status**: open\n- **Needs**: 1\n",
        )
        write(tmp_path / ".github" / "batchaction.yml", "dependency-fields: [Needs]\n")
        code, out, err = cli("plan", "1-2", "--json", cwd=sub)
        assert code == 0, err
        assert '"waves": [[1], [2]]' in out
        code, out, _ = cli("lint", cwd=sub)
        assert code == 0
        assert "Needs" not in out  # configured: no "not read as a dependency" warning
        assert cli("status", "set", "2", "planned", cwd=sub)[0] == 0
        assert "- **Status**: [PLANNED]" in read(tmp_path / "specs" / "TODO.md") or (
            "- **Status**: Planned" in read(tmp_path / "specs" / "TODO.md")
        )

    def test_todo_flag_is_relative_to_the_working_directory_first(
        self, cli: RunCli, tmp_path: Path
    ) -> None:
        sub = git_repo(tmp_path)
        write(tmp_path / "TODO.md", "### 1. Root\n- **Status**: open\n")
        write(sub / "TODO.md", "### 7. Here\n- **Status**: open\n")
        code, out, err = cli("plan", "7", "--json", "--todo", "TODO.md", cwd=sub)
        assert code == 0, err
        assert '"waves": [[7]]' in out
        code, out, err = cli("plan", "1", "--json", cwd=sub)
        assert code == 0, err
        assert '"waves": [[1]]' in out


class TestPeoplesNotesStay:
    def test_a_dated_note_is_not_a_date(self, cli: RunCli, tmp_path: Path) -> None:
        """``Completed: 2024-05-01 phase 1 only`` is a person's note, not the date batchaction
        writes: running the task again keeps it."""
        text = "### 5. Task\n- **Status**: [PARTIAL]\n- **Completed**: 2024-05-01 phase 1 only\n"
        todo = write(tmp_path / "TODO.md", text)
        assert cli("status", "set", "5", "in-progress", cwd=tmp_path)[0] == 0
        assert "- **Completed**: 2024-05-01 phase 1 only" in section(read(todo), 5)

    def test_a_reason_over_several_lines_stays_whole(self, cli: RunCli, tmp_path: Path) -> None:
        text = (
            "### 5. Task\n**Status**: [FAILED]\n**Failure Reason**: the build broke\n"
            "because of the vendored parser, see notes\n**Effort**: 1 hour\n"
        )
        todo = write(tmp_path / "TODO.md", text)
        assert cli("status", "set", "5", "completed", cwd=tmp_path)[0] == 0
        lines = section(read(todo), 5)
        assert "**Failure Reason**: the build broke" in lines
        assert "because of the vendored parser, see notes" in lines

    def test_a_reason_cannot_open_a_comment(self, cli: RunCli, tmp_path: Path) -> None:
        """A reason with ``<!--`` (from an executor's summary) would hide the fields after it."""
        text = "### 4. A\n**Status**: open\n\n### 5. B\n**Status**: open\n**Dependencies**: 4\n"
        todo = write(tmp_path / "TODO.md", text)
        code = cli("status", "set", "5", "failed", "--reason", "x <!-- y", cwd=tmp_path)[0]
        assert code == 0
        code, out, err = cli("plan", "4-5", "--json", cwd=tmp_path)
        assert code == 0, err
        assert '"waves": [[4], [5]]' in out
        assert "<!--" not in read(todo)


def test_the_lock_file_is_excluded_from_git(tmp_path: Path) -> None:
    """``git add -A`` after a status change commits TODO.md, never TODO.md.lock nor a
    temporary copy of TODO.md."""
    repo = tmp_path / "repo"
    (repo / "docs").mkdir(parents=True)
    (repo / "docs" / "TODO.md").write_text("# T\n\n### 1. One\n- **Status**: [NOT STARTED]\n")
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    for _ in range(2):  # a second run adds no second line
        done = subprocess.run(
            [sys.executable, "-m", "batchaction", "status", "set", "1", "completed",
             "--todo", "docs/TODO.md"],
            cwd=repo, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    assert (repo / "docs" / "TODO.md.lock").exists()
    # A temporary copy batchaction renames over TODO.md, caught by an agent's git add -A.
    (repo / "docs" / ".TODO.md.k2j4.tmp").write_text("half written")
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    staged = subprocess.run(
        ["git", "diff", "--cached", "--name-only"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert staged == ["docs/TODO.md"]
    exclude = (repo / ".git" / "info" / "exclude").read_text().splitlines()
    assert exclude.count("/docs/TODO.md.lock") == 1
    assert exclude.count("/docs/.TODO.md.*.tmp") == 1
