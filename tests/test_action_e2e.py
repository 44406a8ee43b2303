"""``batchaction action`` end to end: real git remote, real HTTP API stub, real webhook payloads."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest
from actionhelpers import (
    BOT,
    COMMENTER,
    PR_NUMBER,
    REPOSITORY,
    RUN_ID,
    SERVER_URL,
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
    other_event,
    pull_answer,
    run_action,
    status_of,
)

from batchaction import gitops

OUTPUT_NAMES = {
    "result",
    "completed",
    "failed",
    "blocked",
    "skipped",
    "waves",
    "summary-json",
    "commit-sha",
    "pushed",
    "summary-path",
    "log-dir",
}


def comment_run(
    sandbox: Sandbox,
    api: ApiStub,
    body: str,
    *,
    executor: str | None = None,
    inputs: dict[str, str] | None = None,
    **event: Any,
) -> ActionRun:
    return run_action(
        sandbox,
        "issue_comment",
        comment_event(body, **event),
        api_url=api.url,
        inputs={"executor": executor or marker_executor(sandbox), **(inputs or {})},
    )


def assert_nothing_happened(sandbox: Sandbox, before: dict[str, str]) -> None:
    """No executor ran, no ref of the remote moved, the workspace holds no change."""
    assert sandbox.ran() == []
    assert sandbox.refs() == before
    assert sandbox.git("status", "--porcelain", cwd=sandbox.workspace) == ""
    assert (sandbox.workspace / "TODO.md").read_text(encoding="utf-8") == TODO_TEXT


def assert_refused(run: ActionRun, api: ApiStub, *words: str) -> str:
    """One confused reaction, one reply saying why, no eyes and no rocket."""
    assert api.reactions() == ["confused"], api.requests()
    (reply,) = api.comments()
    assert "did not run" in reply
    for word in words:
        assert word in reply
    assert "::notice::batchaction did not run" in run.out
    return reply


class TestAuthorizedComment:
    def test_runs_on_the_pr_head_and_pushes_a_bot_commit(
        self, sandbox: Sandbox, api: ApiStub
    ) -> None:
        """A writer's ``/task 1-3`` runs on ``feature`` at the API's sha (each task in a
        worktree of it) and pushes there."""
        api.serve(role="write", pull=pull_answer("feature", sandbox.feature_sha))
        run = comment_run(sandbox, api, "/task 1-3")
        assert run.code == 0, run.err
        assert sandbox.ran() == ["ran-1", "ran-2", "ran-3"]
        for number in (1, 2, 3):
            branch, head = (sandbox.markers / f"ran-{number}").read_text().split()
            assert (branch, head) == ("detached", sandbox.feature_sha)
        tip = sandbox.tip("feature")
        assert sandbox.tip("main") == sandbox.main_sha
        assert sandbox.git("rev-parse", f"{tip}^") == sandbox.feature_sha
        assert sandbox.people(tip) == (BOT, BOT)
        assert sandbox.subjects(f"{sandbox.feature_sha}..{tip}") == ["tasks: 1-3 completed"]
        todo = sandbox.show(tip, "TODO.md")
        assert [status_of(todo, n) for n in (1, 2, 3, 4)] == ["[COMPLETED]"] * 3 + ["[NOT STARTED]"]
        assert sandbox.show(tip, "feature.txt") == "work on the feature branch"
        assert sandbox.ref_log("feature")[-1] == (sandbox.feature_sha, tip)

    def test_reactions_reply_outputs_and_step_summary(self, sandbox: Sandbox, api: ApiStub) -> None:
        """Eyes then rocket, a reply holding the Markdown summary, all outputs, the job summary."""
        api.serve(role="write", pull=pull_answer("feature", sandbox.feature_sha))
        run = comment_run(sandbox, api, "/task 1-3, 99")
        assert run.code == 0, run.err
        assert api.reactions() == ["eyes", "rocket"]
        calls = [(method, path) for method, path, _ in api.requests()]
        assert calls[:2] == [
            ("GET", f"/repos/{REPOSITORY}/collaborators/{COMMENTER}/permission"),
            ("GET", f"/repos/{REPOSITORY}/pulls/{PR_NUMBER}"),
        ]
        assert set(run.outputs) == OUTPUT_NAMES
        assert run.outputs["result"] == "success"
        assert run.outputs["completed"] == "1-3"
        assert run.outputs["failed"] == ""
        assert run.outputs["blocked"] == ""
        assert run.outputs["skipped"] == "99"
        assert json.loads(run.outputs["waves"]) == [[1], [2, 3]]
        assert run.outputs["commit-sha"] == sandbox.tip("feature")
        summary = run.summary
        assert summary["commit"]["pushed"] is True
        assert summary["commit"]["branch"] == "feature"
        assert {t["number"]: t["outcome"] for t in summary["tasks"]} == {
            1: "completed",
            2: "completed",
            3: "completed",
        }
        markdown = run.step_summary.strip()
        assert "**batchaction** success" in markdown
        (reply,) = api.comments()
        assert markdown in reply
        assert f"{SERVER_URL}/{REPOSITORY}/actions/runs/{RUN_ID}" in reply

    def test_a_failed_task_reacts_confused_and_still_commits(
        self, sandbox: Sandbox, api: ApiStub
    ) -> None:
        """Task 1 fails: 2 and 3 are blocked, the statuses are pushed, the reaction is confused."""
        api.serve(role="admin", pull=pull_answer("feature", sandbox.feature_sha))
        fail_one = marker_executor(sandbox, 'test "$BATCH_TASK_NUMBER" != 1')
        run = comment_run(sandbox, api, "/task 1-4", executor=fail_one)
        assert run.code == 1
        assert api.reactions() == ["eyes", "confused"]
        assert run.outputs["result"] == "failure"
        assert (run.outputs["failed"], run.outputs["blocked"]) == ("1", "2-3")
        assert run.outputs["completed"] == "4"
        todo = sandbox.show(sandbox.tip("feature"), "TODO.md")
        assert [status_of(todo, n) for n in (1, 2, 3, 4)] == [
            "[FAILED]",
            "[BLOCKED]",
            "[BLOCKED]",
            "[COMPLETED]",
        ]
        assert sandbox.people("refs/heads/feature")[1] == BOT
        # The annotation points at task 1's Status line (line 7 of the file).
        assert TODO_TEXT.splitlines()[6] == "- **Status**: [NOT STARTED]"
        errors = [line for line in run.out.splitlines() if line.startswith("::error ")]
        assert errors == ["::error file=TODO.md,line=7::task 1 failed: exit code 1"], errors
        (reply,) = api.comments()
        assert "failure" in reply

    def test_refused_reactions_and_replies_do_not_stop_the_run(
        self, sandbox: Sandbox, api: ApiStub
    ) -> None:
        """A token that may not react or comment (403) still runs and pushes, with warnings."""
        api.serve(role="write", pull=pull_answer("feature", sandbox.feature_sha), write_status=403)
        run = comment_run(sandbox, api, "/task 4")
        assert run.code == 0, run.err
        assert sandbox.ran() == ["ran-4"]
        assert sandbox.people("refs/heads/feature") == (BOT, BOT)
        assert "::warning::could not add a reaction" in run.out
        assert "::warning::could not reply on the pull request" in run.out
        assert api.reactions() == ["eyes", "rocket"]

    def test_edited_comment_runs_when_edits_are_allowed(
        self, sandbox: Sandbox, api: ApiStub
    ) -> None:
        """With ``allow-edits: true`` an edited ``/task`` comment starts a run."""
        api.serve(role="maintain", pull=pull_answer("feature", sandbox.feature_sha))
        run = comment_run(sandbox, api, "/task 4", action="edited", inputs={"allow-edits": "true"})
        assert run.code == 0, run.err
        assert sandbox.ran() == ["ran-4"]
        assert api.reactions() == ["eyes", "rocket"]
        assert sandbox.tip("main") == sandbox.main_sha
        assert sandbox.people("refs/heads/feature") == (BOT, BOT)

    def test_command_and_allow_edits_from_the_configuration_file(
        self, sandbox: Sandbox, api: ApiStub
    ) -> None:
        """``.github/batchaction.yml`` on the checked-out default branch may set ``command``
        and ``allow-edits`` too: an edited ``/run`` comment runs, ``/task`` is only noticed."""
        config = sandbox.workspace / ".github" / "batchaction.yml"
        config.parent.mkdir(exist_ok=True)
        config.write_text("command: /run\nallow-edits: true\n", encoding="utf-8")
        api.serve(role="write", pull=pull_answer("feature", sandbox.feature_sha))
        ignored = comment_run(sandbox, api, "/task 4")
        assert ignored.code == 0, ignored.err
        assert sandbox.ran() == []
        assert api.requests() == []
        run = comment_run(sandbox, api, "/run 4", action="edited")
        assert run.code == 0, run.err
        assert sandbox.ran() == ["ran-4"]
        assert api.reactions() == ["eyes", "rocket"]

    def test_add_paths_commits_matching_files_only(self, sandbox: Sandbox, api: ApiStub) -> None:
        """Files matching ``add-paths`` get a commit under the status commit; others stay out."""
        api.serve(role="write", pull=pull_answer("feature", sandbox.feature_sha))
        write = "mkdir -p out && echo report > out/report-{number}.txt && echo x > scratch.txt"
        run = comment_run(
            sandbox, api, "/task 4", executor=write,
            inputs={"add-paths": "out/*.txt", "isolation": "none"},
        )  # fmt: skip
        assert run.code == 0, run.err
        tip = sandbox.tip("feature")
        files = sandbox.git("ls-tree", "-r", "--name-only", tip).split()
        assert "out/report-4.txt" in files
        assert "scratch.txt" not in files
        assert sandbox.people(tip) == (BOT, BOT)
        assert sandbox.subjects(f"{sandbox.feature_sha}..{tip}") == [
            "tasks: 4 completed",
            gitops.FILES_MESSAGE,
        ]
        assert sandbox.git("diff", "--name-only", f"{tip}^", tip).split() == ["TODO.md"]
        # What did not match stays in the workspace, uncommitted; the lock is excluded.
        assert sandbox.git("status", "--porcelain", cwd=sandbox.workspace).splitlines() == [
            "?? scratch.txt",
        ]
        exclude = (sandbox.workspace / ".git" / "info" / "exclude").read_text()
        assert "/TODO.md.lock" in exclude.splitlines()

    def test_add_paths_reads_a_rename_as_one_path(self, sandbox: Sandbox, api: ApiStub) -> None:
        """``git status -z`` gives a rename's source as a field of its own: not a path."""
        api.serve(role="write", pull=pull_answer("feature", sandbox.feature_sha))
        run = comment_run(
            sandbox, api, "/task 4", executor="git mv README.md GUIDE.md",
            inputs={"add-paths": "*.md", "isolation": "none"},
        )  # fmt: skip
        assert run.code == 0, run.err
        tip = sandbox.tip("feature")
        files = sandbox.git("ls-tree", "-r", "--name-only", tip).split()
        assert "GUIDE.md" in files
        assert "README.md" not in files

    def test_fork_head_runs_when_allowed_and_pushes_nothing(
        self, sandbox: Sandbox, api: ApiStub
    ) -> None:
        """With ``allow-forks: true`` the tasks run on the fork's head, fetched as
        ``refs/pull/N/head`` at the sha the API gave, even when the fork's branch shares a name
        with one of ours, when the comment pins that sha; nothing is pushed and the run says
        why."""
        fork = sandbox.clone(sandbox.root / "fork", "feature")
        (fork / "from-the-fork.txt").write_text("fork change\n", encoding="utf-8")
        sandbox.git("add", "from-the-fork.txt", cwd=fork)
        sandbox.git("commit", "--quiet", "-m", "Fork change", cwd=fork)
        fork_sha = sandbox.git("rev-parse", "HEAD", cwd=fork)
        pull_ref = f"refs/pull/{PR_NUMBER}/head"
        sandbox.git("push", "--quiet", "origin", f"HEAD:{pull_ref}", cwd=fork)
        before = sandbox.refs()
        api.serve(
            role="write", pull=pull_answer("main", fork_sha, head_repo="stranger/hello-tasks")
        )
        run = comment_run(
            sandbox, api, f"/task 1-3 @{fork_sha[:7]}", inputs={"allow-forks": "true"}
        )
        assert run.code == 0, run.err
        assert sandbox.ran() == ["ran-1", "ran-2", "ran-3"]
        assert sandbox.refs() == before
        assert sandbox.git("rev-parse", "HEAD", cwd=sandbox.workspace) == fork_sha
        assert sandbox.git("symbolic-ref", "--short", "HEAD", cwd=sandbox.workspace) == (
            f"pr-{PR_NUMBER}"
        )
        assert (sandbox.workspace / "from-the-fork.txt").exists()
        todo = (sandbox.workspace / "TODO.md").read_text(encoding="utf-8")
        assert [status_of(todo, n) for n in (1, 2, 3)] == ["[COMPLETED]"] * 3
        assert "::warning::the tasks ran on a head in the fork stranger/hello-tasks" in run.out
        assert run.outputs["result"] == "success"
        assert run.outputs["commit-sha"] == ""
        assert api.reactions() == ["eyes", "rocket"]
        (reply,) = api.comments()
        assert "**batchaction** success" in reply

    def test_commit_never_pushes_nothing(self, sandbox: Sandbox, api: ApiStub) -> None:
        """``commit: never`` runs the tasks but leaves every remote ref where it was."""
        before = sandbox.refs()
        api.serve(role="write", pull=pull_answer("feature", sandbox.feature_sha))
        run = comment_run(sandbox, api, "/task 4", inputs={"commit": "never"})
        assert run.code == 0, run.err
        assert sandbox.ran() == ["ran-4"]
        assert sandbox.refs() == before
        assert run.outputs["commit-sha"] == ""
        # The statuses are written, left uncommitted in the workspace.
        status = sandbox.git("status", "--porcelain", cwd=sandbox.workspace).splitlines()
        assert [line.strip() for line in status] == ["M TODO.md"]
        assert status_of((sandbox.workspace / "TODO.md").read_text(), 4) == "[COMPLETED]"


