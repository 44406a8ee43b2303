"""Run summaries (SPEC 7): the JSON document against its schema, and the Markdown rendering."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from runhelpers import RunOutcome, Spec, Workspace, make_workspace

from batchaction import __version__
from batchaction.summary import MARKDOWN_LIMIT, render_markdown, schema

NASTY = "Render <script>alert(1)</script> | pipes & more"
TAGS = re.compile(r"<(details)(?: open)?>|<(summary|pre)>|</(details|summary|pre)>")
FENCE = "```"


def html_blocks_balanced(markdown: str) -> None:
    """Every ``<details>`` (or ``<details open>``), ``<summary>`` and ``<pre>`` is closed, in
    order, and ``<details>`` blocks do not nest (a raw tag from a log or a title would break
    this); every code fence opened at the start of a line is closed."""
    stack: list[str] = []
    for match in TAGS.finditer(markdown):
        name = match[1] or match[2] or match[3]
        if match[0].startswith("</"):
            context = markdown[max(0, match.start() - 200) : match.end()]
            assert stack, (match[0], context)
            assert stack.pop() == name, (match[0], context)
        else:
            assert name not in stack, (match[0], stack)
            stack.append(name)
    assert stack == [], stack
    fences = [line for line in markdown.split("\n") if line.startswith(FENCE)]
    assert fences in (["```mermaid", "```"], []), fences


EVERY_OUTCOME = [
    Spec(1, title="Completes"),
    Spec(2, title="Leaves work in progress"),
    Spec(3, title=NASTY),
    Spec(4, title="Runs too long"),
    Spec(5, title="Needs three", deps="Task 3"),
    Spec(6, title="Already done", status="[COMPLETED]"),
    Spec(7, title="Never started"),
]


@pytest.fixture(scope="module")
def every_outcome(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, RunOutcome]:
    """One run where each outcome happens: 3 fails first, so --fail-fast cancels 7."""
    ws = make_workspace(tmp_path_factory.mktemp("summary"))
    ws.write(EVERY_OUTCOME)
    with ws.todo.open("a", encoding="utf-8") as handle:
        handle.write("\n### 9. Notes without a Status field\n\nText.\n")
    env = {
        "PROBE_SLEEP": "0.6",
        "PROBE_SLEEP_3": "0",
        "PROBE_SLEEP_4": "30",
        "PROBE_EXIT_3": "7",
        "PROBE_RESULT_2": json.dumps({"status": "in-progress", "summary": "plan written"}),
    }
    result = ws.run(
        "1-9", "--max-parallel", "4", "--fail-fast", "--timeout", "1", "--grace", "1", env=env
    )
    return ws, result


class TestJsonSummary:
    def test_every_outcome_happens(self, every_outcome: tuple[Workspace, RunOutcome]) -> None:
        """The run under test produces each of the seven outcomes."""
        _, result = every_outcome
        assert result.code == 1, result.err
        assert result.outcomes() == {
            1: "completed",
            2: "in-progress",
            3: "failed",
            4: "timed-out",
            5: "blocked",
            7: "cancelled",
        }
        assert result.summary is not None
        skipped = [(s["number"], s["reason"]) for s in result.summary["skipped"]]
        assert skipped == [(6, "already-done"), (8, "not-found"), (9, "not-a-task")]
        assert result.summary["counts"] == {
            "completed": 1,
            "in-progress": 1,
            "failed": 1,
            "timed-out": 1,
            "blocked": 1,
            "skipped": 3,
            "cancelled": 1,
        }

    def test_validates_against_the_schema(
        self, every_outcome: tuple[Workspace, RunOutcome]
    ) -> None:
        """The JSON summary validates against the shipped Draft 2020-12 schema."""
        _, result = every_outcome
        validator = jsonschema.Draft202012Validator(
            schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
        )
        jsonschema.Draft202012Validator.check_schema(schema())
        errors = [error.message for error in validator.iter_errors(result.summary)]
        assert errors == []

    def test_schema_rejects_a_broken_summary(
        self, every_outcome: tuple[Workspace, RunOutcome]
    ) -> None:
        """The schema is strict: an unknown outcome or an extra key does not validate."""
        _, result = every_outcome
        validator = jsonschema.Draft202012Validator(schema())
        bad = copy.deepcopy(result.summary)
        assert bad is not None
        bad["tasks"][0]["outcome"] = "finished"
        assert not validator.is_valid(bad)
        extra = copy.deepcopy(result.summary)
        assert extra is not None
        extra["surprise"] = 1
        assert not validator.is_valid(extra)

    def test_top_level_fields(self, every_outcome: tuple[Workspace, RunOutcome]) -> None:
        """Version, selection, strategy, width, waves, result and commit are what the run used."""
        ws, result = every_outcome
        summary = result.summary
        assert summary is not None
        assert summary["version"] == __version__
        assert summary["selection"] == [1, 2, 3, 4, 5, 6, 7, 8, 9]
        assert summary["strategy"] == "eager"
        assert summary["max_parallel"] == 4
        assert summary["waves"] == [[1, 2, 3, 4, 7], [5]]
        assert summary["result"] == "failure"
        assert summary["interrupted_by"] is None
        assert summary["commit"] == {"sha": None, "pushed": False, "attempts": 0}
        assert Path(summary["log_dir"]) == ws.log_dir.resolve()
        assert Path(summary["todo"]).name == "TODO.md"

    def test_task_records(self, every_outcome: tuple[Workspace, RunOutcome]) -> None:
        """Each task record carries its exit code, attempts, blocking cause, reason and log."""
        _, result = every_outcome
        tasks = result.tasks
        assert tasks[3]["exit_code"] == 7
        assert tasks[3]["reason"] == "exit code 7"
        assert tasks[3]["attempts"] == 1
        assert "task 3 running" in tasks[3]["log_tail"]
        assert Path(tasks[3]["log_path"]).is_file()
        assert tasks[4]["reason"] == "timed out after 1s"
        assert tasks[5]["blocked_by"] == [3]
        assert tasks[5]["attempts"] == 0
        assert tasks[5]["started_at"] is None
        assert tasks[7]["reason"] == "not started: --fail-fast after task 3"
        assert tasks[2]["reason"] == "plan written"
        assert tasks[1]["duration_s"] >= 0.5


class TestMarkdown:
    @pytest.fixture
    def markdown(self, every_outcome: tuple[Workspace, RunOutcome]) -> str:
        """The Markdown summary written by --summary-md."""
        ws, _ = every_outcome
        return ws.summary_md.read_text(encoding="utf-8")

    def test_counts_line(self, markdown: str) -> None:
        """The first line gives the result and the count of each outcome."""
        first = markdown.splitlines()[0]
        assert first.startswith("**batchaction** failure: 6 tasks")
        for part in (
            "✅ 1 completed",
            "⏳ 1 in progress",
            "❌ 1 failed",
            "⏱️ 1 timed out",
            "⛔ 1 blocked",
            "⏭️ 3 skipped",
            "🚫 1 cancelled",
        ):
            assert part in first

    def test_one_table_row_per_task(self, markdown: str) -> None:
        """The table has a row per task that ran or was blocked or cancelled, with its outcome."""
        rows = [line for line in markdown.splitlines() if line.startswith("| ") and "**" in line]
        assert len(rows) == 6
        expected = {1: "completed", 2: "in-progress", 3: "failed", 4: "timed-out"}
        expected |= {5: "blocked", 7: "cancelled"}
        for number, outcome in expected.items():
            (row,) = [r for r in rows if f"**{number}**" in r]
            assert f" {outcome} " in row
            assert row.count("|") == 6

    def test_titles_are_escaped(self, markdown: str) -> None:
        """HTML in titles is escaped and pipes cannot break the table."""
        assert "<script>" not in markdown
        assert "&lt;script&gt;alert(1)&lt;/script&gt; &#124; pipes &amp; more" in markdown

    def test_failed_task_log_tail_in_details(self, markdown: str) -> None:
        """Failed and timed-out tasks show their log tail inside ``<details>``."""
        blocks = markdown.split("<details>")[1:]
        summaries = [block.split("\n")[1] for block in blocks]
        assert any(s.startswith("<summary>❌ 3 ") for s in summaries), summaries
        assert any(s.startswith("<summary>⏱️ 4 ") for s in summaries), summaries
        (failed,) = [b for b in blocks if b.split("\n")[1].startswith("<summary>❌ 3 ")]
        assert "<pre>" in failed
        assert "task 3 running" in failed.split("</details>")[0]

    def test_next_steps_name_the_rerun(self, markdown: str) -> None:
        """Next steps say what to fix and which selection to run again."""
        steps = markdown.split("**Next steps**", 1)[1]
        assert "Fix 3-4, then `/task 3-5, 7`." in steps
        assert "2 reported work in progress" in steps

    def test_long_summary_is_truncated(self, every_outcome: tuple[Workspace, RunOutcome]) -> None:
        """A summary over the limit is cut on a line boundary with a pointer to the JSON."""
        _, result = every_outcome
        assert result.summary is not None
        summary: dict[str, Any] = copy.deepcopy(result.summary)
        summary["tasks"][2]["log_tail"] = [f"log line {n} " + "x" * 200 for n in range(50)]
        text = render_markdown(summary, limit=3000)
        assert len(text) <= 3000
        assert text.endswith("…(summary truncated: see the JSON summary for everything)\n")


# A failing executor whose output tries to break out of the <pre> and <details> around it.
HOSTILE_LINES = [
    "<script>alert(1)</script>",
    "</details>",
    "</pre></details><details><summary>fake</summary>",
    "a & b &lt;kept&gt;",
]


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunOutcome, str]:
    """A run where task 1 prints HOSTILE_LINES and fails, and task 2 completes."""
    ws = make_workspace(tmp_path_factory.mktemp("hostile"))
    ws.write([Spec(1, title="Break </summary></details> out"), Spec(2)])
    printed = " ".join("'" + line + "'" for line in HOSTILE_LINES)
    executor = f"if [ {{number}} = 1 ]; then printf '%s\\n' {printed}; exit 4; fi"
    result = ws.run("1-2", executor=executor)
    return result, ws.summary_md.read_text(encoding="utf-8")


class TestLogTailEscaping:
    def test_the_run_failed_with_the_raw_lines(self, hostile: tuple[RunOutcome, str]) -> None:
        """The JSON summary keeps the log tail verbatim: escaping belongs to the Markdown."""
        result, _ = hostile
        assert result.code == 1, result.err
        assert result.outcomes() == {1: "failed", 2: "completed"}
        assert result.tasks[1]["log_tail"] == HOSTILE_LINES

    def test_tags_in_the_log_tail_are_escaped(self, hostile: tuple[RunOutcome, str]) -> None:
        """Each hostile line appears HTML-escaped in the Markdown, never as a raw tag."""
        _, markdown = hostile
        assert "<script>" not in markdown
        assert "alert(1)</script>" not in markdown
        assert "<summary>fake" not in markdown
        escaped = [
            "&lt;script&gt;alert(1)&lt;/script&gt;",
            "&lt;/details&gt;",
            "&lt;/pre&gt;&lt;/details&gt;&lt;details&gt;&lt;summary&gt;fake&lt;/summary&gt;",
            "a &amp; b &amp;lt;kept&amp;gt;",
        ]
        assert f"<pre>{chr(10).join(escaped)}</pre>" in markdown

    def test_details_structure_stays_balanced(self, hostile: tuple[RunOutcome, str]) -> None:
        """One ``<details>`` block for the one failed task, holding its summary line and the
        whole escaped tail, closed once; the title cannot close it early either."""
        _, markdown = hostile
        html_blocks_balanced(markdown)
        # The log tail's block, and the dependency graph's (open) one.
        assert markdown.count("<details>") == markdown.count("<details open>") == 1
        assert markdown.count("</details>") == 2
        block, after = markdown.split("<details>", 1)[1].split("</details>", 1)
        assert block.startswith(
            "\n<summary>❌ 1 Break &lt;/summary&gt;&lt;/details&gt; out: last 4 log lines"
            "</summary>\n"
        )
        assert "&lt;script&gt;" in block
        assert "a &amp; b" in block
        assert after.lstrip().startswith("**Next steps**")

    def test_every_outcome_markdown_is_balanced(
        self, every_outcome: tuple[Workspace, RunOutcome]
    ) -> None:
        """The summary with every outcome (two log tails, warnings) is balanced too."""
        ws, _ = every_outcome
        html_blocks_balanced(ws.summary_md.read_text(encoding="utf-8"))


class TestTruncation:
    @pytest.fixture
    def long_summary(self, every_outcome: tuple[Workspace, RunOutcome]) -> dict[str, Any]:
        """The every-outcome summary with two long log tails holding hostile lines."""
        _, result = every_outcome
        assert result.summary is not None
        summary: dict[str, Any] = copy.deepcopy(result.summary)
        for index in (2, 3):  # tasks 3 (failed) and 4 (timed out)
            summary["tasks"][index]["log_tail"] = [
                f"{HOSTILE_LINES[n % 4]} line {n} " + "x" * 150 for n in range(50)
            ]
        summary["warnings"] = [f"warning {n} </details>" for n in range(20)]
        return summary

    def test_cut_anywhere_keeps_the_blocks_closed(self, long_summary: dict[str, Any]) -> None:
        """Wherever the limit cuts (the table, a summary line, inside a <pre>, between
        blocks), the result fits the limit, closes what it opened and ends with the note
        outside any block."""
        full = render_markdown(long_summary)
        assert len(full) < MARKDOWN_LIMIT
        html_blocks_balanced(full)
        note = "\n\n…(summary truncated: see the JSON summary for everything)\n"
        inside_pre = inside_graph = 0
        graph_start = full.index("<details open>")
        graph_end = full.index("```\n</details>") + len("```\n</details>")
        for limit in range(400, len(full), 53):
            text = render_markdown(long_summary, limit=limit)
            assert len(text) <= limit
            assert text.endswith(note)
            html_blocks_balanced(text)  # no fence left open either
            cut = text.removesuffix(note)
            opened = cut.count("<details>") + cut.count("<details open>")
            assert opened == cut.count("<summary>")
            assert re.search(r"<details( open)?>(?!\n<summary>)", cut) is None  # no bare block
            if cut.endswith("\n</pre>\n</details>"):
                inside_pre += 1
            if graph_start < limit - 200 < graph_end:
                inside_graph += 1
                assert "```mermaid" not in cut  # the graph is dropped whole
                assert "<details open>" not in cut
        assert inside_pre > 10  # the sweep did cut inside log tails
        assert inside_graph > 3  # and inside the graph
