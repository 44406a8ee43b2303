"""Event decisions over the real webhook payload examples (``batchaction.ghevent``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from actionhelpers import load_fixture, permission_answer

from batchaction.errors import BatchError
from batchaction.ghevent import (
    ROLE_RANK,
    command_selection,
    decide,
    is_bot,
    load_event,
    permission_rank,
)

PR_LINKS = {
    "url": "https://api.github.com/repos/Codertocat/Hello-World/pulls/1",
    "html_url": "https://github.com/Codertocat/Hello-World/pull/1",
    "diff_url": "https://github.com/Codertocat/Hello-World/pull/1.diff",
    "patch_url": "https://github.com/Codertocat/Hello-World/pull/1.patch",
    "merged_at": None,
}


def created(body: str | None = None, *, on_pr: bool = True) -> dict[str, Any]:
    payload = load_fixture("issue_comment-created.payload.json")
    if body is not None:
        payload["comment"]["body"] = body
    if on_pr:
        payload["issue"]["pull_request"] = dict(PR_LINKS)
    return payload


def edited(body: str) -> dict[str, Any]:
    payload = load_fixture("issue_comment-edited.payload.json")
    payload["comment"]["body"] = body
    payload["issue"]["pull_request"] = dict(PR_LINKS)
    return payload


class TestIssueComment:
    def test_the_real_created_example_is_ignored(self) -> None:
        """The unmodified example (a plain issue, no command) asks for nothing."""
        payload = created(on_pr=False)
        assert "pull_request" not in payload["issue"]
        trigger = decide("issue_comment", payload, {})
        assert trigger.kind == "ignore"
        assert "/task" in trigger.reason

    def test_command_on_a_plain_issue_is_ignored(self) -> None:
        """A ``/task`` comment on an issue without ``issue.pull_request`` is ignored."""
        trigger = decide("issue_comment", created("/task 1-3", on_pr=False), {})
        assert trigger.kind == "ignore"
        assert "plain issue" in trigger.reason

    def test_command_on_a_pull_request_is_a_comment_trigger(self) -> None:
        """A ``/task`` comment on a PR yields its selection, repository, PR, comment and sender."""
        payload = created("/task 1-3, 7")
        trigger = decide("issue_comment", payload, {"GITHUB_REPOSITORY": "other/place"})
        assert trigger.kind == "comment"
        assert trigger.selection == "1-3, 7"
        assert (trigger.owner, trigger.repo) == ("Codertocat", "Hello-World")
        assert trigger.pr_number == payload["issue"]["number"]
        assert trigger.comment_id == payload["comment"]["id"]
        assert trigger.sender == "Codertocat"
        assert trigger.branch is None

    def test_repository_falls_back_to_the_environment(self) -> None:
        """Without ``repository.full_name`` the owner and name come from GITHUB_REPOSITORY."""
        payload = created("/task 2")
        del payload["repository"]
        trigger = decide("issue_comment", payload, {"GITHUB_REPOSITORY": "octo-org/tasks"})
        assert (trigger.owner, trigger.repo) == ("octo-org", "tasks")

    def test_edited_is_ignored_unless_edits_are_allowed(self) -> None:
        """The edited example is ignored by default and acted on with ``allow_edits``."""
        payload = edited("/task 4")
        assert payload["action"] == "edited"
        ignored = decide("issue_comment", payload, {})
        assert ignored.kind == "ignore"
        assert "allow-edits" in ignored.reason
        accepted = decide("issue_comment", payload, {}, allow_edits=True)
        assert (accepted.kind, accepted.selection) == ("comment", "4")

    def test_deleted_is_ignored_even_with_edits_allowed(self) -> None:
        """A deleted comment never starts a run."""
        payload = created("/task 1")
        payload["action"] = "deleted"
        assert decide("issue_comment", payload, {}, allow_edits=True).kind == "ignore"

    @pytest.mark.parametrize(
        ("login", "kind"),
        [("dependabot[bot]", "Bot"), ("github-actions[bot]", "Bot"), ("my-app[bot]", "User")],
    )
    def test_bot_senders_are_ignored(self, login: str, kind: str) -> None:
        """Comments from bots (``type: Bot`` or a login ending in ``[bot]``) are ignored."""
        payload = created("/task 1")
        payload["sender"].update(login=login, type=kind)
        trigger = decide("issue_comment", payload, {})
        assert trigger.kind == "ignore"
        assert "bot" in trigger.reason

    def test_custom_command(self) -> None:
        """The ``command`` input replaces ``/task``."""
        payload = created("/run 5")
        assert decide("issue_comment", payload, {}).kind == "ignore"
        trigger = decide("issue_comment", payload, {}, command="/run")
        assert (trigger.kind, trigger.selection) == ("comment", "5")

    def test_payload_without_ids_is_an_error(self) -> None:
        """A PR comment payload missing its comment id is reported, not guessed."""
        payload = created("/task 1")
        del payload["comment"]["id"]
        with pytest.raises(BatchError, match="comment id"):
            decide("issue_comment", payload, {})


class TestWorkflowDispatch:
    def test_the_real_example_without_tasks_is_an_error(self) -> None:
        """The example dispatch (inputs without ``tasks``) cannot run and says how to fix it."""
        payload = load_fixture("workflow_dispatch-payload.json")
        assert "tasks" not in payload["inputs"]
        with pytest.raises(BatchError, match="tasks"):
            decide("workflow_dispatch", payload, {})

    def test_tasks_from_the_payload_inputs(self) -> None:
        """``inputs.tasks`` is the selection; ``ref`` gives the branch."""
        payload = load_fixture("workflow_dispatch-payload.json")
        payload["inputs"]["tasks"] = "63, 65-67"
        trigger = decide("workflow_dispatch", payload, {})
        assert trigger.kind == "dispatch"
        assert trigger.selection == "63, 65-67"
        assert trigger.branch == "master"
        assert [trigger.owner, trigger.repo] == payload["repository"]["full_name"].split("/")
        assert trigger.sender == payload["sender"]["login"]
        assert trigger.pr_number is None
        assert trigger.comment_id is None

    def test_tasks_input_wins(self) -> None:
        """The action's ``tasks`` input takes precedence over the payload."""
        payload = load_fixture("workflow_dispatch-payload.json")
        payload["inputs"]["tasks"] = "1"
        assert decide("workflow_dispatch", payload, {}, tasks_input="2-3").selection == "2-3"

    def test_blank_tasks_is_an_error(self) -> None:
        """A whitespace-only selection is the same as none."""
        payload = load_fixture("workflow_dispatch-payload.json")
        payload["inputs"]["tasks"] = "   "
        with pytest.raises(BatchError):
            decide("workflow_dispatch", payload, {})

    def test_tag_ref_has_no_branch(self) -> None:
        """A dispatch on a tag names no branch to commit to."""
        payload = load_fixture("workflow_dispatch-payload.json")
        payload["ref"] = "refs/tags/v1.0"
        assert decide("workflow_dispatch", payload, {}, tasks_input="1").branch is None
        # The runner sets GITHUB_REF_NAME to the tag's name: still no branch to push to.
        env = {"GITHUB_REF": "refs/tags/v1.0", "GITHUB_REF_NAME": "v1.0"}
        assert decide("workflow_dispatch", payload, env, tasks_input="1").branch is None

    def test_ref_name_stands_in_only_without_a_ref(self) -> None:
        payload = load_fixture("workflow_dispatch-payload.json")
        payload.pop("ref", None)
        env = {"GITHUB_REF_NAME": "release"}
        assert decide("workflow_dispatch", payload, env, tasks_input="1").branch == "release"


