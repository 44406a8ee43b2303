"""Helpers for the tests that run ``batchaction action`` as a real process.

A sandbox holds a bare repository (the remote), a clone of it (the workspace), a home directory
for git, and files for GitHub's workflow outputs. A local HTTP server (pytest-httpserver) answers
the REST calls with the shapes GitHub really sends; event payloads are built from the real
webhook examples in the shared fixtures.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Response

# Byte-for-byte copies of the shared real-world fixtures (provenance in fixtures/README.md).
FIXTURES = Path(__file__).resolve().parent / "fixtures"
GITHUB_FIXTURES = FIXTURES / "github"

TOKEN = "ghs_testtoken123"
TOKEN_FORMS = (TOKEN, base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode())
BOT_NAME = "github-actions[bot]"
BOT_EMAIL = "41898282+github-actions[bot]@users.noreply.github.com"
BOT = f"{BOT_NAME} <{BOT_EMAIL}>"
OWNER = "octo-org"
NAME = "hello-tasks"
REPOSITORY = f"{OWNER}/{NAME}"
PR_NUMBER = 7
COMMENT_ID = 4242
REPLY_ID = 99001  # the id every comment the action posts is given
CHECK_RUN_ID = 5001  # and every check run it creates
COMMENTER = "maintainer-jo"
SERVER_URL = "https://github.example"
RUN_ID = "987654321"

HUMAN = "Test Maintainer <maintainer@example.invalid>"
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Test Maintainer",
    "GIT_AUTHOR_EMAIL": "maintainer@example.invalid",
    "GIT_COMMITTER_NAME": "Test Maintainer",
    "GIT_COMMITTER_EMAIL": "maintainer@example.invalid",
}

TODO_TEXT = """\
# TODO

## Tasks

### 1. Lay the foundation
- **Effort**: 1 hour
- **Status**: [NOT STARTED]
- **Dependencies**: None

### 2. Build on the foundation
- **Effort**: 1 hour
- **Status**: [NOT STARTED]
- **Dependencies**: Task 1

### 3. Decorate
- **Effort**: 1 hour
- **Status**: [NOT STARTED]
- **Dependencies**: Task 1

### 4. Independent chore
- **Effort**: 1 hour
- **Status**: [NOT STARTED]
- **Dependencies**: None

### 5. Left for later
- **Effort**: 1 hour
- **Status**: [NOT STARTED]
- **Dependencies**: None

Body of task five.

## Notes

