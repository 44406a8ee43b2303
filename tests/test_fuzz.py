"""Fuzzing the inputs users and GitHub hand to batchaction: selections, TODO files, event
payloads and configuration files. Whatever arrives, the answer is a result or an input error
(exit 2), never a traceback, and a status write never touches what it does not own."""

from __future__ import annotations

import collections
import itertools
import math
import tempfile
from pathlib import Path

import pytest
from actionhelpers import (
    ApiStub,
    Sandbox,
    make_sandbox,
    marker_executor,
    pull_answer,
    run_action,
)
from conftest import run_cli
from fuzzhelpers import (
    CONFIG_KEYS,
    EVENT_NAMES,
    LIFECYCLE_FIELDS,
    OUTCOMES,
    PATHOLOGICAL_LINES,
    TODO_FIXTURE_PATHS,
    ConfigCase,
    LongLine,
    MutatedFile,
    MutatedPayload,
    attempt,
    byte_lines,
    check_status_patch,
    config_cases,
    first_bad_line,
    fixture_bytes,
    fresh_payload,
    megabyte_lines,
    model_selection,
    mutated_payloads,
    mutated_todo_files,
    previous_statuses,
    reasons,
    selection_soup,
    text_lines,
    time_limit,
)
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from pytest_httpserver import HTTPServer
from strategies import selection_renderings

from batchaction.errors import BatchError
from batchaction.ghevent import Trigger, decide
from batchaction.lint import lint_document
from batchaction.selection import parse_selection
from batchaction.settings import PERMISSIONS, Settings, resolve
from batchaction.status import classify
from batchaction.textlines import decode_todo
from batchaction.todo import TodoDocument, parse_todo
from batchaction.writeback import StatusChange, apply_changes

# Real processes per example: a handful of examples, whatever the profile.
SUBPROCESS = settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
NO_DEADLINE = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_fixtures_are_present() -> None:
    """The mutators start from the shared real-world files; without them nothing is fuzzed."""
    assert len(TODO_FIXTURE_PATHS) >= 6
    assert all(fixture_bytes(path) for path in TODO_FIXTURE_PATHS)


# --- selection grammar ---------------------------------------------------------------------

caps = st.one_of(st.just(500), st.integers(1, 40))
selection_texts = st.one_of(
    st.text(),
    selection_soup(),
    selection_renderings().map(lambda rendering: rendering[0]),
)


def check_selection(text: str, cap: int) -> None:
    verdict = model_selection(text, cap)
    got, exc = attempt(parse_selection, text, cap)
    if exc is not None:
        assert exc.exit_code == 2
        assert verdict.numbers is None, f"{text!r} refused ({exc}), the model reads it as valid"
        if verdict.bad_item is not None:
            assert repr(verdict.bad_item)[1:-1] in str(exc), (
                f"{exc} does not name the offending item {verdict.bad_item!r}"
            )
        return
    assert got is not None
    assert verdict.numbers is not None, f"{text!r} accepted as {got[:10]}, the model refuses it"
    assert got == list(verdict.numbers)


class TestSelectionGrammar:
    @given(selection_texts, caps)
    @example("٣", 500)
    @example("３", 500)
    @example("1-𝟓", 500)
    @example("1\u00a02\u20283", 500)
    @example("9" * 5000, 500)
    @example("0000000000000000001", 500)
    @example("1-999999999999999999", 500)
    @example("#1-#2", 500)
    @example("1,,2,", 3)
    @example(" \t\n", 500)
    def test_parser_agrees_with_the_reference_model(self, text: str, cap: int) -> None:
        """Any text: exactly the model's numbers, or exit 2 naming the item the model blames."""
        check_selection(text, cap)

    @pytest.mark.parametrize("text", ["٣", "３", "𝟓", "1-٣", "#３", "٦٣"])
    def test_look_alike_digits_are_refused(self, text: str) -> None:
        """Digits of other scripts are not task numbers (``/task ٣`` must not run task 3)."""
        with pytest.raises(BatchError) as info:
            parse_selection(text)
        assert info.value.exit_code == 2


# --- TODO.md: decode, parse, status write-back ---------------------------------------------


