"""Untrusted text stays data: TODO.md content, comments and executor output are never run or
interpreted, the token reaches nobody it should not, and the action stays in its workspace."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
from actionhelpers import (
    TODO_TEXT,
    TOKEN,
    TOKEN_FORMS,
    ActionRun,
    ApiStub,
    Sandbox,
    comment_event,
    dispatch_event,
    make_sandbox,
    marker_executor,
    pull_answer,
    run_action,
    status_of,
)
from conftest import run_cli
from runhelpers import Spec, make_workspace, read_exact, todo_text

from batchaction.executor import WORKFLOW_FILE_VARIABLES
from batchaction.inert import secret_forms

# Shell and workflow-command payloads, as a hostile task author would write them.
TITLES = {
    1: "Run $(touch pwned) now",
    2: "Ticks `touch pwned`; touch pwned && touch pwned | cat",
    3: "::set-output name=x::y",
    4: "::add-mask::not-a-secret <img src=x onerror=alert(1)>",
    5: "</details><script>alert(1)</script> | pipe & more",
}
BODY = "\n".join(
    [
        "$(touch pwned)",
        "`touch pwned`",
        "; touch pwned",
        "x && touch pwned",
        "::set-output name=x::from-body",
        "::add-mask::from-body",
        "::stop-commands::from-body",
    ]
)
DEPENDENCIES = {1: "None", 2: "Task 1 $(touch pwned)", 3: "`touch pwned`; None", 4: "None"}
DEPENDENCIES[5] = "$(touch pwned) && `touch pwned`"


def nasty_specs() -> list[Spec]:
    return [
        Spec(number, deps=DEPENDENCIES[number], title=title, body=BODY)
        for number, title in TITLES.items()
    ]


def pwned_files(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*pwned*"))


# --- the command line: nothing from TODO.md is executed ------------------------------------

ECHO_EVERYTHING = r"""#!/bin/sh
# Echo what the task hands over, quoted and unquoted: expansions are never re-parsed.
env | sort
cat "$BATCH_TASK_FILE"
echo "title: $BATCH_TASK_TITLE"
printf '%s\n' "$BATCH_TASK_TITLE"
echo title unquoted: $BATCH_TASK_TITLE
echo deps: $BATCH_TASK_DEPENDENCIES
printf '%s\n' "$BATCH_TASK_TITLE" > "$DUMP/title-$BATCH_TASK_NUMBER"
cp "$BATCH_TASK_FILE" "$DUMP/task-$BATCH_TASK_NUMBER.json"
"""


class TestTodoContentIsData:
    @pytest.fixture
    def run_nasty(self, tmp_path: Path) -> tuple[Path, Path, Any]:
        ws = make_workspace(tmp_path)
        ws.write(nasty_specs())
        script = tmp_path / "echo_everything.sh"
        script.write_text(ECHO_EVERYTHING, encoding="utf-8")
        dump = tmp_path / "dump"
        dump.mkdir()
        executor = f"sh {shlex.quote(str(script))} {{number}}"
        outcome = ws.run("1-5", "--stream", executor=executor, env={"DUMP": str(dump)})
        return tmp_path, dump, outcome

    def test_titles_bodies_and_dependencies_are_never_executed(
        self, run_nasty: tuple[Path, Path, Any]
    ) -> None:
        """A real run over $(...), backticks, ``;``, ``&&`` and newlines leaves no ``pwned``."""
        root, _, outcome = run_nasty
        assert outcome.code == 0, outcome.err
        assert outcome.outcomes() == dict.fromkeys(TITLES, "completed")
        assert pwned_files(root) == []

    def test_the_executor_gets_the_text_verbatim(self, run_nasty: tuple[Path, Path, Any]) -> None:
        """Title, body and dependency numbers arrive as written, neither run nor rewritten."""
        _, dump, _ = run_nasty
        for number, title in TITLES.items():
            assert (dump / f"title-{number}").read_text(encoding="utf-8") == title + "\n"
            document = json.loads((dump / f"task-{number}.json").read_text(encoding="utf-8"))
            assert document["title"] == title
            assert BODY in document["body"]
            assert document["fields"]["Dependencies"] == DEPENDENCIES[number]
        task = json.loads((dump / "task-2.json").read_text(encoding="utf-8"))
        assert task["dependencies"] == [1]

    def test_streamed_output_never_starts_a_line_with_a_workflow_command(
        self, run_nasty: tuple[Path, Path, Any]
    ) -> None:
        """``--stream`` prefixes every executor line with ``[N]``: ``::...`` never leads a line."""
        _, _, outcome = run_nasty
        assert "[3] ::set-output name=x::y" in outcome.out.splitlines()
        leading = [line for line in outcome.out.split("\n") if line.startswith("::")]
        assert leading == []

    def test_an_executor_that_evaluates_the_title_is_caught(self, tmp_path: Path) -> None:
        """The payloads are live: an executor that ``eval``s the title does create the file."""
        ws = make_workspace(tmp_path)
        ws.write([Spec(1, title=TITLES[1])])
        outcome = ws.run("1", executor='eval "echo $BATCH_TASK_TITLE"')
        assert outcome.code == 0, outcome.err
        assert pwned_files(tmp_path) == [ws.repo / "pwned"]


# --- the action: summary, reply and workflow commands --------------------------------------


def push_todo(sandbox: Sandbox, branch: str, text: str) -> str:
    """Push ``branch`` off ``feature`` with ``text`` as its TODO.md; its sha."""
    author = sandbox.clone(sandbox.root / f"author-{branch}", "feature")
    sandbox.git("checkout", "--quiet", "-b", branch, cwd=author)
    (author / "TODO.md").write_bytes(text.encode("utf-8"))
    sandbox.git("commit", "--quiet", "-am", f"Tasks for {branch}", cwd=author)
    sandbox.git("push", "--quiet", "origin", branch, cwd=author)
    return sandbox.tip(branch)


def split_runner_lines(text: str) -> list[str]:
    """Lines as the Actions runner reads them: ``\\r`` ends a line too."""
    return re.split(r"\r\n|\r|\n", text)


def commands_outside_stop_blocks(text: str) -> tuple[list[str], list[str]]:
    """(``::`` lines the runner would obey, lines inside ``::stop-commands::`` blocks)."""
    obeyed: list[str] = []
    inert: list[str] = []
    token: str | None = None
    for line in split_runner_lines(text):
        if token is not None:
            if line == f"::{token}::":
                token = None
            else:
                inert.append(line)
            continue
        if line.startswith("::stop-commands::"):
            token = line.removeprefix("::stop-commands::")
            assert len(token) >= 32, f"guessable stop token {token!r}"
            continue
        if line.startswith("::"):
            obeyed.append(line)
    assert token is None, "a stop-commands block is never closed"
    return obeyed, inert


OWN_COMMANDS = ("::notice", "::warning", "::error", "::group::", "::endgroup::")
INJECTING_EXECUTOR = r"""
echo "::set-output name=x::from-executor"
echo "::add-mask::from-executor"
echo "::error::from-executor"
echo "::stop-commands::fake"
echo "::fake::"
echo "::endgroup::"
echo "::notice::from-executor-after-fake-block"
printf 'carriage\r::warning::from-executor-cr\n'
echo "::error::from-executor-stderr" >&2
printf '%s\n' "$BATCH_TASK_TITLE"
if [ "$BATCH_TASK_NUMBER" = 1 ]; then
  printf '%s' '{"status": "failed", "summary": "bad\n::error::from-summary\r::notice::from-cr"}' \
    > "$BATCH_RESULT_FILE"
  exit 1