@pytest.mark.parametrize(
    ("event", "fixture"),
    [
        ("pull_request", "pull_request-opened.payload.json"),
        ("push", "pull_request-opened.payload.json"),
        ("", "issue_comment-created.payload.json"),
    ],
)
def test_other_events_are_ignored(event: str, fixture: str) -> None:
    """Events other than issue_comment and workflow_dispatch are ignored with a reason."""
    trigger = decide(event, load_fixture(fixture), {})
    assert trigger.kind == "ignore"
    assert "nothing to do" in trigger.reason


@pytest.mark.parametrize(
    ("body", "selection"),
    [
        ("/task 1-3", "1-3"),
        ("/task", ""),
        ("/task   63, 65-67  ", "63, 65-67"),
        ("/task\t7", "7"),
        ("\ufeff/task 1", "1"),
        ("/task 1\r\nthanks!", "1"),
        ("/task 1\nand then\n/task 2", "1"),
        ("hello\n/task 1", None),
        ("/tasks 1", None),
        ("/task1", None),
        ("/TASK 1", None),
        ("> /task 1", None),
        ("`/task 1`", None),
        ("", None),
    ],
)
def test_command_selection(body: str, selection: str | None) -> None:
    """Only a first line that is the command (then whitespace and the rest) counts."""
    assert command_selection(body, "/task") == selection


def test_command_selection_keeps_what_follows_for_the_parser() -> None:
    """Shell syntax after the command is handed on verbatim, for the selection parser to refuse."""
    assert command_selection("/task 1; touch pwned", "/task") == "1; touch pwned"
    assert command_selection("/task 1 $(id)", "/task") == "1 $(id)"


