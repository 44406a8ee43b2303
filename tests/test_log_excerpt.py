"""``log-excerpt``: how much of each task's log the job log gets (head and tail), within the
run's 4 MiB for all tasks; the whole logs stay in the ``log-dir`` folder."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from actionhelpers import ActionRun, ApiStub, Sandbox, dispatch_event, run_action

# One line without a line break, redrawn with \r like a progress bar, then a last line.
PROGRESS = "head -c {size} /dev/zero | tr '\\\\0' '\\\\r'; echo; echo THE-END-{number}"


def dispatched(sandbox: Sandbox, api: ApiStub, tasks: str, size: int, **inputs: str) -> ActionRun:
    return run_action(
        sandbox,
        "workflow_dispatch",
        dispatch_event(tasks, ref="refs/heads/main"),
        api_url=api.url,
        inputs={
            "executor": PROGRESS.replace("{size}", str(size)),
            "isolation": "none",
            "commit": "never",
            **inputs,
        },
    )


def groups(out: str) -> dict[int, str]:
    """Task number -> the text of its folded group in the job log."""
    found = re.finditer(r"^::group::Task (\d+):[^\n]*\n(.*?)^::endgroup::$", out, re.M | re.S)
    return {int(match[1]): match[2] for match in found}


@pytest.mark.parametrize(("setting", "budget"), [("4KiB", 4096), ("1000", 1000), (None, 65536)])
def test_each_task_gets_head_and_tail_within_log_excerpt(
    sandbox: Sandbox, api: ApiStub, setting: str | None, budget: int
) -> None:
    """A task printing 300,000 bytes on one line: the job log holds ``log-excerpt`` bytes of
    it (default 64 KiB), its head and its tail, and says what was left out and where the
    whole log is; the whole log is in the log-dir folder."""
    inputs = {"log-excerpt": setting} if setting else {}
    run = dispatched(sandbox, api, "4", 300_000, **inputs)
    assert run.code == 0, run.out + run.err
    text = groups(run.out)[4]
    notice = re.search(
        r"… ([\d,]+) bytes of this log left out here; the whole log \(([\d,]+)", text
    )
    assert notice is not None, text[:300]
    whole = Path(run.outputs["log-dir"]) / "task-4.log"
    size = whole.stat().st_size
    assert int(notice[2].replace(",", "")) == size
    assert int(notice[1].replace(",", "")) == size - budget
    assert "THE-END-4" in text  # the tail
    # The workflow-command stop marker lines around the log take a few bytes more.
    assert budget <= len(text.encode()) - len(notice[0].encode()) <= budget + 400


def test_log_excerpt_zero_prints_only_where_the_log_is(sandbox: Sandbox, api: ApiStub) -> None:
    run = dispatched(sandbox, api, "4", 10_000, **{"log-excerpt": "0"})
    assert run.code == 0, run.out + run.err
    text = groups(run.out)[4]
    assert "bytes of this log left out here" in text
    assert "THE-END" not in text
    assert "\r" not in text


def test_all_tasks_together_stay_within_the_run_budget(sandbox: Sandbox, api: ApiStub) -> None:
    """Three tasks of 3 MB each with ``log-excerpt: 2MiB``: 4 MiB for the run in all."""
    run = dispatched(sandbox, api, "1, 4, 5", 3_000_000, **{"log-excerpt": "2MiB"})
    assert run.code == 0, run.out + run.err
    printed = sum(len(text.encode()) for text in groups(run.out).values())
    assert 4 * 1024 * 1024 <= printed <= 4 * 1024 * 1024 + 2000
    assert len(run.out.encode()) < 4 * 1024 * 1024 + 100_000


@pytest.mark.parametrize("value", ["1G", "-5", "lots"])
def test_a_bad_log_excerpt_is_an_input_error(sandbox: Sandbox, api: ApiStub, value: str) -> None:
    run = dispatched(sandbox, api, "4", 10, **{"log-excerpt": value})
    assert run.code == 2
    assert "invalid log-excerpt" in run.out
    assert f"{value!r}: expected a size like 65536, 64KiB or 1MiB" in run.out
    assert "Traceback" not in run.err
