"""``batchaction plan`` and ``batchaction lint`` as real processes (SPEC 2, 9, 10)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from strategies import TaskSpec, render_todo

from batchaction import __version__
from batchaction.todo import parse_todo

SMALL = render_todo(
    [
        TaskSpec(63, deps="None"),
        TaskSpec(64, deps="Task 63"),
        TaskSpec(65, deps="63"),
        TaskSpec(66, deps="Task 64"),
        TaskSpec(67, deps="Task 65"),
        TaskSpec(88, deps="None"),
    ]
)
RunCli = Callable[..., tuple[int, str, str]]
PLAN_KEYS = {"selection", "waves", "skipped", "blocked", "warnings"}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A directory holding the canonical TODO.md."""
    (tmp_path / "TODO.md").write_text(SMALL, encoding="utf-8")
    return tmp_path


def plan_json(cli: RunCli, cwd: Path, *args: str) -> dict[str, Any]:
    code, out, err = cli("plan", *args, "--json", cwd=cwd)
    assert code == 0, err
    data: dict[str, Any] = json.loads(out)
    return data


def assert_usage_error(result: tuple[int, str, str], *named: str) -> str:
    """Exit 2, nothing on stdout, one clean message on stderr naming ``named``."""
    code, out, err = result
    assert code == 2, (out, err)
    assert out == ""
    assert "Traceback" not in err
    assert "batchaction: error:" in err
    for text in named:
        assert text in err
    return err


class TestPlanOutput:
    def test_json_shape(self, cli: RunCli, repo: Path) -> None:
        """``plan --json`` prints one object with the documented keys and the canonical waves."""
        data = plan_json(cli, repo, "63, 64-67", "88", "99")
        assert set(data) == PLAN_KEYS
        assert data["selection"] == [63, 64, 65, 66, 67, 88, 99]
        assert data["waves"] == [[63, 88], [64, 65], [66, 67]]
        assert data["skipped"] == [{"number": 99, "reason": "not-found"}]
        assert data["blocked"] == []

    def test_text_output(self, cli: RunCli, repo: Path) -> None:
        """The text plan lists waves and skipped tasks; warnings go to stderr."""
        code, out, err = cli("plan", "63-67", "99", cwd=repo)
        assert code == 0
        assert "Wave 1:" in out
        assert "Wave 3:" in out
        assert "not-found" in out
        assert "99" in err

    def test_unselected_deps_flag(self, cli: RunCli, repo: Path) -> None:
        """``--unselected-deps block`` blocks and names the dependency."""
        data = plan_json(cli, repo, "64", "66", "88", "--unselected-deps", "block")
        assert data["waves"] == [[88]]
        blocked = data["blocked"]
        assert [b["number"] for b in blocked] == [64, 66]
        assert blocked[0]["blocked_by"] == [63]
        assert "63" in blocked[0]["reason"]

    def test_unselected_deps_block_text(self, cli: RunCli, repo: Path) -> None:
        """The text plan lists each blocked task with the dependency that blocks it: the
        unselected open one directly, or the blocked task upstream of it."""
        code, out, err = cli("plan", "64", "66", "88", "--unselected-deps", "block", cwd=repo)
        assert code == 0, err
        assert "Blocked:" in out
        blocked = out.split("Blocked:\n", 1)[1].splitlines()
        assert blocked == [
            "  64  depends on unselected open task 63 ([NOT STARTED])",
            "  66  blocked by task 64 (also blocked)",
        ]
        waves = out.split("Blocked:", 1)[0]
        assert "Wave 1:" in waves
        assert "  88  " in waves
        assert "Wave 2:" not in waves
        assert not re.search(r"^\s+6[46]\s", waves, re.M)

    def test_include_deps_flag(self, cli: RunCli, repo: Path) -> None:
        """``--include-deps`` pulls in open dependencies."""
        data = plan_json(cli, repo, "66", "--include-deps")
        assert data["waves"] == [[63], [64], [66]]


class TestVersion:
    def test_version(self, cli: RunCli, tmp_path: Path) -> None:
        """``batchaction --version`` prints the package version and exits 0."""
        code, out, err = cli("--version", cwd=tmp_path)
        assert (code, err) == (0, "")
        assert out == f"batchaction {__version__}\n"
        assert re.fullmatch(r"\d+\.\d+\.\d+\S*", __version__)