def test_is_bot() -> None:
    """``type: Bot`` or a ``[bot]`` login marks a bot; a human login does not."""
    assert is_bot({"login": "x", "type": "Bot"})
    assert is_bot({"login": "renovate[bot]", "type": "User"})
    assert not is_bot({"login": "botanist", "type": "User"})


class TestPermissionRank:
    @pytest.mark.parametrize("role", ["admin", "maintain", "write", "triage", "read"])
    def test_role_name_decides(self, role: str) -> None:
        """``role_name`` gives the exact role even where the legacy ``permission`` is coarser."""
        assert permission_rank(permission_answer(role)) == ROLE_RANK[role]

    def test_ranks_are_ordered(self) -> None:
        """admin > maintain > write > triage > read > none."""
        ranks = [permission_rank(permission_answer(r)) for r in ROLE_RANK]
        assert ranks == sorted(ranks)
        assert len(set(ranks)) == len(ranks)

    def test_no_access(self) -> None:
        """A non-collaborator (``permission: none``, no flags) ranks lowest."""
        answer = permission_answer("none")
        answer["role_name"] = ""
        assert permission_rank(answer) == 0

    @pytest.mark.parametrize(
        ("flags", "role"),
        [
            (
                {"admin": True, "maintain": True, "push": True, "triage": True, "pull": True},
                "admin",
            ),
            (
                {"admin": False, "maintain": True, "push": True, "triage": True, "pull": True},
                "maintain",
            ),
            (
                {"admin": False, "maintain": False, "push": True, "triage": True, "pull": True},
                "write",
            ),
            (
                {"admin": False, "maintain": False, "push": False, "triage": True, "pull": True},
                "triage",
            ),
            (
                {"admin": False, "maintain": False, "push": False, "triage": False, "pull": True},
                "read",
            ),
            (
                {"admin": False, "maintain": False, "push": False, "triage": False, "pull": False},
                "none",
            ),
        ],
    )
    def test_custom_role_falls_back_to_user_permissions(
        self, flags: dict[str, bool], role: str
    ) -> None:
        """A custom role name is ranked by the highest of the user's permission flags."""
        answer = {
            "permission": "read",
            "role_name": "docs-reviewer",
            "user": {"permissions": flags},
        }
        expected = ROLE_RANK[role] if role != "none" else ROLE_RANK["read"]
        assert permission_rank(answer) == expected

    @pytest.mark.parametrize(
        ("permission", "role"),
        [("admin", "admin"), ("write", "write"), ("read", "read"), ("none", "none")],
    )
    def test_legacy_permission_alone(self, permission: str, role: str) -> None:
        """Without ``role_name`` or flags the legacy ``permission`` field is used."""
        assert permission_rank({"permission": permission}) == ROLE_RANK[role]

    def test_custom_role_without_a_user_object(self) -> None:
        """``user`` may be null in GitHub's schema: the legacy ``permission`` still ranks it."""
        answer = {"permission": "write", "role_name": "release-manager", "user": None}
        assert permission_rank(answer) == ROLE_RANK["write"]

    def test_empty_or_odd_answers_rank_lowest(self) -> None:
        """Unknown shapes grant nothing."""
        assert permission_rank({}) == 0
        assert permission_rank({"permission": "superuser", "role_name": 5}) == 0


class TestLoadEvent:
    def test_reads_a_real_payload(self, fixtures_dir: Path) -> None:
        """The event file is read as a JSON object."""
        path = fixtures_dir / "github" / "workflow_dispatch-payload.json"
        assert load_event(str(path))["ref"] == "refs/heads/master"

    def test_missing_path_and_file(self, tmp_path: Path) -> None:
        """No GITHUB_EVENT_PATH, or a path that does not exist, is a clear error."""
        with pytest.raises(BatchError, match="GITHUB_EVENT_PATH"):
            load_event(None)
        with pytest.raises(BatchError, match="not found"):
            load_event(str(tmp_path / "nope.json"))

    @pytest.mark.parametrize("content", ["[1, 2]", "{not json", '"text"'])
    def test_not_an_object(self, tmp_path: Path, content: str) -> None:
        """A payload that is not a JSON object is refused."""
        path = tmp_path / "event.json"
        path.write_text(content, encoding="utf-8")
        with pytest.raises(BatchError):
            load_event(str(path))

    def test_round_trip_of_a_fixture(self, tmp_path: Path) -> None:
        """A payload written by the tests reads back unchanged."""
        payload = created("/task 1")
        path = tmp_path / "event.json"
        path.write_text(json.dumps(payload), encoding="utf-8")
        assert load_event(str(path)) == payload