fi
"""


class TestActionOutputIsInert:
    @pytest.fixture
    def nasty_run(self, sandbox: Sandbox, api: ApiStub) -> ActionRun:
        sha = push_todo(sandbox, "nasty", todo_text(nasty_specs()))
        api.serve(role="write", pull=pull_answer("nasty", sha))
        script = sandbox.root / "inject.sh"
        script.write_text(INJECTING_EXECUTOR, encoding="utf-8")
        executor = marker_executor(sandbox, f"sh {shlex.quote(str(script))}")
        return run_action(
            sandbox,
            "issue_comment",
            comment_event("/task 1-5"),
            api_url=api.url,
            inputs={"executor": executor},
        )

    def test_nothing_from_the_todo_runs(self, sandbox: Sandbox, nasty_run: ActionRun) -> None:
        """Task 1 fails by design, 2 is blocked by it, the rest complete; no ``pwned`` file."""
        assert nasty_run.code == 1, nasty_run.err
        outcomes = {t["number"]: t["outcome"] for t in nasty_run.summary["tasks"]}
        assert outcomes == {
            1: "failed",
            2: "blocked",
            3: "completed",
            4: "completed",
            5: "completed",
        }
        assert sandbox.ran() == ["ran-1", "ran-3", "ran-4", "ran-5"]
        assert pwned_files(sandbox.root) == []

    def test_executor_workflow_commands_only_inside_stop_blocks(self, nasty_run: ActionRun) -> None:
        """Everything an executor prints (stdout, stderr, \\r tricks, a fake stop block) is
        shown only between ``::stop-commands::<token>`` and ``::<token>::``."""
        obeyed, inert = commands_outside_stop_blocks(nasty_run.out)
        assert "::set-output name=x::from-executor" in inert
        assert "::error::from-executor-stderr" in inert
        assert "::warning::from-executor-cr" in inert
        assert "::notice::from-executor-after-fake-block" in inert
        assert "::set-output name=x::y" in inert  # a title echoed by the executor
        for line in obeyed:
            masks = {f"::add-mask::{form}" for form in secret_forms(TOKEN)}
            assert line.startswith(OWN_COMMANDS) or line in masks, line
            assert "from-executor" not in line, line
            assert not re.match(r"::\w+::from-", line), line
        assert any(line.startswith("::error file=TODO.md,line=") for line in obeyed)

    def test_stderr_starts_no_workflow_command(self, nasty_run: ActionRun) -> None:
        """The progress lines on stderr fold an executor's summary: it starts no line."""
        assert "from-summary" in nasty_run.err
        assert [line for line in split_runner_lines(nasty_run.err) if line.startswith("::")] == []

    def test_summary_and_reply_escape_the_titles(self, api: ApiStub, nasty_run: ActionRun) -> None:
        """Titles with HTML and table syntax are escaped in the job summary and the PR reply."""
        (reply,) = api.comments()
        for markdown in (nasty_run.step_summary, reply):
            assert "&lt;img src=x onerror=alert(1)&gt;" in markdown
            assert "&lt;/details&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in markdown
            assert "<img" not in markdown
            assert "<script" not in markdown
            assert "</details><script>" not in markdown
            assert "Run $(touch pwned) now" in markdown
            table = [line for line in markdown.splitlines() if line.startswith("| ")]
            assert all(line.count(" | ") == 4 for line in table), table

    def test_the_status_commit_holds_one_line_reasons(
        self, sandbox: Sandbox, nasty_run: ActionRun
    ) -> None:
        """The failure reason written back is one line; the summary adds no line of its own."""
        todo = sandbox.show(sandbox.tip("nasty"), "TODO.md")
        assert status_of(todo, 1) == "[FAILED]"
        assert "\r" not in todo
        (reason,) = [line for line in todo.split("\n") if "from-summary" in line]
        assert reason.startswith("- **Failure Reason**: ")
        assert "from-cr" in reason