Free text that is not a task.
"""


def load_fixture(name: str) -> dict[str, Any]:
    """One real webhook payload from the shared fixtures."""
    path = GITHUB_FIXTURES / name
    if not path.is_file():
        raise AssertionError(f"missing fixture {path}: the shared fixtures must be present")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _retarget_repository(payload: dict[str, Any]) -> None:
    repo = payload["repository"]
    repo["full_name"] = REPOSITORY
    repo["name"] = NAME
    repo["owner"]["login"] = OWNER


def comment_event(
    body: str,
    *,
    action: str = "created",
    on_pull_request: bool = True,
    sender: str = COMMENTER,
    sender_type: str = "User",
    created_at: str | None = None,
) -> dict[str, Any]:
    """An ``issue_comment`` payload (from the real examples) for a comment holding ``body``,
    made at ``created_at`` (ISO 8601; default: now, after the sandbox's commits)."""
    name = f"issue_comment-{'edited' if action == 'edited' else 'created'}.payload.json"
    payload = load_fixture(name)
    payload["action"] = action
    payload["comment"]["body"] = body
    payload["comment"]["id"] = COMMENT_ID
    payload["comment"]["user"]["login"] = sender
    payload["comment"]["user"]["type"] = sender_type
    stamp = created_at or dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    payload["comment"]["created_at"] = payload["comment"]["updated_at"] = stamp
    issue = payload["issue"]
    issue["number"] = PR_NUMBER
    issue.pop("pull_request", None)
    if on_pull_request:
        base = f"https://api.github.com/repos/{REPOSITORY}/pulls/{PR_NUMBER}"
        html = f"https://github.com/{REPOSITORY}/pull/{PR_NUMBER}"
        issue["pull_request"] = {
            "url": base,
            "html_url": html,
            "diff_url": f"{html}.diff",
            "patch_url": f"{html}.patch",
            "merged_at": None,
        }
    _retarget_repository(payload)
    payload["sender"]["login"] = sender
    payload["sender"]["type"] = sender_type
    return payload


def dispatch_event(tasks: str | None, ref: str = "refs/heads/feature") -> dict[str, Any]:
    """A ``workflow_dispatch`` payload (from the real example) with ``inputs.tasks``."""
    payload = load_fixture("workflow_dispatch-payload.json")
    payload["inputs"] = {} if tasks is None else {"tasks": tasks}
    payload["ref"] = ref
    _retarget_repository(payload)
    return payload


def other_event() -> dict[str, Any]:
    """A ``pull_request`` / ``opened`` payload, an event the action does not act on."""
    payload = load_fixture("pull_request-opened.payload.json")
    _retarget_repository(payload)
    return payload


def pull_answer(
    ref: str, sha: str, *, head_repo: str | None = REPOSITORY, state: str = "open"
) -> dict[str, Any]:
    """``GET /repos/{o}/{r}/pulls/{n}``: the real example's pull request, retargeted."""
    pull: dict[str, Any] = copy.deepcopy(
        load_fixture("pull_request-opened.payload.json")["pull_request"]
    )
    pull["number"] = PR_NUMBER
    pull["state"] = state
    pull["head"]["ref"] = ref
    pull["head"]["sha"] = sha
    pull["head"]["label"] = f"{(head_repo or 'ghost/x').split('/')[0]}:{ref}"
    if head_repo is None:
        pull["head"]["repo"] = None
    else:
        pull["head"]["repo"]["full_name"] = head_repo
        pull["head"]["repo"]["name"] = head_repo.split("/")[1]
        pull["head"]["repo"]["owner"]["login"] = head_repo.split("/")[0]
        pull["head"]["repo"]["fork"] = head_repo != REPOSITORY
    pull["base"]["ref"] = "main"
    pull["base"]["repo"]["full_name"] = REPOSITORY
    pull["base"]["repo"]["name"] = NAME
    pull["base"]["repo"]["owner"]["login"] = OWNER
    return pull


LEGACY_PERMISSION = {
    "admin": "admin",
    "maintain": "write",
    "write": "write",
    "triage": "read",
    "read": "read",
    "none": "none",
}


def permission_answer(role: str, login: str = COMMENTER) -> dict[str, Any]:
    """``GET .../collaborators/{u}/permission`` as GitHub shapes it for a role."""
    order = ["read", "triage", "write", "maintain", "admin"]
    rank = order.index(role) if role in order else -1
    flags = {
        "pull": rank >= 0,
        "triage": rank >= 1,
        "push": rank >= 2,
        "maintain": rank >= 3,
        "admin": rank >= 4,
    }
    return {
        "permission": LEGACY_PERMISSION.get(role, "none"),
        "role_name": role,
        "user": {
            "login": login,
            "id": 1001,
            "type": "User",
            "site_admin": False,
            "permissions": flags,
            "role_name": role,
        },
    }


FORBIDDEN = {
    "message": "Resource not accessible by integration",
    "documentation_url": "https://docs.github.com/rest/reactions/reactions",
    "status": "403",
}


def _edited_comment(request: Any) -> Any:
    """The answer to ``PATCH /repos/{o}/{r}/issues/comments/{id}``: the comment, edited."""
    body = (request.get_json(silent=True) or {}).get("body", "")
    answer = {
        "id": REPLY_ID,
        "body": body,
        "user": {"login": BOT_NAME, "type": "Bot"},
        "html_url": f"https://github.com/{REPOSITORY}/pull/{PR_NUMBER}#issuecomment-{REPLY_ID}",
        "updated_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    return Response(json.dumps(answer), 200, content_type="application/json")


def _check_run(request: Any, check_id: int, state: dict[str, Any]) -> Any:
    """A check run as GitHub answers ``POST``/``PATCH .../check-runs``: the fields sent over
    the run's state so far (https://docs.github.com/en/rest/checks/runs)."""
    sent = request.get_json(silent=True) or {}
    run = {
        "id": check_id,
        "node_id": "CR_kwDOAAAB",
        "head_sha": "",
        "external_id": "",
        "status": "queued",
        "conclusion": None,
        "details_url": None,
        "html_url": f"https://github.com/{REPOSITORY}/runs/{check_id}",
        "app": {"slug": "github-actions", "name": "GitHub Actions"},
        "check_suite": {"id": 77},
        "pull_requests": [],
        **state,
        **sent,
    }
    return Response(json.dumps(run), 201 if request.method == "POST" else 200,
                    content_type="application/json")  # fmt: skip


@dataclass
class ApiStub:
    """The GitHub REST API as far as the action uses it, on a local HTTP server."""

    server: HTTPServer

    @property
    def url(self) -> str:
        return self.server.url_for("").rstrip("/")

    def serve(
        self,
        *,
        role: str = "write",
        pull: dict[str, Any] | None = None,
        permission_status: int = 200,
        write_status: int = 201,
        timeline: list[dict[str, Any]] | None = None,
    ) -> None:
        """Answer the permission, pull, timeline (``timeline``, default empty), reaction and
        comment calls (writes: ``write_status``)."""
        base = f"/repos/{REPOSITORY}"
        perm = self.server.expect_request(
            f"{base}/collaborators/{COMMENTER}/permission", method="GET"
        )
        if permission_status == 200:
            perm.respond_with_json(permission_answer(role))
        else:
            perm.respond_with_json(
                {
                    "message": "Not Found" if permission_status == 404 else "Server Error",
                    "documentation_url": "https://docs.github.com/rest",
                },
                status=permission_status,
            )
        if pull is not None:
            self.server.expect_request(f"{base}/pulls/{PR_NUMBER}", method="GET").respond_with_json(
                pull
            )
        self.server.expect_request(
            f"{base}/issues/{PR_NUMBER}/timeline", method="GET"
        ).respond_with_json(timeline or [])
        self.server.expect_request(
            f"{base}/issues/comments/{COMMENT_ID}/reactions", method="POST"
        ).respond_with_json(
            {
                "id": 1,
                "node_id": "MDg6UmVhY3Rpb24x",
                "user": {"login": BOT_NAME, "type": "Bot"},
                "content": "eyes",
                "created_at": "2024-01-01T00:00:00Z",
            }
            if write_status < 400
            else FORBIDDEN,
            status=write_status,
        )
        self.server.expect_request(
            f"{base}/issues/{PR_NUMBER}/comments", method="POST"
        ).respond_with_json(
            {
                "id": REPLY_ID,
                "body": "reply",
                "user": {"login": BOT_NAME, "type": "Bot"},
                "html_url": f"https://github.com/{REPOSITORY}/pull/{PR_NUMBER}#issuecomment-99001",
            }
            if write_status < 400
            else FORBIDDEN,
            status=write_status,
        )

        self.server.expect_request(
            f"{base}/issues/comments/{REPLY_ID}", method="PATCH"
        ).respond_with_handler(_edited_comment)
        self.server.expect_request(f"{base}/check-runs", method="POST").respond_with_handler(
            lambda request: _check_run(request, CHECK_RUN_ID, {})
        )
        self.server.expect_request(
            f"{base}/check-runs/{CHECK_RUN_ID}", method="PATCH"
        ).respond_with_handler(lambda request: _check_run(request, CHECK_RUN_ID, self.check()))

    def check(self) -> dict[str, Any]:
        """The check run ``CHECK_RUN_ID`` as the requests so far left it (POST, then PATCHes)."""
        runs = [(m, b or {}) for m, p, b in self.requests() if p.endswith("/check-runs")]
        state: dict[str, Any] = dict(runs[0][1]) if runs else {}
        for method, path, body in self.requests():
            if path.endswith(f"/check-runs/{CHECK_RUN_ID}") and method == "PATCH":
                state.update(body or {})
        return state

    def check_requests(self) -> list[tuple[str, dict[str, Any]]]:
        """(method, JSON body) of every check-run request, in order."""
        return [(m, b or {}) for m, p, b in self.requests() if "/check-runs" in p]

    def edits(self) -> list[str]:
        """The bodies the reply was edited to (``PATCH .../issues/comments/<id>``), in order."""
        return [
            str(body["body"])
            for m, p, body in self.requests()
            if m == "PATCH" and p.endswith(f"/issues/comments/{REPLY_ID}")
        ]

    def requests(self) -> list[tuple[str, str, Any]]:
        """(method, path, JSON body or None) of every request that arrived, in order."""
        seen = []
        for request, _ in self.server.log:
            body = request.get_json(silent=True) if request.data else None
            seen.append((request.method, request.path, body))
        return seen

    def reactions(self) -> list[str]:
        return [str(body["content"]) for m, p, body in self.requests() if p.endswith("/reactions")]

    def comments(self) -> list[str]:
        """The comments posted, each as a reader sees it at the end: its last edit (every
        POST is answered with id ``REPLY_ID``, so edits apply to the last comment posted)."""
        posted = [
            str(body["body"])
            for m, p, body in self.requests()
            if m == "POST" and p.endswith(f"/issues/{PR_NUMBER}/comments")
        ]
        edits = self.edits()
        if posted and edits:
            posted[-1] = edits[-1]
        return posted

    def headers(self) -> list[dict[str, str]]:
        return [dict(request.headers) for request, _ in self.server.log]


@dataclass
class Sandbox:
    """A bare remote, a workspace clone, a home directory and run files, under ``root``."""

    root: Path
    home: Path
    remote: Path
    workspace: Path
    markers: Path
    tmp: Path
    main_sha: str = ""
    feature_sha: str = ""

    def env(self) -> dict[str, str]:
        """The environment for git commands run by the tests."""
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_TERMINAL_PROMPT": "0",
            "LC_ALL": "C",
            **GIT_IDENTITY,
        }

    def git(self, *args: str, cwd: Path | None = None, check: bool = True) -> str:
        proc = subprocess.run(
            ["git", *args],
            cwd=cwd or self.remote,
            env=self.env(),
            capture_output=True,
            text=True,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr}{proc.stdout}")
        return proc.stdout.strip()

    def refs(self) -> dict[str, str]:
        """Every ref of the remote: name -> sha."""
        out = self.git("for-each-ref", "--format=%(refname) %(objectname)")
        return dict(line.split() for line in out.splitlines())

    def tip(self, branch: str) -> str:
        return self.refs()[f"refs/heads/{branch}"]

    def show(self, rev: str, path: str) -> str:
        return self.git("show", f"{rev}:{path}")

    def is_ancestor(self, older: str, newer: str) -> bool:
        proc = subprocess.run(
            ["git", "merge-base", "--is-ancestor", older, newer],
            cwd=self.remote,
            env=self.env(),
            capture_output=True,
            check=False,
        )
        return proc.returncode == 0

    def people(self, rev: str) -> tuple[str, str]:
        """(author, committer) of a remote commit, as ``Name <email>``."""
        author, committer = self.git("log", "-1", "--format=%an <%ae>%n%cn <%ce>", rev).split("\n")
        return author, committer

    def subjects(self, rev_range: str) -> list[str]:
        out = self.git("log", "--format=%s", rev_range)
        return out.splitlines()

    def merges(self, rev_range: str) -> list[str]:
        return self.git("rev-list", "--merges", rev_range).split()

    def ref_log(self, branch: str) -> list[tuple[str, str]]:
        """(old, new) for every update of a remote branch, oldest first."""
        log = self.remote / "logs" / "refs" / "heads" / branch
        if not log.exists():
            return []
        updates = []
        for line in log.read_text(encoding="utf-8").splitlines():
            old, new = line.split()[:2]
            updates.append((old, new))
        return updates

    def clone(self, dest: Path, branch: str) -> Path:
        self.git("clone", "--quiet", "--branch", branch, str(self.remote), str(dest), cwd=self.root)
        return dest

    def ran(self) -> list[str]:
        """Names of the marker files executors left (one per task run)."""
        return sorted(p.name for p in self.markers.iterdir())


def build_template(root: Path) -> Path:
    """Build once what every sandbox starts from: the remote and a workspace per branch.

    The remote has ``main`` and ``feature`` (one commit ahead of main); copying this is much
    faster than building it again for every test.
    """
    sandbox = Sandbox(root, root / "home", root / "remote.git", root / "seed", root, root)
    sandbox.home.mkdir()
    sandbox.git("init", "--quiet", "--bare", "-b", "main", str(sandbox.remote), cwd=root)
    # Force pushes are refused, and every ref update is logged.
    sandbox.git("config", "receive.denyNonFastForwards", "true")
    sandbox.git("config", "core.logAllRefUpdates", "always")
    seed = root / "seed"
    sandbox.git("clone", "--quiet", str(sandbox.remote), str(seed), cwd=root)
    (seed / "TODO.md").write_text(TODO_TEXT, encoding="utf-8")
    (seed / "README.md").write_text("Hello tasks.\n", encoding="utf-8")
    sandbox.git("add", "TODO.md", "README.md", cwd=seed)
    sandbox.git("commit", "--quiet", "-m", "Add the task list", cwd=seed)
    sandbox.git("push", "--quiet", "origin", "main", cwd=seed)
    sandbox.git("checkout", "--quiet", "-b", "feature", cwd=seed)
    (seed / "feature.txt").write_text("work on the feature branch\n", encoding="utf-8")
    sandbox.git("add", "feature.txt", cwd=seed)
    sandbox.git("commit", "--quiet", "-m", "Start the feature", cwd=seed)
    sandbox.git("push", "--quiet", "origin", "feature", cwd=seed)
    for branch in ("main", "feature"):
        sandbox.clone(root / f"workspace-{branch}", branch)
    return root


def make_sandbox(root: Path, template: Path, *, checkout: str = "main") -> Sandbox:
    """A fresh copy of ``template`` under ``root``, with the workspace on ``checkout``."""
    sandbox = Sandbox(
        root=root,
        home=root / "home",
        remote=root / "remote.git",
        workspace=root / "workspace",
        markers=root / "markers",
        tmp=root / "tmp",
    )
    for path in (sandbox.home, sandbox.markers, sandbox.tmp):
        path.mkdir()
    shutil.copytree(template / "remote.git", sandbox.remote, symlinks=True)
    shutil.copytree(template / f"workspace-{checkout}", sandbox.workspace, symlinks=True)
    sandbox.git("remote", "set-url", "origin", str(sandbox.remote), cwd=sandbox.workspace)
    sandbox.main_sha = sandbox.tip("main")
    sandbox.feature_sha = sandbox.tip("feature")
    return sandbox


def marker_executor(sandbox: Sandbox, extra: str = "") -> str:
    """An executor that leaves ``ran-N`` (holding branch, or ``detached`` in a task's
    worktree, and HEAD) in the markers directory."""
    marker = shlex.quote(str(sandbox.markers)) + "/ran-{number}"
    record = (
        f"{{ git symbolic-ref --short -q HEAD || echo detached; git rev-parse HEAD; }} > {marker}"
    )
    return record + (f" && {extra}" if extra else "")


@dataclass
class ActionRun:
    """What one ``batchaction action`` process left behind."""

    code: int
    out: str
    err: str
    outputs: dict[str, str]
    step_summary: str
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def summary(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.outputs["summary-json"])
        return data


def parse_outputs(text: str) -> dict[str, str]:
    """Read a GITHUB_OUTPUT file the way the runner does: ``k=v`` lines and ``k<<DELIM`` blocks."""
    values: dict[str, str] = {}
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line:
            continue
        eq, heredoc = line.find("="), line.find("<<")
        if eq != -1 and (heredoc == -1 or eq < heredoc):
            values[line[:eq]] = line[eq + 1 :]
            continue
        if heredoc == -1:
            raise AssertionError(f"invalid output line {line!r}")
        name, delimiter = line[:heredoc], line[heredoc + 2 :]
        body: list[str] = []
        while True:
            if i >= len(lines):
                raise AssertionError(f"output {name!r}: delimiter {delimiter!r} never closes")
            if lines[i] == delimiter:
                i += 1
                break
            body.append(lines[i])
            i += 1
        values[name] = "\n".join(body)
    return values


def action_setup(
    sandbox: Sandbox,
    event_name: str,
    payload: dict[str, Any] | None,
    *,
    api_url: str,
    inputs: dict[str, str] | None = None,
    extra_env: dict[str, str] | None = None,
) -> tuple[dict[str, Path], dict[str, str]]:
    """The event, output and job summary files (fresh), and the environment a GitHub runner
    gives the action: (files by name, environment)."""
    files = {
        "event": sandbox.root / "event.json",
        "output": sandbox.root / "github_output",
        "summary": sandbox.root / "step_summary.md",
    }
    for path in files.values():
        path.unlink(missing_ok=True)
    files["output"].touch()
    files["summary"].touch()
    if payload is not None:
        files["event"].write_text(json.dumps(payload), encoding="utf-8")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(sandbox.home),
        "TMPDIR": str(sandbox.tmp),
        "LANG": "C.UTF-8",
        "GIT_CONFIG_NOSYSTEM": "1",
        **GIT_IDENTITY,
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": event_name,
        "GITHUB_EVENT_PATH": str(files["event"]),
        "GITHUB_WORKSPACE": str(sandbox.workspace),
        "GITHUB_OUTPUT": str(files["output"]),
        "GITHUB_STEP_SUMMARY": str(files["summary"]),
        "GITHUB_API_URL": api_url,
        "GITHUB_REPOSITORY": REPOSITORY,
        "GITHUB_SERVER_URL": SERVER_URL,
        "GITHUB_RUN_ID": RUN_ID,
        "INPUT_GITHUB-TOKEN": TOKEN,
        "INPUT_MAX-PARALLEL": "2",
    }
    if "PYTHONPATH" in os.environ:  # to run the action of another checkout (old code)
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    for name, value in (inputs or {}).items():
        env[f"INPUT_{name.upper()}"] = value
    env.update(extra_env or {})
    return files, env


