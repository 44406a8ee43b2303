"""The benchmarks run end to end on tiny sizes (no timing is asserted)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"
SCRIPT = BENCH / "plan_scale.py"


def test_plan_scale_prints_a_table() -> None:
    """Two tiny sizes print the header, one row each and the growth between them."""
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "--sizes", "200,300", "--runs", "1"],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    out = completed.stdout
    header = (
        r"^ *tasks +file MB +median wall s +best wall s +best CPU s +peak RSS MB +waves +growth$"
    )
    assert re.search(header, out, re.M), out
    row = re.search(r"^ *200 +\d+\.\d +(?:\d+\.\d{3} +){3}(\d+\.\d) +\d+ +-$", out, re.M)
    assert row is not None, out
    assert float(row[1]) > 0
    assert re.search(r"^ *300 .* x\d+\.\d\d for x1\.5$", out, re.M), out


def test_isolation_prints_the_overhead_and_the_ratio() -> None:
    """A repository of 40 files, 2 measured tasks 2 wide, then 2 agent tasks each way."""
    completed = subprocess.run(
        [
            sys.executable, str(BENCH / "isolation.py"), "--files", "40", "--tasks", "2",
            "--width", "2", "--batch", "2", "--runs", "1", "--sleep", "0", "--batch-files", "40",
        ],
        capture_output=True, text=True, encoding="utf-8", timeout=180, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout + completed.stderr
    out = completed.stdout
    assert re.search(r"^ *files +pool s +median +mean +p90 +start +finish +git/task$", out, re.M)
    row = re.search(r"^40 +\d+\.\d{3} +(\d+\.\d)(?: +\d+\.\d){5}$", out, re.M)
    assert row is not None, out
    assert float(row[1]) > 0
    assert re.search(r"^0 +(?:\d+\.\d{3} +){4}\d+\.\d\dx$", out, re.M), out


def test_strays_prints_the_supervisor_cost() -> None:
    """Three starts each way and one tiny run: both tables and the added cost."""
    completed = subprocess.run(
        [
            sys.executable, str(BENCH / "strays.py"),
            "--tasks", "4", "--width", "2", "--runs", "1", "--spawns", "3",
        ],
        capture_output=True, text=True, encoding="utf-8", timeout=120, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout + completed.stderr
    out = completed.stdout
    assert re.search(r"^direct +\d+\.\d{3} +\d+\.\d{3}$", out, re.M), out
    assert re.search(r"^supervised +\d+\.\d{3} +\d+\.\d{3}$", out, re.M), out
    assert re.search(r"the supervisor adds -?\d+\.\d ms wall and -?\d+\.\d ms CPU", out), out
    assert re.search(r"^supervised +\d+\.\d{3} +\d+\.\d{3} +\d+\.\d{3} +\d+\.\d{3}$", out, re.M)