class TestFixturesThroughCli:
    def test_lint_exits_zero(self, cli: RunCli, todo_fixture: Path, tmp_path: Path) -> None:
        """Every real file lints with warnings only (exit 0), compiler style."""
        code, out, err = cli("lint", todo_fixture, cwd=tmp_path)
        assert (code, err) == (0, "")
        for line in out.splitlines():
            assert re.match(rf"{re.escape(str(todo_fixture))}:\d+: warning: ", line), line

    def test_plan_every_task(self, cli: RunCli, todo_fixture: Path, tmp_path: Path) -> None:
        """Planning all tasks of a real file exits 0 (no cycles or duplicates) with valid JSON."""
        with todo_fixture.open(encoding="utf-8", newline="") as handle:
            numbers = [str(task.number) for task in parse_todo(handle.read()).tasks]
        code, out, err = cli(
            "plan", ", ".join(numbers), "--todo", todo_fixture, "--json", cwd=tmp_path
        )
        assert code == 0, err
        data = json.loads(out)
        assert set(data) == PLAN_KEYS
        planned = [n for wave in data["waves"] for n in wave] + [
            s["number"] for s in data["skipped"]
        ]
        assert sorted(planned) == sorted(map(int, numbers))
        assert all(s["reason"] in ("already-done", "closed") for s in data["skipped"])

    def test_6172a67_chain(self, cli: RunCli, fixtures_dir: Path, tmp_path: Path) -> None:
        """The real chain 72-78 plans as six waves."""
        todo = fixtures_dir / "todo" / "proofchecker-6172a67.md"
        data = plan_json(cli, tmp_path, "72-78", "--todo", str(todo))
        assert data["waves"] == [[72], [73], [74, 75], [76], [77], [78]]


EXPECTED_FORM = "expected a task number like 63 or a range like 65-67"


class TestSelectionErrors:
    @pytest.mark.parametrize(
        ("selection", "message"),
        [
            ("", f"empty selection: {EXPECTED_FORM}"),
            (" , ", f"empty selection: {EXPECTED_FORM}"),
            ("63-", f"invalid selection item '63-': {EXPECTED_FORM}"),
            ("abc", f"invalid selection item 'abc': {EXPECTED_FORM}"),
            ("63, abc", f"invalid selection item 'abc': {EXPECTED_FORM}"),
            ("1--2", f"invalid selection item '1--2': {EXPECTED_FORM}"),
            ("67-65", "invalid range '67-65': start must not exceed end"),
            ("0", "invalid selection item '0': task numbers start at 1"),
            ("#0", "invalid selection item '#0': task numbers start at 1"),
            (
                "63, 1-501",
                "range '1-501' selects 501 tasks, over the cap of 500: "
                "select fewer tasks or raise max-tasks",
            ),
        ],
    )
    def test_invalid_selection(self, cli: RunCli, repo: Path, selection: str, message: str) -> None:
        """Each invalid selection exits 2 with one message naming the item and the expected
        form (or the rule it breaks), on stderr only."""
        err = assert_usage_error(cli("plan", selection, cwd=repo))
        assert err == f"batchaction: error: {message}\n"

    def test_total_over_cap(self, cli: RunCli, repo: Path) -> None:
        """A total over ``--max-tasks`` exits 2 naming the cap and what to do."""
        err = assert_usage_error(cli("plan", "63 64 65 88", "--max-tasks", "3", cwd=repo))
        assert "more than 3 tasks (the cap)" in err
        assert "select fewer tasks or raise max-tasks" in err

    def test_total_over_default_cap(self, cli: RunCli, repo: Path) -> None:
        """501 separate numbers (no range over the cap) exceed the default cap of 500."""
        selection = ", ".join(str(n) for n in range(1, 1003, 2))
        err = assert_usage_error(cli("plan", selection, cwd=repo))
        assert "more than 500 tasks (the cap)" in err

    def test_range_over_cap(self, cli: RunCli, repo: Path) -> None:
        """A range over ``--max-tasks`` exits 2 naming the range and the cap."""
        err = assert_usage_error(cli("plan", "63-67", "--max-tasks", "3", cwd=repo), "'63-67'")
        assert "selects 5 tasks, over the cap of 3" in err

    def test_huge_number(self, cli: RunCli, repo: Path) -> None:
        """A number with thousands of digits exits 2 with a message, not a traceback."""
        assert_usage_error(cli("plan", "9" * 5000, cwd=repo), "invalid")

    def test_missing_selection(self, cli: RunCli, repo: Path) -> None:
        """No selection at all is a usage error, not a traceback."""
        assert_usage_error(cli("plan", cwd=repo), "selection")