def start_action(
    sandbox: Sandbox,
    event_name: str,
    payload: dict[str, Any],
    *,
    api_url: str,
    inputs: dict[str, str] | None = None,
) -> subprocess.Popen[str]:
    """``python -m batchaction action`` in the background, as a runner starts it; its output
    goes to ``action.out`` and ``action.err`` under the sandbox."""
    _, env = action_setup(sandbox, event_name, payload, api_url=api_url, inputs=inputs)
    out = (sandbox.root / "action.out").open("w", encoding="utf-8")
    err = (sandbox.root / "action.err").open("w", encoding="utf-8")
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "batchaction", "action"],
            cwd=sandbox.root, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
            text=True,
        )  # fmt: skip
    finally:
        out.close()
        err.close()


def run_action(
    sandbox: Sandbox,
    event_name: str,
    payload: dict[str, Any] | None,
    *,
    api_url: str,
    inputs: dict[str, str] | None = None,
    extra_env: dict[str, str] | None = None,
    timeout: float = 60,
) -> ActionRun:
    """Run ``python -m batchaction action`` with the environment a GitHub runner gives it."""
    files, env = action_setup(
        sandbox, event_name, payload, api_url=api_url, inputs=inputs, extra_env=extra_env
    )
    proc = subprocess.run(
        [sys.executable, "-m", "batchaction", "action"],
        cwd=sandbox.root,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    return ActionRun(
        proc.returncode,
        proc.stdout,
        proc.stderr,
        parse_outputs(files["output"].read_text(encoding="utf-8")),
        files["summary"].read_text(encoding="utf-8"),
        files,
    )


def status_of(text: str, number: int) -> str:
    """The Status value of task ``number`` in a TODO text."""
    from batchaction.todo import parse_todo

    (task,) = [t for t in parse_todo(text).tasks if t.number == number]
    status = task.field("status")
    assert status is not None
    return status.value
