"""The real container image runs the action: a workflow_dispatch run pushes its statuses.

Needs an image built by ``bash .ci/container.sh build`` (buildah, daemonless). CI sets
BATCHACTION_CONTAINER_TESTS=required, which turns a missing image into a failure instead of
a skip.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / ".ci" / "container.sh"
IMAGE = os.environ.get("BATCHACTION_IMAGE", "localhost/batchaction:ci")
REQUIRED = os.environ.get("BATCHACTION_CONTAINER_TESTS") == "required"

pytestmark = pytest.mark.container

TODO = """# TODO

### 1. Write the schema
**Status**: [NOT STARTED]
**Dependencies**: None

### 2. Write the storage layer
**Status**: [NOT STARTED]
**Dependencies**: Task 1

### 3. Write the API
**Status**: [NOT STARTED]
**Dependencies**: 2
"""

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test Maintainer",
    "GIT_AUTHOR_EMAIL": "maintainer@example.invalid",
    "GIT_COMMITTER_NAME": "Test Maintainer",
    "GIT_COMMITTER_EMAIL": "maintainer@example.invalid",
}


def _image_available() -> bool:
    if shutil.which("podman") is None or not SCRIPT.is_file():
        return False
    probe = subprocess.run(
        ["bash", str(SCRIPT), "podman", "image", "exists", IMAGE],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


@pytest.fixture(scope="module")
def image() -> str:
    if not _image_available():
        if REQUIRED:
            pytest.fail(f"container image {IMAGE} is missing: run `bash .ci/container.sh build`")
        pytest.skip("no container image (build it with `bash .ci/container.sh build`)")
    return IMAGE


def git(*args: str, cwd: Path) -> str:
    env = {**os.environ, **GIT_ENV}
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True
    ).stdout


def seed(tmp_path: Path) -> tuple[Path, Path]:
    """A bare remote whose ``main`` holds TODO, and a clone of it: (remote, workspace)."""
    remote = tmp_path / "remote.git"
    workspace = tmp_path / "ws"
    git("init", "--quiet", "--bare", "--initial-branch=main", str(remote), cwd=tmp_path)
    git("init", "--quiet", "--initial-branch=main", str(workspace), cwd=tmp_path)
    (workspace / "TODO.md").write_text(TODO, encoding="utf-8")
    git("add", "TODO.md", cwd=workspace)
    git("commit", "--quiet", "-m", "Add tasks", cwd=workspace)
    git("remote", "add", "origin", str(remote), cwd=workspace)
    git("push", "--quiet", "origin", "main", cwd=workspace)
    return remote, workspace


def test_workflow_dispatch_in_the_image_pushes_statuses(image: str, tmp_path: Path) -> None:
    """The image's entrypoint runs a dispatched selection and pushes the bot's status commit."""
    remote, workspace = seed(tmp_path)
    before = git("rev-parse", "main", cwd=remote).strip()

    event = tmp_path / "event.json"
    event.write_text(
        json.dumps(
            {
                "inputs": {"tasks": "1-3"},
                "ref": "refs/heads/main",
                "repository": {"full_name": "octo/notes"},
                "sender": {"login": "mona", "type": "User"},
            }
        ),
        encoding="utf-8",
    )
    output = tmp_path / "output.txt"
    step_summary = tmp_path / "summary.md"
    output.touch()
    step_summary.touch()
    token = "ghs_containertoken123"
    env = {
        "GITHUB_EVENT_NAME": "workflow_dispatch",
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_WORKSPACE": "/github/workspace",
        "GITHUB_OUTPUT": str(output),
        "GITHUB_STEP_SUMMARY": str(step_summary),
        "GITHUB_REPOSITORY": "octo/notes",
        "GITHUB_REF": "refs/heads/main",
        "INPUT_EXECUTOR": 'echo "task {number} in $PWD"; env > "env-{number}.txt"',
        "INPUT_GITHUB-TOKEN": token,
    }
    argv = ["bash", str(SCRIPT), "run", "-v", f"{tmp_path}:{tmp_path}"]
    argv += ["-v", f"{workspace}:/github/workspace"]
    for key, value in env.items():
        argv += ["-e", f"{key}={value}"]
    argv.append(image)
    started = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    took = time.monotonic() - started
    print(f"container run took {took:.1f}s")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr

    after = git("rev-parse", "main", cwd=remote).strip()
    assert after != before
    assert git("merge-base", "--is-ancestor", before, after, cwd=remote) == ""
    author = git("log", "-1", "--format=%an <%ae>|%s", "main", cwd=remote)
    assert author.startswith(
        "github-actions[bot] <41898282+github-actions[bot]@users.noreply.github.com>|"
    )
    assert "tasks: 1-3 completed" in author
    pushed = git("show", "main:TODO.md", cwd=remote)
    assert pushed.count("**Status**: [COMPLETED]") == 3
    assert pushed.count("**Completed**:") == 3

    outputs = output.read_text(encoding="utf-8")
    assert "success" in outputs
    assert after in outputs
    assert "| **3** Write the API |" in step_summary.read_text(encoding="utf-8")
    # The executors ran in the workspace, without the token or any INPUT_ variable.
    for number in (1, 2, 3):
        dump = (workspace / f"env-{number}.txt").read_text(encoding="utf-8")
        assert token not in dump
        assert "INPUT_" not in dump
        assert f"BATCH_TASK_NUMBER={number}" in dump
    assert token not in proc.stdout.replace(f"::add-mask::{token}", "")
    assert token not in proc.stderr


# Run as the workspace's owner, each executor records its uid, how many processes' environment
# or command line hold the token (the literal below is split so that its own does not), and
# how many root processes' environment it can read.
PROBE = (
    "id -u > uid-{number}.txt; leaks=0; readable=0; "
    "for p in /proc/[0-9]*; do "
    'if cat "$p/environ" "$p/cmdline" 2>/dev/null | tr "\\0" "\\n" '
    '| grep -q "ghs_container""token123"; then leaks=$((leaks+1)); fi; '
    'if [ "$(stat -c %u "$p")" = 0 ] && cat "$p/environ" >/dev/null 2>&1; then '
    "readable=$((readable+1)); fi; done; "
    "echo $leaks > leaks-{number}.txt; echo $readable > root-environ-{number}.txt"
)


def test_executors_run_as_the_workspace_owner_and_cannot_read_the_token(
    image: str, tmp_path: Path
) -> None:
    """The action runs as root in the image; the workspace belongs to uid 1001 (the runner's
    user on GitHub): executors run as 1001, see no form of the token in any process, and
    cannot read a root process's environment. The run still commits and pushes."""
    remote, workspace = seed(tmp_path)
    subprocess.run(["chown", "-R", "1001:1001", str(workspace)], check=True)
    event = tmp_path / "event.json"
    event.write_text(
        json.dumps({"inputs": {"tasks": "1-2"}, "ref": "refs/heads/main",
                    "repository": {"full_name": "octo/notes"},
                    "sender": {"login": "mona", "type": "User"}}),
        encoding="utf-8",
    )  # fmt: skip
    output = tmp_path / "output.txt"
    output.touch()
    env = {
        "GITHUB_EVENT_NAME": "workflow_dispatch",
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_WORKSPACE": "/github/workspace",
        "GITHUB_OUTPUT": str(output),
        "GITHUB_REPOSITORY": "octo/notes",
        "GITHUB_REF": "refs/heads/main",
        "INPUT_EXECUTOR": PROBE,
        "INPUT_GITHUB-TOKEN": "ghs_containertoken123",
    }
    argv = ["bash", str(SCRIPT), "run", "-v", f"{tmp_path}:{tmp_path}"]
    argv += ["-v", f"{workspace}:/github/workspace"]
    for key, value in env.items():
        argv += ["-e", f"{key}={value}"]
    argv.append(image)
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "success" in output.read_text(encoding="utf-8")
    pushed = git("show", "main:TODO.md", cwd=remote)
    assert pushed.count("**Status**: [COMPLETED]") == 2
    for number in (1, 2):
        assert (workspace / f"uid-{number}.txt").read_text().strip() == "1001"
        assert (workspace / f"leaks-{number}.txt").read_text().strip() == "0"
        assert (workspace / f"root-environ-{number}.txt").read_text().strip() == "0"