class TestNothingRuns:
    @pytest.mark.parametrize("role", ["read", "triage"])
    def test_too_little_permission_is_refused(
        self, sandbox: Sandbox, api: ApiStub, role: str
    ) -> None:
        """A commenter below ``write`` gets a refusal and a confused reaction; nothing runs."""
        before = sandbox.refs()
        api.serve(role=role, pull=pull_answer("feature", sandbox.feature_sha))
        run = comment_run(sandbox, api, "/task 1-3")
        assert run.code == 0, run.err
        assert_refused(run, api, role, "`write` is needed")
        assert_nothing_happened(sandbox, before)
        assert run.outputs == {}

    def test_lower_permission_input_lets_triage_run(self, sandbox: Sandbox, api: ApiStub) -> None:
        """``permission: triage`` accepts a triager's comment."""
        api.serve(role="triage", pull=pull_answer("feature", sandbox.feature_sha))
        run = comment_run(sandbox, api, "/task 4", inputs={"permission": "triage"})
        assert run.code == 0, run.err
        assert sandbox.ran() == ["ran-4"]

    @pytest.mark.parametrize(
        ("login", "kind"),
        [("dependabot[bot]", "Bot"), ("helper-app", "Bot")],
    )
    def test_bot_senders_cause_no_api_call(
        self, sandbox: Sandbox, api: ApiStub, login: str, kind: str
    ) -> None:
        """A comment from a bot is ignored without a single request to the API."""
        before = sandbox.refs()
        api.serve(role="admin", pull=pull_answer("feature", sandbox.feature_sha))
        run = comment_run(sandbox, api, "/task 1-3", sender=login, sender_type=kind)
        assert run.code == 0, run.err
        assert api.requests() == []
        assert "::notice::" in run.out
        assert_nothing_happened(sandbox, before)

    def test_edited_comment_is_only_noticed(self, sandbox: Sandbox, api: ApiStub) -> None:
        """An edited ``/task`` comment (without allow-edits) leaves a notice and nothing else."""
        before = sandbox.refs()
        api.serve(role="admin", pull=pull_answer("feature", sandbox.feature_sha))
        run = comment_run(sandbox, api, "/task 1-3", action="edited")
        assert run.code == 0, run.err
        assert "::notice::" in run.out
        assert "allow-edits" in run.out
        assert api.requests() == []
        assert_nothing_happened(sandbox, before)

    def test_fork_head_is_refused(self, sandbox: Sandbox, api: ApiStub) -> None:
        """A PR whose head lives in a fork runs nothing and pushes nothing (the default)."""
        before = sandbox.refs()
        api.serve(
            role="admin",
            pull=pull_answer("feature", sandbox.feature_sha, head_repo="stranger/hello-tasks"),
        )
        run = comment_run(sandbox, api, "/task 1-3")
        assert run.code == 0, run.err
        assert_refused(run, api, "fork", "allow-forks")
        assert_nothing_happened(sandbox, before)

    def test_deleted_head_repository_is_refused(self, sandbox: Sandbox, api: ApiStub) -> None:
        """A PR whose head repository is gone (``head.repo: null``) runs nothing, even when
        forks are allowed."""
        before = sandbox.refs()
        api.serve(role="admin", pull=pull_answer("feature", sandbox.feature_sha, head_repo=None))
        run = comment_run(sandbox, api, "/task 1", inputs={"allow-forks": "true"})
        assert_refused(run, api, "deleted")
        assert_nothing_happened(sandbox, before)

    def test_closed_pull_request_is_refused(self, sandbox: Sandbox, api: ApiStub) -> None:
        """A ``/task`` comment on a closed PR runs nothing."""
        before = sandbox.refs()
        api.serve(role="admin", pull=pull_answer("feature", sandbox.feature_sha, state="closed"))
        run = comment_run(sandbox, api, "/task 1")
        assert_refused(run, api, "closed")
        assert_nothing_happened(sandbox, before)

    @pytest.mark.parametrize("status", [404, 500])
    def test_permission_api_errors_deny(self, sandbox: Sandbox, api: ApiStub, status: int) -> None:
        """When the permission API answers with an error the run is refused."""
        before = sandbox.refs()
        api.serve(permission_status=status, pull=pull_answer("feature", sandbox.feature_sha))
        run = comment_run(sandbox, api, "/task 1-3")
        assert run.code == 0, run.err
        assert_refused(run, api, "could not verify", str(status))
        assert not any(p.endswith("/pulls/7") for _, p, _ in api.requests())
        assert_nothing_happened(sandbox, before)

    def test_head_sha_no_longer_on_the_branch(self, sandbox: Sandbox, api: ApiStub) -> None:
        """An API head sha the remote branch does not hold (a force push) runs nothing."""
        before = sandbox.refs()
        api.serve(role="write", pull=pull_answer("feature", "0" * 40))
        run = comment_run(sandbox, api, "/task 1-3")
        assert run.code == 1
        assert api.reactions() == ["eyes", "confused"]
        assert sandbox.ran() == []
        assert sandbox.refs() == before

    @pytest.mark.parametrize(
        "body",
        [
            "hello\n/task 1",
            "Please run these:\r\n/task 1-3\r\n",
            "> /task 1",
        ],
    )
    def test_command_not_alone_on_the_first_line(
        self, sandbox: Sandbox, api: ApiStub, body: str
    ) -> None:
        """Only a first line that is the command itself starts anything."""
        before = sandbox.refs()
        api.serve(role="admin", pull=pull_answer("feature", sandbox.feature_sha))
        run = comment_run(sandbox, api, body)
        assert run.code == 0, run.err
        assert api.requests() == []
        assert_nothing_happened(sandbox, before)

    def test_comment_on_a_plain_issue(self, sandbox: Sandbox, api: ApiStub) -> None:
        """``/task`` on an issue that is not a pull request is ignored."""
        before = sandbox.refs()
        api.serve(role="admin", pull=pull_answer("feature", sandbox.feature_sha))
        run = comment_run(sandbox, api, "/task 1-3", on_pull_request=False)
        assert run.code == 0, run.err
        assert "plain issue" in run.out
        assert api.requests() == []
        assert_nothing_happened(sandbox, before)

    def test_unrelated_event(self, sandbox: Sandbox, api: ApiStub) -> None:
        """A ``pull_request`` event leaves a notice, exits 0, and runs nothing."""
        before = sandbox.refs()
        run = run_action(
            sandbox,
            "pull_request",
            other_event(),
            api_url=api.url,
            inputs={"executor": marker_executor(sandbox)},
        )
        assert run.code == 0, run.err
        assert "::notice::batchaction: nothing to do for a pull_request event" in run.out
        assert api.requests() == []
        assert_nothing_happened(sandbox, before)

    @pytest.mark.parametrize(
        "body",
        [
            "/task 1; touch pwned",
            "/task 1 $(touch pwned)",
            "/task 1 `touch pwned`",
        ],
    )
    def test_shell_metacharacters_are_an_invalid_selection(
        self, sandbox: Sandbox, api: ApiStub, body: str
    ) -> None:
        """Shell syntax after the selection is refused as invalid; no command from it runs."""
        before = sandbox.refs()
        api.serve(role="admin", pull=pull_answer("feature", sandbox.feature_sha))
        run = comment_run(sandbox, api, body)
        assert run.code == 2, run.err
        assert_refused(run, api, "selection")
        assert_nothing_happened(sandbox, before)
        assert list(sandbox.root.rglob("pwned")) == []


