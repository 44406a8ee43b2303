"""Run summaries for the tests of the dependency graph and of the Markdown as GitHub renders it.

Two real runs (``batchaction run`` with the probe executor): one on a copy of a real-world TODO
file with failed, timed-out, blocked and in-progress tasks, one on a generated file whose
titles are hostile (HTML, Mermaid syntax, fences, mentions, bidi controls) with every outcome.
And the Mermaid block read back by a strict line grammar.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import strategies as st
from runhelpers import RunOutcome, Spec, make_workspace

from batchaction.graphview import MERMAID_INIT

FIXTURES = Path(__file__).resolve().parent / "fixtures"

# --- the Mermaid block, by its grammar --------------------------------------------------------

SAFE = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,-_/()'?!+")
CLASS_OF = {
    "completed": "completed",
    "failed": "failed",
    "timed-out": "timedout",
    "in-progress": "inprogress",
    "running": "running",
    "pending": "pending",
    "blocked": "blocked",
    "cancelled": "cancelled",
    "skipped": "skipped",
}
NODE = re.compile(r'    t(\d+)\["([^"\n\]]*)"\]')
EDGE = re.compile(r"    t(\d+) -(-+)> t(\d+)")
CLASSDEF = re.compile(r"    classDef ([a-z]+) [a-z-]+:[#a-z0-9 ]+(?:,[a-z-]+:[#a-z0-9 ]+)*")
CLASS = re.compile(r"    class (t\d+(?:,t\d+)*) ([a-z]+)")
ENTITY = re.compile(r"#quot;|#(\d+);")


def label_text(raw: str) -> str:
    """What a label shows: every character outside the safe set must be an entity."""
    rest = ENTITY.sub("", raw)
    assert all(c in SAFE or (ord(c) > 127 and c.isalnum()) for c in rest), raw
    return ENTITY.sub(lambda m: '"' if m[1] is None else chr(int(m[1])), raw)


def mermaid_block(markdown: str) -> str:
    """The one ```` ```mermaid ```` fence of the Markdown, inside its open ``<details>``."""
    lines = markdown.split("\n")
    fences = [i for i, line in enumerate(lines) if line.startswith("```")]
    assert len(fences) == 2, fences
    start, end = fences
    assert lines[start] == "```mermaid"
    assert lines[end] == "```"
    assert lines[start - 3] == "<details open>"
    assert re.fullmatch(r"<summary>Dependency graph: [a-z ,]+</summary>", lines[start - 2])
    assert lines[start - 1] == ""
    assert lines[end + 1] == "</details>"
    return "\n".join(lines[start + 1 : end]) + "\n"


def read_graph(text: str) -> dict[str, Any]:
    """Nodes (number -> label), edges ((dep, task) -> length) and class members, read by the
    grammar: every line one of its shapes, nodes declared once, edges and classes only on
    declared nodes, each class defined before use, each node in exactly one class."""
    lines = text.rstrip("\n").split("\n")
    assert lines[:2] == [MERMAID_INIT, "flowchart TD"]
    labels: dict[int, str] = {}
    edges: dict[tuple[int, int], int] = {}
    classes: dict[str, list[int]] = {}
    defined: set[str] = set()
    for line in lines[2:]:
        if node := NODE.fullmatch(line):
            assert int(node[1]) not in labels, line
            labels[int(node[1])] = label_text(node[2])
        elif edge := EDGE.fullmatch(line):
            edges[int(edge[1]), int(edge[3])] = len(edge[2])
        elif classdef := CLASSDEF.fullmatch(line):
            assert classdef[1] in CLASS_OF.values(), line
            defined.add(classdef[1])
        elif klass := CLASS.fullmatch(line):
            assert klass[2] in defined, line
            classes.setdefault(klass[2], []).extend(int(n[1:]) for n in klass[1].split(","))
        else:
            pytest.fail(f"line outside the Mermaid grammar: {line!r}")
    assert all(a in labels and b in labels for a, b in edges)
    assert sorted(n for ns in classes.values() for n in ns) == sorted(labels)
    return {"labels": labels, "edges": edges, "classes": classes}


# --- the runs (each returns the run and its Markdown summary) ---------------------------------

REAL = "proofchecker-b9a45da.md"  # 14 open tasks in 4 waves
HOSTILE_TITLES = {
    1: "Set up `the` build ``` fence, see _www.example.org",
    2: 'Waits x"] --> t9["pwned %%{init: {"theme": "dark"}}%% work',
    3: "<script>alert(1)</script> <img src=x onerror=alert(1)> fails",
    4: "@octocat #12 www.example.com [link](https://example.com) ![i](https://example.com/x.png)",
    5: "bidi \u202eevil\u202c needs | three",
    6: "</details></pre><details open><summary>x",
    7: "``` leaves work in progress",
    8: "end",
}


# Pieces a hostile title is made of, for hypothesis to combine with any text.
PIECES = [
    "@octocat", "#12", "GH-3", "www.example.com", "https://example.com/x", "mailto:a@b.co",
    "user@example.com", "[t](u)", "![i](u)", "```", "`", "~~~", '"', "]", "[", "|", "\n",
    "\r\n", "\u202e", "\u200b", "%%{init: {}}%%", "<script>", "</details>", "<details open>",
    "<pre>", "<!--", "-->", "&amp;", "&#64;", "~~x~~", "*", "_", "\\", "- [ ] ", "#quot;",
]  # fmt: skip
TITLES = st.text(max_size=60) | st.lists(
    st.sampled_from(PIECES) | st.text(max_size=4), max_size=12
).map("".join)


def real_run(root: Path) -> tuple[RunOutcome, str]:
    """The real file's open tasks: 133 fails (134 and 135 wait on it), 137 times out (138
    waits on it), 155 reports work in progress, the rest complete."""
    ws = make_workspace(root)
    shutil.copyfile(FIXTURES / "todo" / REAL, ws.todo)
    env = {
        "PROBE_SLEEP": "0.2",
        "PROBE_EXIT_133": "3",
        "PROBE_SLEEP_137": "30",
        "PROBE_RESULT_155": json.dumps({"status": "in-progress", "summary": "plan written"}),
    }
    result = ws.run("128-141, 144, 151-155", "--timeout", "2", "--grace", "1", env=env)
    return result, ws.summary_md.read_text(encoding="utf-8")


def hostile_run(root: Path) -> tuple[RunOutcome, str]:
    """Hostile titles and every outcome: 3 fails at once and --fail-fast cancels 2 and 6."""
    ws = make_workspace(root)
    deps = {2: "Task 1", 5: "Task 3", 6: "Task 1", 8: "Tasks 2, 5"}
    ws.write([Spec(n, title=t, deps=deps.get(n, "None")) for n, t in HOSTILE_TITLES.items()])
    env = {
        "PROBE_SLEEP": "0.6",
        "PROBE_SLEEP_3": "0",
        "PROBE_EXIT_3": "7",
        "PROBE_SLEEP_4": "30",
        "PROBE_RESULT_7": json.dumps({"status": "in-progress", "summary": "half done"}),
    }
    args = ("--max-parallel", "4", "--fail-fast", "--timeout", "1", "--grace", "1")
    result = ws.run("1-8", *args, env=env)
    return result, ws.summary_md.read_text(encoding="utf-8")