# --- the action: /task comments that must run nothing ---------------------------------------


def assert_refused_selection(run: ActionRun, api: ApiStub, sandbox: Sandbox) -> None:
    assert run.code == 2, run.err
    assert api.reactions() == ["confused"]
    (reply,) = api.comments()
    assert "did not run" in reply
    assert "selection" in reply
    assert sandbox.ran() == []
    assert pwned_files(sandbox.root) == []


class TestCommentsThatRunNothing:
    @pytest.mark.parametrize(
        "body",
        [
            "/task $(touch pwned)",
            "/task 1$(touch pwned)",
            "/task `touch pwned` 1",
            "/task 1`touch pwned`",
            "/task 1 && touch pwned",
            "/task 1&&touch pwned",
            "/task 1|touch pwned",
            "/task 1 > pwned",
        ],
    )
    def test_shell_syntax_after_the_command(
        self, sandbox: Sandbox, api: ApiStub, body: str
    ) -> None:
        """Command substitution, backticks, ``&&``, pipes and redirections: exit 2, no run."""
        before = sandbox.refs()
        api.serve(role="admin", pull=pull_answer("feature", sandbox.feature_sha))
        run = run_action(
            sandbox,
            "issue_comment",
            comment_event(body),
            api_url=api.url,
            inputs={"executor": marker_executor(sandbox)},
        )
        assert_refused_selection(run, api, sandbox)
        assert sandbox.refs() == before

    @pytest.mark.parametrize("body", ["/task ٣", "/task ３", "/task 1-３", "/task 𝟓", "/task #٣"])
    def test_look_alike_digits(self, sandbox: Sandbox, api: ApiStub, body: str) -> None:
        """Digits of other scripts are not task numbers: ``/task ٣`` does not run task 3."""
        before = sandbox.refs()
        api.serve(role="admin", pull=pull_answer("feature", sandbox.feature_sha))
        run = run_action(
            sandbox,
            "issue_comment",
            comment_event(body),
            api_url=api.url,
            inputs={"executor": marker_executor(sandbox)},
        )
        assert_refused_selection(run, api, sandbox)
        assert sandbox.refs() == before

    @pytest.mark.parametrize(
        "body",
        ["/task 1\n/task 2-4", "/task 1\r\n/task 2", "/task 1\n$(touch pwned)\n`touch pwned`"],
    )
    def test_only_the_first_line_counts(self, sandbox: Sandbox, api: ApiStub, body: str) -> None:
        """A second ``/task`` or shell text on a later line is not part of the command."""
        api.serve(role="write", pull=pull_answer("feature", sandbox.feature_sha))
        run = run_action(
            sandbox,
            "issue_comment",
            comment_event(body),
            api_url=api.url,
            inputs={"executor": marker_executor(sandbox)},
        )
        assert run.code == 0, run.err
        assert sandbox.ran() == ["ran-1"]
        assert run.outputs["completed"] == "1"
        assert pwned_files(sandbox.root) == []