def decode_or_refuse(data: bytes) -> tuple[str, bool]:
    """The text of a file (replacing what a strict read refuses) and whether it was readable."""
    bad_line = first_bad_line(data)
    text, exc = attempt(decode_todo, data, "TODO.md")
    if exc is not None:
        assert exc.exit_code == 2
        assert bad_line is not None, f"readable file refused: {exc}"
        assert str(exc).startswith(f"TODO.md:{bad_line}: error:"), str(exc)
        return data.decode("utf-8", "replace"), False
    assert text is not None
    assert bad_line is None, "a file with a NUL or invalid UTF-8 was accepted"
    return text, True


def check_parse(text: str) -> TodoDocument:
    doc = parse_todo(text)
    assert "".join(doc.lines) == text
    assert list(doc.lines) == text_lines(text)
    for task in doc.tasks:
        assert 0 <= task.heading_line < task.end_line <= len(doc.lines)
    return doc


@st.composite
def status_changes(draw: st.DrawFn, doc: TodoDocument) -> list[StatusChange]:
    present = sorted({task.number for task in doc.tasks})
    numbers = st.integers(1, 10**6)
    if present:
        numbers = st.one_of(st.sampled_from(present), st.sampled_from(present), numbers)
    changes = []
    for _ in range(draw(st.integers(0, 6))):
        changes.append(
            StatusChange(
                number=draw(numbers),
                outcome=draw(st.sampled_from(OUTCOMES)),
                date="2026-01-02",
                reason=draw(reasons),
                previous=draw(previous_statuses),
            )
        )
    return changes


def expect_status(value: str, change: StatusChange) -> None:
    """The Status a task shows after its last change."""
    if change.outcome == "completed":
        assert classify(value) == "done", value
    elif change.outcome == "restore":
        assert change.previous is not None
        assert value == change.previous.strip(" \t"), (value, change.previous)
    else:
        assert change.outcome.replace("-", " ").upper() in value.upper(), (value, change.outcome)


def check_apply(text: str, doc: TodoDocument, changes: list[StatusChange], readable: bool) -> None:
    result = apply_changes(text, changes)
    assert collections.Counter(result.applied) + collections.Counter(result.missing) == (
        collections.Counter(changes)
    )
    count = collections.Counter(task.number for task in doc.tasks)
    for change in changes:
        assert (change in result.applied) == (count[change.number] == 1), change
    patched = {change.number for change in result.applied}
    tasks = [task for task in doc.tasks if task.number in patched]
    changeable = {
        field.line: field.key
        for task in tasks
        for field in task.fields
        if field.key in ("status", *LIFECYCLE_FIELDS)
    }
    check_status_patch(
        doc.lines,
        text_lines(result.text),
        [(t.heading_line, t.end_line) for t in tasks],
        changeable,
    )
    if readable:
        # What was written can be read again: no NUL, no lone surrogate, valid UTF-8.
        decode_todo(result.text.encode("utf-8"), "TODO.md")
    after = {task.number: task for task in parse_todo(result.text).tasks}
    for task in tasks:
        last = [change for change in result.applied if change.number == task.number][-1]
        if last.outcome != "restore" or last.previous is not None:
            expect_status(after[task.number].status, last)


class TestTodoMutations:
    @NO_DEADLINE
    @given(mutated_todo_files(), st.data())
    def test_mutated_real_files(self, mutated: MutatedFile, data: st.DataObject) -> None:
        """Dropped, doubled, cut lines, bad bytes, NULs, mixed endings: read or refuse (exit 2),
        parse without loss, and status writes change only status and lifecycle lines."""
        text, readable = decode_or_refuse(mutated.data)
        doc = check_parse(text)
        check_apply(text, doc, data.draw(status_changes(doc)), readable)

    @pytest.mark.slow
    @settings(
        max_examples=8,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.large_base_example],
        # A slow example is reported as drawn: shrinking would rerun slow examples many times.
        phases=(Phase.explicit, Phase.reuse, Phase.generate),
    )
    @given(st.sampled_from(TODO_FIXTURE_PATHS), megabyte_lines, st.integers(0, 10**6), st.data())
    def test_a_megabyte_line(
        self, path: Path, line: LongLine, where: int, data: st.DataObject
    ) -> None:
        """A 1 MiB line (headings, fields, dependencies of blanks, hashes and parentheses)
        anywhere in a real file is read, parsed, linted and patched in linear time."""
        lines = byte_lines(fixture_bytes(path))
        at = where % (len(lines) + 1)
        raw = b"".join(lines[:at]) + line.data + b"".join(lines[at:])
        with time_limit(20, f"{line} at line {at + 1}"):
            text, readable = decode_or_refuse(raw)
            doc = check_parse(text)
            lint_document(doc)
            check_apply(text, doc, data.draw(status_changes(doc)), readable)