class TestGraphErrors:
    def test_cycle(self, cli: RunCli, tmp_path: Path) -> None:
        """A cycle exits 2 printing the path."""
        specs = [TaskSpec(63, deps="65"), TaskSpec(64, deps="63"), TaskSpec(65, deps="64")]
        (tmp_path / "TODO.md").write_text(render_todo(specs), encoding="utf-8")
        assert_usage_error(cli("plan", "63-65", cwd=tmp_path), "63 -> 64 -> 65 -> 63")

    def test_self_dependency(self, cli: RunCli, tmp_path: Path) -> None:
        """A self-dependency exits 2 as a cycle."""
        (tmp_path / "TODO.md").write_text(render_todo([TaskSpec(7, deps="7")]), encoding="utf-8")
        assert_usage_error(cli("plan", "7", cwd=tmp_path), "7 -> 7")

    def test_duplicate_selected(self, cli: RunCli, tmp_path: Path) -> None:
        """A selected duplicate number exits 2 naming the number."""
        specs = [TaskSpec(1), TaskSpec(1), TaskSpec(2)]
        (tmp_path / "TODO.md").write_text(render_todo(specs), encoding="utf-8")
        assert_usage_error(cli("plan", "1", cwd=tmp_path), "task 1", "more than once")
        assert plan_json(cli, tmp_path, "2")["waves"] == [[2]]


class TestFileErrors:
    def test_missing_file(self, cli: RunCli, tmp_path: Path) -> None:
        """A missing --todo file exits 2 naming it."""
        assert_usage_error(cli("plan", "1", "--todo", "nope.md", cwd=tmp_path), "nope.md")

    def test_no_file_found(self, cli: RunCli, tmp_path: Path) -> None:
        """Without any TODO file, the error lists the places looked at."""
        assert_usage_error(cli("plan", "1", cwd=tmp_path), "TODO.md", ".claude/specs/TODO.md")

    def test_directory(self, cli: RunCli, tmp_path: Path) -> None:
        """A directory given as the TODO file exits 2."""
        (tmp_path / "TODO.md").mkdir()
        assert_usage_error(cli("plan", "1", "--todo", "TODO.md", cwd=tmp_path), "directory")

    def test_invalid_utf8(self, cli: RunCli, tmp_path: Path) -> None:
        """Invalid UTF-8 exits 2 naming the line."""
        (tmp_path / "TODO.md").write_bytes(b"# T\n### 1. A\n**Status**: caf\xe9\n")
        err = assert_usage_error(cli("plan", "1", cwd=tmp_path), "UTF-8")
        assert "TODO.md:3" in err

    def test_binary(self, cli: RunCli, tmp_path: Path) -> None:
        """A file with NUL bytes is refused as binary."""
        (tmp_path / "TODO.md").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
        assert_usage_error(cli("plan", "1", cwd=tmp_path), "NUL")