class TestExecutorsCannotUseFileCommands:
    def test_outputs_env_path_and_summary_are_out_of_reach(
        self, sandbox: Sandbox, api: ApiStub
    ) -> None:
        """The runner's file-command variables are not in an executor's environment, so a
        task cannot forge the step's outputs, later steps' environment or PATH, or the job
        summary through them."""
        api.serve(role="write", pull=pull_answer("feature", sandbox.feature_sha))
        env_file = sandbox.root / "github_env"
        path_file = sandbox.root / "github_path"
        for path in (env_file, path_file):
            path.touch()
        forge = (
            f"env > {shlex.quote(str(sandbox.markers))}/env-$BATCH_TASK_NUMBER; "
            'echo result=forged >> "${GITHUB_OUTPUT:-/dev/null}"; '
            'echo EVIL=1 >> "${GITHUB_ENV:-/dev/null}"; '
            'echo /tmp/evil >> "${GITHUB_PATH:-/dev/null}"; '
            'echo forged-summary >> "${GITHUB_STEP_SUMMARY:-/dev/null}"'
        )
        run = run_action(
            sandbox,
            "issue_comment",
            comment_event("/task 1-2"),
            api_url=api.url,
            inputs={"executor": marker_executor(sandbox, forge)},
            extra_env={"GITHUB_ENV": str(env_file), "GITHUB_PATH": str(path_file)},
        )
        assert run.code == 0, run.err
        for number in (1, 2):
            names = [
                line.split("=", 1)[0]
                for line in (sandbox.markers / f"env-{number}").read_text().splitlines()
            ]
            assert not set(names) & set(WORKFLOW_FILE_VARIABLES), names
        assert run.outputs["result"] == "success"
        assert "forged" not in (sandbox.root / "github_output").read_text()
        assert env_file.read_text() == ""
        assert path_file.read_text() == ""
        assert "forged-summary" not in run.step_summary
        assert "**batchaction** success" in run.step_summary


# --- the action: the token ------------------------------------------------------------------

ENV_DUMP = "env > {markers}/env-$BATCH_TASK_NUMBER"
TOKEN_COPIES = {
    "GITHUB_TOKEN": TOKEN,
    "GH_TOKEN": TOKEN,
    "ACTIONS_RUNTIME_TOKEN": "runtime-secret-value",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "oidc-secret-value",
    "MY_COPY_OF_THE_TOKEN": TOKEN,
}


def files_holding(root: Path, needles: tuple[str, ...], skip: Path) -> list[Path]:
    hits = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink() and skip not in path.parents:
            data = path.read_bytes()
            if any(needle.encode() in data for needle in needles):
                hits.append(path)
    return hits


class TestTokenStaysHidden:
    @pytest.mark.parametrize("expose", ["true", "false"])
    def test_executor_environment_and_every_output(
        self, sandbox: Sandbox, api: ApiStub, expose: str
    ) -> None:
        """With ``expose-token: true`` only GITHUB_TOKEN carries it to executors, never INPUT_*
        or other copies; without it no copy at all. Logs, outputs, summary, reply: never."""
        api.serve(role="write", pull=pull_answer("feature", sandbox.feature_sha))
        dump = ENV_DUMP.format(markers=shlex.quote(str(sandbox.markers)))
        run = run_action(
            sandbox,
            "issue_comment",
            comment_event("/task 1-2"),
            api_url=api.url,
            inputs={"executor": marker_executor(sandbox, dump), "expose-token": expose},
            extra_env=TOKEN_COPIES,
        )
        assert run.code == 0, run.err
        for number in (1, 2):
            lines = (sandbox.markers / f"env-{number}").read_text(encoding="utf-8").splitlines()
            assert not [line for line in lines if line.upper().startswith("INPUT_")]
            holding = [line.split("=", 1)[0] for line in lines if TOKEN in line]
            assert holding == (["GITHUB_TOKEN"] if expose == "true" else [])
            for name in ("GH_TOKEN", "ACTIONS_RUNTIME_TOKEN", "ACTIONS_ID_TOKEN_REQUEST_TOKEN"):
                assert not [line for line in lines if line.startswith(f"{name}=")]
            assert not [line for line in lines if "secret-value" in line]
        assert files_holding(sandbox.root, TOKEN_FORMS, skip=sandbox.markers) == []
        everything = run.out + run.err + run.step_summary + json.dumps(run.outputs)
        leaks = [line for line in everything.splitlines() if TOKEN in line]
        assert leaks == [f"::add-mask::{TOKEN}"]
        for _, where, body in api.requests():
            assert TOKEN not in json.dumps(body), where
        logs = [Path(task["log_path"]) for task in run.summary["tasks"]]
        assert logs
        assert all(TOKEN not in log.read_text(encoding="utf-8") for log in logs)