PATHOLOGICAL_TODO = (
    "# TODO\n\n## Tasks\n\n### 77. Host task\n- **Status**: [NOT STARTED]\n"
    "{line}\nBody text.\n\n### 79. After\n- **Status**: Planned\n"
)


@pytest.mark.slow
@pytest.mark.parametrize("line", PATHOLOGICAL_LINES, ids=repr)
def test_pathological_long_lines_stay_linear(line: LongLine) -> None:
    """Megabyte lines of the shapes that make backtracking parsers quadratic, inside a task."""
    raw = PATHOLOGICAL_TODO.replace("{line}\n", line.data.decode("utf-8")).encode("utf-8")
    changes = [
        StatusChange(77, "failed", "2026-01-02", "why"),
        StatusChange(79, "completed", "2026-01-02"),
    ]
    with time_limit(20, repr(line)):
        text, readable = decode_or_refuse(raw)
        doc = check_parse(text)
        lint_document(doc)
        check_apply(text, doc, changes, readable)
    assert {77, 79} <= {task.number for task in doc.tasks}


# --- event payloads ------------------------------------------------------------------------

ENV = {
    "GITHUB_REPOSITORY": "octo-org/hello-tasks",
    "GITHUB_REF": "refs/heads/main",
    "GITHUB_REF_NAME": "main",
    "GITHUB_ACTOR": "someone",
}


def check_decision(trigger: Trigger, event_name: str) -> None:
    assert isinstance(trigger, Trigger)
    assert trigger.kind in ("comment", "dispatch", "ignore")
    assert isinstance(trigger.reason, str)
    assert isinstance(trigger.selection, str)
    if event_name not in ("issue_comment", "workflow_dispatch"):
        assert trigger.kind == "ignore"
    if trigger.kind == "comment":
        for value in (trigger.pr_number, trigger.comment_id):
            assert type(value) is int, f"{value!r} is not an issue or comment number"
        assert "\n" not in trigger.selection
    if trigger.kind == "dispatch":
        assert trigger.selection.strip()


class TestEventPayloads:
    @NO_DEADLINE
    @given(
        mutated_payloads(),
        st.sampled_from(EVENT_NAMES),
        st.sampled_from(["/task", "/run-tasks", "/task?"]),
        st.booleans(),
        st.one_of(st.none(), st.just(""), st.text(max_size=10)),
    )
    def test_decide_returns_a_trigger_or_an_input_error(
        self,
        mutated: MutatedPayload,
        event_name: str,
        command: str,
        allow_edits: bool,
        tasks_input: str | None,
    ) -> None:
        """Keys deleted, values of the wrong type, control characters: a Trigger or exit 2."""
        trigger, exc = attempt(
            decide,
            event_name,
            mutated.payload,
            ENV,
            command=command,
            allow_edits=allow_edits,
            tasks_input=tasks_input,
        )
        if exc is not None:
            assert exc.exit_code == 2
            return
        assert trigger is not None
        check_decision(trigger, event_name)

    @pytest.mark.parametrize(("key", "value"), [("number", True), ("id", False)])
    def test_a_boolean_where_a_number_belongs(self, key: str, value: bool) -> None:
        """JSON ``true`` is not an issue or comment number (Python counts bool as int)."""
        payload = fresh_payload("issue_comment-created.payload.json")
        payload["comment"]["body"] = "/task 1"
        payload["issue"]["pull_request"] = {"url": "https://example.invalid/pulls/1"}
        payload["issue" if key == "number" else "comment"][key] = value
        with pytest.raises(BatchError) as info:
            decide("issue_comment", payload, ENV)
        assert info.value.exit_code == 2


