"""Shared test setup: the real-world fixtures, hypothesis profiles and a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from actionhelpers import ApiStub, Sandbox, build_template, make_sandbox
from hypothesis import HealthCheck, settings
from pytest_httpserver import HTTPServer
from runhelpers import RunOutcome
from summaryruns import hostile_run, real_run

# Byte-for-byte copies of the shared real-world fixtures (provenance in fixtures/README.md).
FIXTURES = Path(__file__).resolve().parent / "fixtures"
TODO_FIXTURES = sorted((FIXTURES / "todo").glob("*.md"))

settings.register_profile(
    "ci",
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=60, deadline=1000)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

CliResult = tuple[int, str, str]
RunCli = Callable[..., CliResult]


def run_cli(*args: str | os.PathLike[str], cwd: Path, timeout: float = 60) -> CliResult:
    """Run ``python -m batchaction ARGS`` as a real process in ``cwd``: (code, stdout, stderr)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("INPUT_")}
    completed = subprocess.run(
        [sys.executable, "-m", "batchaction", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
        env=env,
        check=False,
    )
    return completed.returncode, completed.stdout, completed.stderr


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize every test asking for ``todo_fixture`` over all files in fixtures/todo/."""
    if "todo_fixture" in metafunc.fixturenames:
        paths = TODO_FIXTURES or [FIXTURES / "todo" / "*.md"]
        metafunc.parametrize("todo_fixture", paths, ids=[p.name for p in paths], indirect=True)


@pytest.fixture
def todo_fixture(request: pytest.FixtureRequest) -> Path:
    """One real-world TODO file; fails (never skips) when the shared fixtures are missing."""
    path: Path = request.param
    if not path.is_file():
        pytest.fail(f"missing fixture {path}: the shared fixtures must be present")
    return path


@pytest.fixture
def fixtures_dir() -> Path:
    """The directory of shared real-world fixtures."""
    return FIXTURES


@pytest.fixture
def cli() -> RunCli:
    """The real command line, run as a subprocess: ``cli("plan", "1-3", cwd=tmp_path)``."""
    return run_cli


def read_exact(path: Path) -> str:
    """A file's text with its line endings untouched."""
    with path.open(encoding="utf-8", newline="") as handle:
        return handle.read()


@pytest.fixture
def read_text() -> Callable[[Path], str]:
    """Read a file as text without newline translation."""
    return read_exact


# --- the action's sandboxes (tests of `batchaction action`) ------------------------------------


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bare remote with ``main`` and ``feature`` and a workspace per branch, once a module."""
    return build_template(tmp_path_factory.mktemp("template"))


@pytest.fixture
def sandbox(tmp_path: Path, template: Path) -> Sandbox:
    """A remote with ``main`` and ``feature``, and a workspace checked out on ``main``."""
    return make_sandbox(tmp_path, template)


@pytest.fixture
def api(httpserver: HTTPServer) -> ApiStub:
    """The GitHub REST API stub on a local HTTP server."""
    return ApiStub(httpserver)


@pytest.fixture(scope="module")
def real_run_summary(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunOutcome, str]:
    """A real run on a copy of a real TODO file, and its Markdown (``summaryruns``)."""
    return real_run(tmp_path_factory.mktemp("real"))


@pytest.fixture(scope="module")
def hostile_run_summary(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunOutcome, str]:
    """A real run whose titles are hostile, with every outcome, and its Markdown."""
    return hostile_run(tmp_path_factory.mktemp("hostile"))
