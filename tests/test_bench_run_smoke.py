"""The benchmark scripts run end to end in their ``--quick`` mode (no timing is asserted)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


def run_quick(script: str) -> str:
    completed = subprocess.run(
        [sys.executable, str(BENCH / script), "--quick"],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed.stdout


@pytest.mark.skipif(shutil.which("parallel") is None, reason="needs GNU parallel")
def test_dispatch_quick() -> None:
    out = run_quick("dispatch.py")
    assert re.search(r"^tool +median +min +max", out, re.MULTILINE)
    assert "batchaction/parallel" in out
    assert "20/20 [COMPLETED]" in out


def test_scenarios_quick() -> None:
    out = run_quick("scenarios.py")
    assert re.search(r"^scenario +wall +in-run +ideal +overhead", out, re.MULTILINE)
    assert "hand-off = dependent" in out


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_makespan_quick() -> None:
    out = run_quick("makespan.py")
    assert re.search(r"^seed +crit +work/w +LB +list +eager", out, re.MULTILINE)
    assert "aggregate over seeds" in out