class TestActionOnMutatedPayloads:
    @pytest.mark.slow
    @SUBPROCESS
    @given(mutated_payloads(), st.sampled_from(EVENT_NAMES))
    def test_the_action_exits_0_1_or_2(
        self,
        tmp_path: Path,
        template: Path,
        httpserver: HTTPServer,
        mutated: MutatedPayload,
        event_name: str,
    ) -> None:
        """The real ``batchaction action`` process on a mutated payload: no traceback."""
        sandbox: Sandbox = make_sandbox(
            Path(tempfile.mkdtemp(dir=tmp_path)), template, checkout="feature"
        )
        httpserver.clear()
        api = ApiStub(httpserver)
        api.serve(role="write", pull=pull_answer("feature", sandbox.feature_sha))
        run = run_action(
            sandbox,
            event_name,
            mutated.payload,
            api_url=api.url,
            inputs={"executor": marker_executor(sandbox)},
        )
        assert run.code in (0, 1, 2), (run.code, run.err[-2000:])
        assert "Traceback" not in run.err, run.err[-4000:]
        assert "Traceback" not in run.out
        if event_name in ("pull_request", "unknown"):
            assert run.code == 0
            assert sandbox.ran() == []


# --- configuration files -------------------------------------------------------------------


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("configs")


_counter = itertools.count()


def write_case(directory: Path, case: ConfigCase) -> Path:
    path = directory / f"config-{next(_counter)}.yml"
    path.write_bytes(case.data)
    return path


def check_settings(value: Settings) -> None:
    """Every option the loader accepted is usable as it is."""
    for number, minimum in ((value.max_parallel, 1), (value.retries, 0), (value.max_tasks, 1)):
        assert type(number) is int
        assert number >= minimum
    for seconds in (value.timeout, value.grace):
        assert isinstance(seconds, float)
        assert math.isfinite(seconds)
        assert seconds > 0
    assert value.strategy in ("eager", "waves")
    assert value.unselected_deps in ("warn", "block")
    assert value.commit in ("end", "each", "never")
    assert value.permission in PERMISSIONS
    for flag in (value.include_deps, value.fail_fast, value.allow_forks, value.allow_edits):
        assert isinstance(flag, bool)
    for text in (value.tasks, value.executor, value.todo_path, value.commit_message):
        assert text is None or isinstance(text, str)
    for items in (value.add_paths, value.done_markers, value.closed_markers):
        assert all(isinstance(item, str) for item in items)
    for key, marker in value.status_markers:
        assert key in ("in-progress", "completed", "failed", "blocked")
        # Written as a Status value: one printable line.
        assert marker.strip()
        assert marker.isprintable(), marker


def check_config_error(exc: BatchError, case: ConfigCase, path: Path) -> None:
    message = str(exc)
    assert exc.exit_code == 2
    if case.keys is None:
        assert str(path) in message, message
        return
    unknown = [key for key in case.keys if key not in CONFIG_KEYS]
    if unknown:
        assert all(key in message for key in unknown), (unknown, message)
    else:
        assert any(f"{key} in " in message for key in case.keys), (case.keys, message)