# --- the action stays inside its workspace; the command line goes where it is told ----------


class TestTodoPathOutsideTheWorkspace:
    @pytest.fixture
    def on_feature(self, tmp_path: Path, template: Path) -> Sandbox:
        sandbox = make_sandbox(tmp_path, template, checkout="feature")
        outside = sandbox.root / "outside"
        outside.mkdir()
        (outside / "TODO.md").write_text(TODO_TEXT, encoding="utf-8")
        (sandbox.workspace / "linked.md").symlink_to(outside / "TODO.md")
        (sandbox.workspace / "docs").symlink_to(outside, target_is_directory=True)
        return sandbox

    @pytest.mark.parametrize(
        "todo_path",
        [
            "../outside/TODO.md",
            "{outside}/TODO.md",
            "linked.md",
            "docs/TODO.md",
            "feature-dir/../../outside/TODO.md",
        ],
    )
    def test_refused_with_exit_2_and_nothing_runs(
        self, on_feature: Sandbox, api: ApiStub, todo_path: str
    ) -> None:
        """``todo-path`` leading out (``..``, absolute, a symlinked file or directory): exit 2."""
        sandbox = on_feature
        outside = sandbox.root / "outside" / "TODO.md"
        before = sandbox.refs()
        run = run_action(
            sandbox,
            "workflow_dispatch",
            dispatch_event("1-4"),
            api_url=api.url,
            inputs={
                "executor": marker_executor(sandbox),
                "todo-path": todo_path.format(outside=outside.parent),
            },
        )
        assert run.code == 2, run.err
        assert "outside the workspace" in run.out
        assert "Traceback" not in run.err
        assert sandbox.ran() == []
        assert sandbox.refs() == before
        assert outside.read_text(encoding="utf-8") == TODO_TEXT
        assert api.requests() == []

    def test_a_path_inside_is_accepted(self, on_feature: Sandbox, api: ApiStub) -> None:
        """The same run with a ``todo-path`` inside the workspace goes ahead."""
        sandbox = on_feature
        run = run_action(
            sandbox,
            "workflow_dispatch",
            dispatch_event("1"),
            api_url=api.url,
            inputs={"executor": marker_executor(sandbox), "todo-path": "./TODO.md"},
        )
        assert run.code == 0, run.err
        assert sandbox.ran() == ["ran-1"]


class TestCommandLineTakesAnyPath:
    @pytest.fixture
    def elsewhere(self, tmp_path: Path) -> tuple[Path, Path]:
        todo = tmp_path / "elsewhere" / "TODO.md"
        todo.parent.mkdir()
        todo.write_text(todo_text([Spec(1), Spec(2, deps="Task 1")]), encoding="utf-8")
        cwd = tmp_path / "cwd"
        cwd.mkdir()
        return todo, cwd

    def test_plan_with_an_absolute_path_outside_the_cwd(self, elsewhere: tuple[Path, Path]) -> None:
        todo, cwd = elsewhere
        code, out, err = run_cli("plan", "1-2", "--todo", str(todo), "--json", cwd=cwd)
        assert code == 0, err
        assert json.loads(out)["waves"] == [[1], [2]]

    def test_run_with_a_relative_path_outside_the_cwd(self, elsewhere: tuple[Path, Path]) -> None:
        todo, cwd = elsewhere
        code, _, err = run_cli(
            "run", "1", "--todo", "../elsewhere/TODO.md", "--executor", "true", cwd=cwd
        )
        assert code == 0, err
        assert status_of(read_exact(todo), 1) == "[COMPLETED]"