def push_branch(sandbox: Sandbox, name: str, *, link_todo_to: str | None = None) -> str:
    """Push a branch ``name`` off ``feature``, optionally with TODO.md made a symlink."""
    author = sandbox.clone(sandbox.root / f"author-{name}", "feature")
    sandbox.git("checkout", "--quiet", "-b", name, cwd=author)
    if link_todo_to is not None:
        (author / "TODO.md").unlink()
        (author / "TODO.md").symlink_to(link_todo_to)
    (author / "branch.txt").write_text(name, encoding="utf-8")
    sandbox.git("add", "-A", cwd=author)
    sandbox.git("commit", "--quiet", "-m", f"Branch {name}", cwd=author)
    sandbox.git("push", "--quiet", "origin", name, cwd=author)
    return sandbox.tip(name)


class TestTodoOnTheHead:
    def test_todo_found_on_the_head_when_the_default_branch_has_none(
        self, sandbox: Sandbox, api: ApiStub
    ) -> None:
        """A PR that brings TODO.md runs even though the default-branch checkout has none."""
        sandbox.git("rm", "--quiet", "TODO.md", cwd=sandbox.workspace)
        sandbox.git("commit", "--quiet", "-m", "No task list yet", cwd=sandbox.workspace)
        api.serve(role="write", pull=pull_answer("feature", sandbox.feature_sha))
        run = comment_run(sandbox, api, "/task 1")
        assert run.code == 0, run.err
        assert sandbox.ran() == ["ran-1"]
        assert status_of(sandbox.show("refs/heads/feature", "TODO.md"), 1) == "[COMPLETED]"

    def test_todo_symlink_leaving_the_workspace_is_refused(
        self, sandbox: Sandbox, api: ApiStub
    ) -> None:
        """A head whose TODO.md links outside the workspace runs nothing and writes nothing."""
        outside = sandbox.root / "outside.md"
        outside.write_text(TODO_TEXT, encoding="utf-8")
        sha = push_branch(sandbox, "linked", link_todo_to="../outside.md")
        before = sandbox.refs()
        api.serve(role="write", pull=pull_answer("linked", sha))
        run = comment_run(sandbox, api, "/task 1")
        assert run.code == 2, run.err
        assert api.reactions() == ["eyes", "confused"]
        (reply,) = api.comments()
        assert "outside the workspace" in reply
        assert sandbox.ran() == []
        assert sandbox.refs() == before
        assert outside.read_text(encoding="utf-8") == TODO_TEXT


