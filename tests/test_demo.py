"""``batchaction demo`` (SPEC 9): the whole pipeline on the bundled example, as a real process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from runhelpers import clean_env

from batchaction.summary import schema


def run_demo(cwd: Path, scratch: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``batchaction demo ARGS`` as a real process, its temporary files under ``scratch``."""
    return subprocess.run(
        [sys.executable, "-m", "batchaction", "demo", *args],
        cwd=cwd,
        env=clean_env({"TMPDIR": str(scratch)}),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
class TestDemo:
    def test_demo_runs_and_cleans_up(self, tmp_path: Path) -> None:
        """The demo exits 0, prints the summary and the bot's commit, and leaves nothing behind."""
        cwd = tmp_path / "cwd"
        scratch = tmp_path / "tmp"
        cwd.mkdir()
        scratch.mkdir()
        proc = run_demo(cwd, scratch)
        assert proc.returncode == 0, proc.stderr
        out = proc.stdout
        assert "**batchaction** failure:" in out
        assert "| Wave | Task | Outcome | Duration | Reason |" in out
        for outcome in ("completed", "failed", "timed-out", "in-progress", "blocked"):
            assert f" {outcome} |" in out, outcome
        assert "<details>" in out
        assert "**Next steps**" in out
        commits = [line for line in out.splitlines() if ": " in line and "[bot]" in line]
        assert any("github-actions[bot]: " in line for line in commits), out
        assert "+- **Status**: [FAILED]" in out or "+**Status**: [FAILED]" in out
        assert "Traceback" not in proc.stderr
        assert list(cwd.iterdir()) == []
        assert list(scratch.iterdir()) == []

    def test_kept_summary_records_the_pushed_commit(self, tmp_path: Path) -> None:
        """With ``--keep`` the scratch directory stays, and its JSON summary names the commit
        the demo pushed to its bare remote."""
        scratch = tmp_path / "tmp"
        scratch.mkdir()
        proc = run_demo(tmp_path, scratch, "--keep")
        assert proc.returncode == 0, proc.stderr
        (root,) = scratch.iterdir()
        summary = json.loads((root / "summary.json").read_text(encoding="utf-8"))
        jsonschema.Draft202012Validator(schema()).validate(summary)
        commit = summary["commit"]
        assert commit["pushed"] is True
        remote_tip = subprocess.run(
            ["git", "rev-parse", "origin/main"],
            cwd=root / "work",
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert commit["sha"] == remote_tip