class TestConfigFiles:
    @NO_DEADLINE
    @given(config_cases())
    @example(ConfigCase(b"timeout: .nan\n", ("timeout",)))
    @example(ConfigCase(b"grace: .inf\n", ("grace",)))
    @example(ConfigCase(("timeout: " + "9" * 400 + "\n").encode(), ("timeout",)))
    @example(ConfigCase(b'status-markers: {failed: "a\\nb"}\n', ("status-markers",)))
    @example(ConfigCase(b'status-markers: {completed: "\\0"}\n', ("status-markers",)))
    @example(ConfigCase(("max-parallel: " + "9" * 5000 + "\n").encode(), None))
    @example(ConfigCase(b"tasks: 2024-13-45\n", None))
    @example(ConfigCase(b"tasks: " + b"[" * 3000 + b"]" * 3000 + b"\n", None))
    def test_resolve_accepts_usable_settings_or_names_the_problem(
        self, scratch: Path, case: ConfigCase
    ) -> None:
        """Known and unknown keys, wrong types, nesting, invalid YAML, bad bytes: usable
        settings, or exit 2 naming the key (or the file, when it is not readable YAML)."""
        path = write_case(scratch, case)
        value, exc = attempt(resolve, {}, path)
        if exc is not None:
            check_config_error(exc, case, path)
            return
        assert value is not None
        check_settings(value)

    @pytest.mark.slow
    @SUBPROCESS
    @given(config_cases())
    def test_plan_with_a_config_file(self, tmp_path: Path, case: ConfigCase) -> None:
        """``batchaction plan 1 --config FILE``: exit 0, or exit 2 with one error line."""
        (tmp_path / "TODO.md").write_text(
            "## Tasks\n\n### 1. Only task\n- **Status**: [NOT STARTED]\n", encoding="utf-8"
        )
        path = write_case(tmp_path, case)
        code, out, err = run_cli("plan", "1", "--config", path, cwd=tmp_path)
        assert "Traceback" not in err + out, err
        value, exc = attempt(resolve, {}, path)
        if exc is not None:
            assert code == 2
            # The CLI runner reads text with universal newlines: compare likewise.
            message = f"batchaction: error: {exc}".replace("\r\n", "\n").replace("\r", "\n")
            assert message in err
        elif value is not None and value.todo_path is not None:
            assert code in (0, 2), err  # the configured TODO file may not exist
        else:
            assert code == 0, err

    @pytest.mark.slow
    @SUBPROCESS
    @given(
        st.one_of(
            st.integers(30, 10**12).map(str),
            st.floats(30, 1e15).map(repr),
            st.sampled_from(["720h", "100000h", "9" * 30, "9" * 400, "1e400", ".inf", "25d"]),
        ),
        st.sampled_from(["timeout", "grace"]),
    )
    @example("720h", "timeout")
    @example("9" * 400, "timeout")
    def test_durations_the_loader_accepts_can_run(
        self, tmp_path: Path, duration: str, key: str
    ) -> None:
        """A timeout or grace period accepted from the configuration runs a task to the end."""
        todo = tmp_path / "TODO.md"
        todo.write_text("### 1. Quick\n- **Status**: [NOT STARTED]\n", encoding="utf-8")
        config = tmp_path / "config.yml"
        config.write_text(f"{key}: {duration}\n", encoding="utf-8")
        accepted = attempt(resolve, {}, config).error is None
        code, out, err = run_cli(
            "run", "1", "--config", config, "--executor", "true", cwd=tmp_path, timeout=60
        )
        assert "Traceback" not in err + out, err
        assert code == (0 if accepted else 2), err
        status = todo.read_text(encoding="utf-8")
        assert ("[COMPLETED]" in status) == accepted, status


# --- the command line on mutated files -----------------------------------------------------


class TestCliOnMutatedFiles:
    @pytest.mark.slow
    @SUBPROCESS
    @given(mutated_todo_files(), st.sampled_from(["1-200", "72", "1, 5, 9-12", "40-80"]))
    def test_plan_and_lint(self, tmp_path: Path, mutated: MutatedFile, selection: str) -> None:
        """``plan`` exits 0 or 2 and ``lint`` 0, 1 or 2 (2: the file cannot be read) on any
        mutated real file, no traceback."""
        name, raw = mutated.name, mutated.data
        path = tmp_path / "TODO.md"
        path.write_bytes(raw)
        code, out, err = run_cli("plan", selection, "--todo", path, cwd=tmp_path)
        assert "Traceback" not in err + out, err
        assert code in (0, 2), (name, err)
        code, out, err = run_cli("lint", path, cwd=tmp_path)
        assert "Traceback" not in err + out, err
        readable = first_bad_line(raw) is None
        assert code in ((0, 1) if readable else (2,)), (name, err)
        if not readable:
            assert out.startswith(f"{path}:{first_bad_line(raw)}: error:"), out[:300]
        for line in out.splitlines():
            assert line.startswith(f"{path}:"), line[:200]