class TestConfiguration:
    def write_config(self, base: Path, text: str) -> None:
        (base / ".github").mkdir(exist_ok=True)
        (base / ".github" / "batchaction.yml").write_text(text, encoding="utf-8")

    def test_unknown_key(self, cli: RunCli, repo: Path) -> None:
        """An unknown configuration key exits 2 naming it."""
        self.write_config(repo, "max-tasks: 5\nmax_tasks: 5\n")
        assert_usage_error(cli("plan", "63", cwd=repo), "max_tasks", "batchaction.yml")

    def test_bad_value(self, cli: RunCli, repo: Path) -> None:
        """A bad configuration value exits 2 naming the key and value."""
        self.write_config(repo, "unselected-deps: sometimes\n")
        assert_usage_error(cli("plan", "63", cwd=repo), "unselected-deps", "sometimes")

    def test_invalid_yaml(self, cli: RunCli, repo: Path) -> None:
        """Unparseable YAML exits 2."""
        self.write_config(repo, "max-tasks: [\n")
        assert_usage_error(cli("plan", "63", cwd=repo), "invalid YAML")

    def test_bad_flag_value(self, cli: RunCli, repo: Path) -> None:
        """A bad flag value exits 2 naming the option."""
        assert_usage_error(cli("plan", "63", "--max-tasks", "zero", cwd=repo), "max-tasks")

    def test_precedence(self, cli: RunCli, repo: Path) -> None:
        """Flag beats configuration file beats default, for the cap and for unselected-deps."""
        assert plan_json(cli, repo, "64")["blocked"] == []
        self.write_config(repo, "unselected-deps: block\nmax-tasks: 2\n")
        assert [b["number"] for b in plan_json(cli, repo, "64")["blocked"]] == [64]
        assert plan_json(cli, repo, "64", "--unselected-deps", "warn")["blocked"] == []
        assert_usage_error(cli("plan", "63-65", cwd=repo), "over the cap of 2")
        assert plan_json(cli, repo, "63-65", "--max-tasks", "3")["waves"] == [[63], [64, 65]]

    def test_explicit_config_path(self, cli: RunCli, repo: Path) -> None:
        """``--config`` reads another file, and a missing one is an error."""
        (repo / "other.yml").write_text("include-deps: true\n", encoding="utf-8")
        assert plan_json(cli, repo, "66", "--config", "other.yml")["waves"] == [[63], [64], [66]]
        assert_usage_error(cli("plan", "66", "--config", "gone.yml", cwd=repo), "gone.yml")

    def test_todo_path_from_config(self, cli: RunCli, tmp_path: Path) -> None:
        """``todo-path`` in the configuration file picks the TODO file; --todo overrides it."""
        (tmp_path / "tasks.md").write_text(render_todo([TaskSpec(5)]), encoding="utf-8")
        (tmp_path / "TODO.md").write_text(render_todo([TaskSpec(6)]), encoding="utf-8")
        self.write_config(tmp_path, "todo-path: tasks.md\n")
        assert plan_json(cli, tmp_path, "5-6")["waves"] == [[5]]
        assert plan_json(cli, tmp_path, "5-6", "--todo", "TODO.md")["waves"] == [[6]]

    def test_config_markers(self, cli: RunCli, tmp_path: Path) -> None:
        """``done-markers`` and ``closed-markers`` from the configuration file make matching
        tasks skip as ``already-done`` and ``closed``; without the file they are open."""
        specs = [
            TaskSpec(1, status="SHIPPED"),
            TaskSpec(2, status="[PARKED] until Q3"),
            TaskSpec(3, status="[shipped] (2026-01-04)"),
            TaskSpec(4, status="[NOT STARTED]", deps="Task 1, Task 2"),
        ]
        (tmp_path / "TODO.md").write_text(render_todo(specs), encoding="utf-8")
        without = plan_json(cli, tmp_path, "1-4")
        assert without["skipped"] == []
        assert without["waves"] == [[1, 2, 3], [4]]
        self.write_config(tmp_path, "done-markers: [SHIPPED]\nclosed-markers: [PARKED]\n")
        data = plan_json(cli, tmp_path, "1-4")
        assert data["skipped"] == [
            {"number": 1, "reason": "already-done"},
            {"number": 2, "reason": "closed"},
            {"number": 3, "reason": "already-done"},
        ]
        assert data["waves"] == [[4]]
        assert data["blocked"] == []
        # The closed dependency 2 is satisfied with a warning naming its status.
        assert any("depends on 2" in w and "PARKED" in w for w in data["warnings"])
        code, out, err = cli("plan", "1-4", cwd=tmp_path)
        assert code == 0, err
        assert re.search(r"^\s+1\s+already-done: status is SHIPPED$", out, re.M), out
        assert re.search(r"^\s+2\s+closed: status is \[PARKED\] until Q3$", out, re.M), out


class TestTodoDetection:
    def test_detection_order(self, cli: RunCli, tmp_path: Path) -> None:
        """Auto-detection takes TODO.md, specs/, .opencode/specs/, .claude/specs/ in that order."""
        candidates = [
            ("TODO.md", 1),
            ("specs/TODO.md", 2),
            (".opencode/specs/TODO.md", 3),
            (".claude/specs/TODO.md", 4),
        ]
        for path, number in reversed(candidates):
            target = tmp_path / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(render_todo([TaskSpec(number)]), encoding="utf-8")
            assert plan_json(cli, tmp_path, "1-4")["waves"] == [[number]]

    def test_lint_auto_detects(self, cli: RunCli, tmp_path: Path) -> None:
        """``lint`` without paths lints the detected file."""
        target = tmp_path / ".claude" / "specs" / "TODO.md"
        target.parent.mkdir(parents=True)
        target.write_text(render_todo([TaskSpec(1, deps="Task 9")]), encoding="utf-8")
        code, out, _ = cli("lint", cwd=tmp_path)
        assert code == 0
        assert out.startswith(".claude/specs/TODO.md:")