class TestDispatch:
    @pytest.fixture
    def on_feature(self, tmp_path: Path, template: Path) -> Sandbox:
        """A sandbox whose workspace is checked out on ``feature`` (as actions/checkout does)."""
        return make_sandbox(tmp_path, template, checkout="feature")

    def test_dispatch_commits_to_the_dispatched_branch(
        self, on_feature: Sandbox, api: ApiStub
    ) -> None:
        """A dispatch with ``inputs.tasks`` commits as the bot to its branch and writes outputs."""
        sandbox = on_feature
        run = run_action(
            sandbox,
            "workflow_dispatch",
            dispatch_event("2, 1"),
            api_url=api.url,
            inputs={"executor": marker_executor(sandbox)},
        )
        assert run.code == 0, run.err
        assert sandbox.ran() == ["ran-1", "ran-2"]
        tip = sandbox.tip("feature")
        assert sandbox.git("rev-parse", f"{tip}^") == sandbox.feature_sha
        assert sandbox.people(tip) == (BOT, BOT)
        assert sandbox.tip("main") == sandbox.main_sha
        assert set(run.outputs) == OUTPUT_NAMES
        assert run.outputs["commit-sha"] == tip
        assert run.outputs["completed"] == "1-2"
        assert json.loads(run.outputs["waves"]) == [[1], [2]]
        assert "**batchaction** success" in run.step_summary
        assert api.requests() == []

    def test_tasks_input_wins_over_the_payload(self, on_feature: Sandbox, api: ApiStub) -> None:
        """The action's ``tasks`` input is the selection when it is set."""
        sandbox = on_feature
        run = run_action(
            sandbox,
            "workflow_dispatch",
            dispatch_event("1"),
            api_url=api.url,
            inputs={"executor": marker_executor(sandbox), "tasks": "4"},
        )
        assert run.code == 0, run.err
        assert sandbox.ran() == ["ran-4"]

    def test_dispatch_without_tasks_fails_cleanly(self, on_feature: Sandbox, api: ApiStub) -> None:
        """A dispatch with no selection at all is an input error that runs nothing."""
        sandbox = on_feature
        before = sandbox.refs()
        run = run_action(
            sandbox,
            "workflow_dispatch",
            dispatch_event(None),
            api_url=api.url,
            inputs={"executor": marker_executor(sandbox)},
        )
        assert run.code == 2
        assert "::error::" in run.out
        assert "Traceback" not in run.err
        assert sandbox.ran() == []
        assert sandbox.refs() == before


