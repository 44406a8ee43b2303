"""Settings (SPEC 10): the configuration file, precedence, durations and TODO detection."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchaction.errors import BatchError
from batchaction.settings import (
    TODO_CANDIDATES,
    Settings,
    find_todo,
    load_config,
    parse_duration,
    resolve,
)


def write_config(base: Path, text: str) -> Path:
    path = base / ".github" / "batchaction.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


class TestResolve:
    def test_defaults_without_config(self, tmp_path: Path) -> None:
        """Without a configuration file every option has its default."""
        settings = resolve({}, None, base=tmp_path)
        assert settings == Settings()
        assert (settings.max_tasks, settings.unselected_deps, settings.include_deps) == (
            500,
            "warn",
            False,
        )

    def test_config_over_default_and_flag_over_config(self, tmp_path: Path) -> None:
        """Precedence is flag > configuration file > default."""
        write_config(tmp_path, "max-tasks: 7\nunselected-deps: block\ninclude-deps: yes\n")
        from_config = resolve({}, None, base=tmp_path)
        assert (from_config.max_tasks, from_config.unselected_deps) == (7, "block")
        assert from_config.include_deps is True
        flagged = resolve({"max-tasks": "9", "unselected-deps": "warn"}, None, base=tmp_path)
        assert (flagged.max_tasks, flagged.unselected_deps) == (9, "warn")

    def test_explicit_config_must_exist(self, tmp_path: Path) -> None:
        """A configuration file named explicitly but missing is an error."""
        with pytest.raises(BatchError, match="not found"):
            resolve({}, tmp_path / "missing.yml")

    def test_unknown_key_is_named(self, tmp_path: Path) -> None:
        """Unknown keys are exit 2, naming the key and the file."""
        path = write_config(tmp_path, "max-tasks: 3\nmax_parallel: 2\nbogus: 1\n")
        with pytest.raises(BatchError) as info:
            resolve({}, None, base=tmp_path)
        assert info.value.exit_code == 2
        assert "bogus" in str(info.value)
        assert "max_parallel" in str(info.value)
        assert str(path) in str(info.value)

    @pytest.mark.parametrize(
        ("text", "named"),
        [
            ("max-tasks: lots\n", "max-tasks"),
            ("max-tasks: 0\n", "max-tasks"),
            ("max-parallel: true\n", "max-parallel"),
            ("unselected-deps: sometimes\n", "unselected-deps"),
            ("include-deps: maybe\n", "include-deps"),
            ("strategy: random\n", "strategy"),
            ("timeout: soon\n", "timeout"),
            ("timeout: 0\n", "timeout"),
            ("status-markers: [DONE]\n", "status-markers"),
            ("status-markers: {finished: '[DONE]'}\n", "finished"),
            ("executor: {a: b}\n", "executor"),
        ],
    )
    def test_bad_value_is_named(self, tmp_path: Path, text: str, named: str) -> None:
        """Bad values are exit 2 naming the key."""
        write_config(tmp_path, text)
        with pytest.raises(BatchError) as info:
            resolve({}, None, base=tmp_path)
        assert info.value.exit_code == 2
        assert named in str(info.value)

    def test_action_inputs_arrive_as_strings(self) -> None:
        """String values (as action inputs give them) are converted and checked."""
        settings = Settings().with_values(
            {"max-parallel": "3", "fail-fast": "true", "timeout": "15m", "add-paths": "a, b\nc"},
            "inputs",
        )
        assert (settings.max_parallel, settings.fail_fast, settings.timeout) == (3, True, 900.0)
        assert settings.add_paths == ("a", "b", "c")

    def test_status_markers_mapping(self, tmp_path: Path) -> None:
        """Status markers from the file become sorted verbatim overrides."""
        write_config(tmp_path, "status-markers:\n  completed: '[DONE]'\n  failed: Broken\n")
        settings = resolve({}, None, base=tmp_path)
        assert settings.status_markers == (("completed", "[DONE]"), ("failed", "Broken"))


class TestLoadConfig:
    def test_empty_file_is_empty_mapping(self, tmp_path: Path) -> None:
        """An empty configuration file means no options."""
        assert load_config(write_config(tmp_path, ""), required=True) == {}

    def test_invalid_yaml_names_line(self, tmp_path: Path) -> None:
        """Invalid YAML is exit 2 with the file and a line number."""
        path = write_config(tmp_path, "max-tasks: 3\nkey: [\n")
        with pytest.raises(BatchError, match=r"batchaction\.yml:\d+: invalid YAML"):
            load_config(path, required=True)

    def test_top_level_must_be_mapping(self, tmp_path: Path) -> None:
        """A list at the top level is refused."""
        with pytest.raises(BatchError, match="mapping"):
            load_config(write_config(tmp_path, "- a\n- b\n"), required=True)


class TestParseDuration:
    @pytest.mark.parametrize(
        ("value", "seconds"),
        [("90", 90.0), ("90s", 90.0), ("15m", 900.0), ("1h", 3600.0), (30, 30.0), ("1.5h", 5400)],
    )
    def test_valid(self, value: str | int, seconds: float) -> None:
        """Durations accept bare seconds and s/m/h units."""
        assert parse_duration(value) == seconds

    @pytest.mark.parametrize("value", ["", "fast", "-5", "0", "1d", "1h30m"])
    def test_invalid(self, value: str) -> None:
        """Anything else is exit 2 quoting the value."""
        with pytest.raises(BatchError, match="invalid timeout"):
            parse_duration(value, "timeout")


class TestFindTodo:
    def test_detection_order(self, tmp_path: Path) -> None:
        """The first existing candidate wins, in the documented order."""
        for candidate in reversed(TODO_CANDIDATES):
            path = tmp_path / candidate
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("# TODO\n", encoding="utf-8")
            assert find_todo(None, base=tmp_path) == path

    def test_given_path_wins(self, tmp_path: Path) -> None:
        """An explicit path is used as given, even if it does not exist."""
        (tmp_path / "TODO.md").write_text("", encoding="utf-8")
        assert find_todo("docs/tasks.md", base=tmp_path) == tmp_path / "docs/tasks.md"

    def test_nothing_found(self, tmp_path: Path) -> None:
        """Without any candidate the error lists where it looked."""
        with pytest.raises(BatchError) as info:
            find_todo(None, base=tmp_path)
        assert all(candidate in str(info.value) for candidate in TODO_CANDIDATES)
