"""Parts of ``batchaction action`` that the end-to-end sandboxes never reach: git's
safe.directory, token authentication over HTTP, and the PR reply's length limit."""

from __future__ import annotations

import base64
import io
import subprocess
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from batchaction import action
from batchaction.actioncontext import Context
from batchaction.ghevent import Trigger
from batchaction.github import GitHub
from batchaction.workflow import Workflow

TOKEN = "ghs_partsTestToken0123456789abcdefABCDEF"


@pytest.fixture
def git_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private global git configuration for the git processes the action starts."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    return home


def global_safe_directories() -> list[str]:
    out = subprocess.run(
        ["git", "config", "--global", "--get-all", "safe.directory"],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.split()


def context(workspace: Path, env: dict[str, str], gh: GitHub | None = None) -> Context:
    trigger = Trigger("comment", owner="octo-org", repo="hello", pr_number=7, comment_id=1)
    return Context(env, Workflow(env, io.StringIO()), workspace, TOKEN, gh, trigger)


class TestSafeDirectory:
    def test_workspace_is_added_once(self, tmp_path: Path, git_home: Path) -> None:
        """The workspace becomes a safe.directory (a container runs as root on files the
        runner's user owns); a second run adds no duplicate."""
        workspace = tmp_path / "ws"
        workspace.mkdir()
        action.ensure_safe_directory(workspace)
        action.ensure_safe_directory(workspace)
        assert global_safe_directories() == [str(workspace)]

    def test_a_wildcard_already_there_is_enough(self, tmp_path: Path, git_home: Path) -> None:
        subprocess.run(["git", "config", "--global", "safe.directory", "*"], check=True)
        workspace = tmp_path / "ws"
        workspace.mkdir()
        action.ensure_safe_directory(workspace)
        assert global_safe_directories() == ["*"]


class TestTokenAuthentication:
    def test_git_sends_the_token_and_never_stores_it(
        self, tmp_path: Path, git_home: Path, httpserver: HTTPServer
    ) -> None:
        """With no credentials from the checkout, a fetch from the server sends the token as
        GitHub expects (basic, x-access-token), and .git/config never holds it."""
        seen: list[str] = []

        def handler(request: Request) -> Response:
            seen.append(request.headers.get("Authorization", ""))
            if not seen[-1]:  # git sends credentials once asked for them, as GitHub does
                return Response("", status=401, headers={"WWW-Authenticate": 'Basic realm="x"'})
            return Response("not here", status=404)

        httpserver.expect_request("/octo-org/hello.git/info/refs").respond_with_handler(handler)
        server = httpserver.url_for("/").rstrip("/")
        workspace = tmp_path / "ws"
        subprocess.run(["git", "init", "-q", str(workspace)], check=True)
        remote = f"{server}/octo-org/hello.git"
        subprocess.run(["git", "remote", "add", "origin", remote], cwd=workspace, check=True)
        ctx = context(workspace, {"GITHUB_SERVER_URL": server})
        access = ctx.remote_access()
        fetched = action.gitops.git("fetch", "origin", cwd=workspace, access=access, check=False)
        assert fetched.returncode != 0  # the server has no repository; the header is the point
        expected = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
        assert seen[-1].lower() == f"basic {expected}".lower()
        stored = (workspace / ".git" / "config").read_text(encoding="utf-8")
        assert TOKEN not in stored
        assert expected not in stored

    def test_credentials_left_by_the_checkout_are_used_as_they_are(
        self, tmp_path: Path, git_home: Path
    ) -> None:
        workspace = tmp_path / "ws"
        subprocess.run(["git", "init", "-q", str(workspace)], check=True)
        subprocess.run(
            ["git", "config", "http.https://github.com/.extraheader", "AUTHORIZATION: basic x"],
            cwd=workspace,
            check=True,
        )
        assert context(workspace, {}).remote_access().token is None


class TestReplyLength:
    def test_a_long_reply_is_cut_under_githubs_limit_with_a_link_to_the_run(
        self, tmp_path: Path, httpserver: HTTPServer
    ) -> None:
        """GitHub refuses comment bodies over 65,536 characters: a longer reply is cut at a
        line end and ends with a link to the run, where the whole summary is."""
        httpserver.expect_request(
            "/repos/octo-org/hello/issues/7/comments", method="POST"
        ).respond_with_json({"id": 1}, status=201)
        env = {
            "GITHUB_SERVER_URL": "https://github.com",
            "GITHUB_REPOSITORY": "octo-org/hello",
            "GITHUB_RUN_ID": "4242",
        }
        gh = GitHub(httpserver.url_for("/").rstrip("/"), TOKEN)
        try:
            body = "".join(f"| row {i} | {'x' * 60} |\n" for i in range(2000))
            assert len(body) > 65_536
            context(tmp_path, env, gh).reply(body)
        finally:
            gh.close()
        (request, _response) = httpserver.log[-1]
        posted = request.get_json()["body"]
        assert len(posted) < 65_536
        marker, posted = posted.split("\n", 1)  # the invisible marker a retry looks for
        assert marker.startswith("<!-- batchaction:")
        assert marker.endswith(" -->")
        assert posted.endswith(
            "(truncated: the whole summary is in "
            "[the run](https://github.com/octo-org/hello/actions/runs/4242))\n"
        )
        kept = posted.split("\n\n…(truncated")[0]
        assert body.startswith(kept + "\n")