def files_holding(root: Path, needles: tuple[str, ...]) -> list[Path]:
    hits = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            if any(needle.encode() in data for needle in needles):
                hits.append(path)
    return hits


class TestTokenStaysHidden:
    def test_executors_and_outputs_never_hold_the_token(
        self, sandbox: Sandbox, api: ApiStub
    ) -> None:
        """No executor environment, file, output, comment or log line carries the token."""
        api.serve(role="write", pull=pull_answer("feature", sandbox.feature_sha))
        dump = shlex.quote(str(sandbox.markers)) + "/env-{number}"
        executor = marker_executor(sandbox, f'env > {dump} && echo "task $BATCH_TASK_NUMBER ok"')
        run = comment_run(sandbox, api, "/task 1-3", executor=executor)
        assert run.code == 0, run.err
        dumps = [sandbox.markers / f"env-{n}" for n in (1, 2, 3)]
        for path in dumps:
            text = path.read_text(encoding="utf-8")
            assert "INPUT_" not in text
            assert "BATCH_TASK_NUMBER=" in text
            for form in TOKEN_FORMS:
                assert form not in text
        logs = [Path(t["log_path"]) for t in run.summary["tasks"]]
        # The logs are kept under the workspace (they outlive a container), out of git.
        assert all(log.is_file() and sandbox.workspace in log.parents for log in logs)
        assert files_holding(sandbox.root, TOKEN_FORMS) == []
        for method, where, body in api.requests():
            assert TOKEN not in json.dumps(body), (method, where)
        assert all(header.get("Authorization") == f"Bearer {TOKEN}" for header in api.headers())
        lines = [line for line in (run.out + run.err).splitlines() if TOKEN in line]
        assert lines == [f"::add-mask::{TOKEN}"]


def test_fixture_payloads_are_real(fixtures_dir: Path) -> None:
    """The payloads the end-to-end tests start from are the shared real webhook examples."""
    names = {p.name for p in (fixtures_dir / "github").glob("*.json")}
    assert {
        "issue_comment-created.payload.json",
        "issue_comment-edited.payload.json",
        "workflow_dispatch-payload.json",
        "pull_request-opened.payload.json",
    } <= names
