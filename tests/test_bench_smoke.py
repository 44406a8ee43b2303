"""The plan scaling benchmark runs end to end on a tiny size (no timing is asserted)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "plan_scale.py"


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