class TestLintCli:
    def run_lint(self, cli: RunCli, tmp_path: Path, text: str) -> tuple[int, list[str]]:
        (tmp_path / "TODO.md").write_text(text, encoding="utf-8")
        code, out, err = cli("lint", "TODO.md", cwd=tmp_path)
        assert "Traceback" not in err
        return code, out.splitlines()

    def test_duplicates(self, cli: RunCli, tmp_path: Path) -> None:
        """Duplicates exit 1 with an error naming both lines."""
        text = render_todo([TaskSpec(1, title="One"), TaskSpec(1, title="Two")])
        first = text.splitlines().index("### 1. One") + 1
        second = text.splitlines().index("### 1. Two") + 1
        code, lines = self.run_lint(cli, tmp_path, text)
        assert code == 1
        (line,) = lines
        assert line.startswith(f"TODO.md:{second}: error: ")
        assert f"line {first}" in line

    def test_cycle(self, cli: RunCli, tmp_path: Path) -> None:
        """A cycle exits 1 with the path."""
        specs = [TaskSpec(63, deps="65"), TaskSpec(64, deps="63"), TaskSpec(65, deps="64")]
        code, lines = self.run_lint(cli, tmp_path, render_todo(specs))
        assert code == 1
        (line,) = lines
        assert re.match(r"TODO\.md:\d+: error: .*63 -> 64 -> 65 -> 63", line)

    def test_self_dependency(self, cli: RunCli, tmp_path: Path) -> None:
        """A self-dependency exits 1 on the Dependencies line."""
        text = render_todo([TaskSpec(5, deps="Task 5")])
        dep_line = text.splitlines().index("- **Dependencies**: Task 5") + 1
        code, lines = self.run_lint(cli, tmp_path, text)
        assert code == 1
        assert lines == [f"TODO.md:{dep_line}: error: task 5 depends on itself"]

    def test_warnings_only_exit_zero(self, cli: RunCli, tmp_path: Path) -> None:
        """Warnings alone exit 0."""
        code, lines = self.run_lint(cli, tmp_path, render_todo([TaskSpec(1, deps="Task 72")]))
        assert code == 0
        assert len(lines) == 1
        assert ": warning: " in lines[0]

    def test_unreadable_files(self, cli: RunCli, tmp_path: Path) -> None:
        """Binary and non-UTF-8 files exit 2 with a compiler-style error on their line."""
        (tmp_path / "bin.md").write_bytes(b"### 1. A\n\x00")
        (tmp_path / "latin.md").write_bytes(b"### 1. A\n\xff\n")
        code, out, err = cli("lint", "bin.md", "latin.md", cwd=tmp_path)
        assert code == 2, (out, err)
        assert "Traceback" not in err + out
        lines = out.splitlines()
        assert len(lines) == 2
        assert lines[0].startswith("bin.md:2: error: ")
        assert "NUL" in lines[0]
        assert lines[1].startswith("latin.md:2: error: ")
        assert "UTF-8" in lines[1]

    def test_missing_file_is_compiler_style(self, cli: RunCli, tmp_path: Path) -> None:
        """A missing file or a directory exits 2, reported as ``path:1: error: ...``."""
        (tmp_path / "dir.md").mkdir()
        code, out, err = cli("lint", "gone.md", "dir.md", cwd=tmp_path)
        assert code == 2, (out, err)
        assert "Traceback" not in err + out
        lines = out.splitlines()
        assert len(lines) == 2
        assert lines[0].startswith("gone.md:1: error: ")
        assert "no such file" in lines[0]
        assert lines[1].startswith("dir.md:1: error: ")
        assert "directory" in lines[1]

    @pytest.mark.parametrize("order", ["unreadable-first", "unreadable-last"])
    def test_unreadable_wins_over_content_errors(
        self, cli: RunCli, tmp_path: Path, order: str
    ) -> None:
        """With a file holding lint errors and an unreadable one, both are reported and the
        exit code is 2, whichever comes first; the readable file alone still exits 1."""
        text = render_todo([TaskSpec(1, title="One"), TaskSpec(1, title="Two")])
        (tmp_path / "dup.md").write_text(text, encoding="utf-8")
        (tmp_path / "clean.md").write_text(render_todo([TaskSpec(2)]), encoding="utf-8")
        paths = ["gone.md", "dup.md", "clean.md"]
        if order == "unreadable-last":
            paths.reverse()
        code, out, err = cli("lint", *paths, cwd=tmp_path)
        assert code == 2, (out, err)
        assert "Traceback" not in err + out
        assert any(line.startswith("gone.md:1: error: ") for line in out.splitlines())
        assert any(
            line.startswith("dup.md:") and "duplicate task number 1" in line
            for line in out.splitlines()
        )
        assert not any(line.startswith("clean.md:") for line in out.splitlines())
        assert cli("lint", "dup.md", "clean.md", cwd=tmp_path)[0] == 1

    def test_no_file_found(self, cli: RunCli, tmp_path: Path) -> None:
        """``lint`` without paths and without any TODO file exits 2 with one message."""
        code, out, err = cli("lint", cwd=tmp_path)
        assert (code, out) == (2, "")
        assert "Traceback" not in err
        assert err.startswith("batchaction: error: ")
        assert ".claude/specs/TODO.md" in err
