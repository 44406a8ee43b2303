"""The run's dependency graph in the Markdown summary (job summary, PR reply), from real runs:
the Mermaid block read back by its grammar (``summaryruns.read_graph``), hostile titles
included, the note past 60 tasks, and summaries written before dependencies were recorded.
"""

from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
from hypothesis import given
from runhelpers import RunOutcome, Spec, make_workspace
from summaryruns import (
    HOSTILE_TITLES,
    MERMAID_INIT,
    TITLES,
    mermaid_block,
    read_graph,
)

from batchaction.graphview import node_label, summary_mermaid
from batchaction.summary import render_markdown, schema

Run = tuple[RunOutcome, str]


class TestMermaidBlock:
    def test_real_run(self, real_run_summary: Run) -> None:
        """One node per task labelled ``N Title``, the file's dependencies as edges (one
        implied by another path left out), a class per outcome, rows by wave."""
        result, markdown = real_run_summary
        assert result.code == 1, result.err
        outcomes = result.outcomes()
        assert outcomes[133] == "failed"
        assert outcomes[137] == "timed-out"
        assert outcomes[155] == "in-progress"
        assert {outcomes[n] for n in (134, 135, 138)} == {"blocked"}
        graph = read_graph(mermaid_block(markdown))
        assert graph["labels"] == {n: node_label(n, t["title"]) for n, t in result.tasks.items()}
        assert graph["labels"][133] == "133 Build canonical model constructors in Completeness.lean"
        deps = {n: t["dependencies"] for n, t in result.tasks.items()}
        assert deps[135] == [132, 133, 134]
        assert deps[130] == [129, 154]
        assert deps[155] == []
        # 135 lists 132 and 133, which 134 already waits on: the chain is drawn.
        assert graph["edges"] == {
            (154, 129): 1,
            (129, 130): 1,
            (132, 133): 1,
            (133, 134): 1,
            (134, 135): 1,
            (136, 137): 1,
            (137, 138): 1,
        }
        members = {name: set(numbers) for name, numbers in graph["classes"].items()}
        assert members == {
            "completed": {129, 130, 132, 136, 139, 140, 141, 154},
            "failed": {133},
            "timedout": {137},
            "inprogress": {155},
            "blocked": {134, 135, 138},
        }
        legend = "green completed, red failed or timed out, amber in progress, grey dashed blocked"
        assert f"<summary>Dependency graph: {legend}</summary>" in markdown

    def test_graph_follows_the_table(self, real_run_summary: Run) -> None:
        """The table comes first; the graph follows it, before the log tails."""
        _, markdown = real_run_summary
        table = markdown.index("| Wave | Task |")
        graph = markdown.index("<details open>")
        assert table < graph < markdown.index("<summary>❌ 133 ")

    def test_hostile_titles(self, hostile_run_summary: Run) -> None:
        """Every title reads back as its cleaned self inside one quoted label; none adds a
        node, an edge, a directive or markup; every outcome has its class."""
        result, markdown = hostile_run_summary
        assert result.outcomes() == {
            1: "completed",
            2: "cancelled",
            3: "failed",
            4: "timed-out",
            5: "blocked",
            6: "cancelled",
            7: "in-progress",
            8: "blocked",
        }
        block = mermaid_block(markdown)
        graph = read_graph(block)
        assert graph["labels"] == {n: node_label(n, t) for n, t in HOSTILE_TITLES.items()}
        assert graph["labels"][5] == "5 bidi evil needs | three"  # bidi controls dropped
        assert graph["edges"] == {(1, 2): 1, (3, 5): 1, (1, 6): 1, (2, 8): 1, (5, 8): 1}
        body = block.removeprefix(MERMAID_INIT + "\n")
        for needle in ("%%", "<", "`", "|", "@", "\u202e"):
            assert needle not in body, needle
        assert {n for ns in graph["classes"].values() for n in ns} == set(HOSTILE_TITLES)
        assert sorted(graph["classes"]["cancelled"]) == [2, 6]
        assert graph["classes"]["timedout"] == [4]

    @given(title=TITLES)
    def test_any_title(self, hostile_run_summary: Run, title: str) -> None:
        """Any text as every title (newlines, quotes, brackets, fences, controls): the same
        graph, each label the cleaned title."""
        summary = copy.deepcopy(hostile_run_summary[0].summary)
        assert summary is not None
        for task in summary["tasks"]:
            task["title"] = title
        graph = read_graph(mermaid_block(render_markdown(summary)))
        assert graph["labels"] == {
            t["number"]: node_label(t["number"], title) for t in summary["tasks"]
        }
        assert set(graph["edges"]) == {(1, 2), (3, 5), (1, 6), (2, 8), (5, 8)}

    def test_live_outcomes(self, hostile_run_summary: Run) -> None:
        """A summary of a run still going (tasks ``pending``, ``running``) draws them too."""
        result, _ = hostile_run_summary
        summary = copy.deepcopy(result.summary)
        assert summary is not None
        summary["tasks"][0]["outcome"] = "running"
        summary["tasks"][1]["outcome"] = "pending"
        text = summary_mermaid(summary)
        assert text is not None
        classes = read_graph(text)["classes"]
        assert classes["running"] == [summary["tasks"][0]["number"]]
        assert classes["pending"] == [summary["tasks"][1]["number"]]

    def test_older_summary_has_no_graph(self, real_run_summary: Run) -> None:
        """A summary written before dependencies were recorded still validates and renders,
        without a graph (drawing it without edges would mislead)."""
        result, _ = real_run_summary
        old = copy.deepcopy(result.summary)
        assert old is not None
        for task in old["tasks"]:
            del task["dependencies"]
        assert list(jsonschema.Draft202012Validator(schema()).iter_errors(old)) == []
        markdown = render_markdown(old)
        assert "```" not in markdown
        assert "Dependency graph" not in markdown
        assert markdown.count("| **") == len(old["tasks"])

    def test_past_sixty_tasks_a_note(self, tmp_path: Path) -> None:
        """61 tasks: the table has them all, the graph is a one-line note."""
        ws = make_workspace(tmp_path)
        ws.write([Spec(n, deps=f"Task {n - 1}" if n % 10 else "None") for n in range(1, 62)])
        result = ws.run("1-61", "--max-parallel", "16", executor="true", timeout=300)
        assert result.code == 0, result.err
        markdown = ws.summary_md.read_text(encoding="utf-8")
        assert "```" not in markdown
        note = "The dependency graph (61 tasks) is left out: more than 60 tasks."
        assert f"\n{note}\n" in markdown
        rows = [line for line in markdown.split("\n") if line.startswith("| ") and "**" in line]
        assert len(rows) == 61
        assert markdown.index("| Wave |") < markdown.index(note)
