"""The plan's dependency graph as Mermaid and dot text (``plan --format mermaid|dot``).

Each output is read back by a strict line grammar that accepts only the line shapes the
renderer emits, so a title that could add a node, an edge, a directive or markup fails it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import TaskSpec, render_todo

from batchaction.graphview import (
    MAX_MERMAID_NODES,
    MERMAID_INIT,
    clean_title,
    drawn_edges,
    graph_edges,
    mermaid_too_large,
    node_label,
    plan_dot,
    plan_mermaid,
)
from batchaction.planner import Plan, plan
from batchaction.todo import parse_todo

RunCli = Callable[..., tuple[int, str, str]]

# 63 -> {64, 65} -> 66, 88 alone; 70 waits on unselected 90 (blocked), 71 and 72 on 70.
SMALL = [
    TaskSpec(63, title="Set up"),
    TaskSpec(64, deps="63", title="Left"),
    TaskSpec(65, deps="63", title="Right"),
    TaskSpec(66, deps="64, 65", title="Join"),
    TaskSpec(88, title="Alone"),
    TaskSpec(90, title="Not selected"),
    TaskSpec(70, deps="90", title="Waits on 90"),
    TaskSpec(71, deps="70", title="Waits on 70"),
    TaskSpec(72, deps="63, 70", title="Waits on 63 and 70"),
]
SMALL_SELECTION = [63, 64, 65, 66, 70, 71, 72, 88]
SMALL_EDGES = {(63, 64), (63, 65), (64, 66), (65, 66), (70, 71), (63, 72), (70, 72)}

HOSTILE = [
    'say "hi"',
    "close ] and [ open",
    'x"] --> t1["pwned',
    "a --> b",
    '%%{init: {"theme": "dark", "securityLevel": "loose"}}%%',
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "`**markdown**` string",
    "line one\nline two\r\n    t9 --> t63",
    "pipe | edge |label| text",
    "click t63 href javascript:alert(1)",
    "end",
    "#quot; #35; &amp; &lt; \\N \\l \\",
    "semi; colon: style: fill:#f00;",
    "classDef wave1 fill:#000",
    "bidi \u202eevil\u202c zero\u200bwidth \x00nul \x1b[31m",
    "x" * 500,
    "",
]

# --- the line grammars ------------------------------------------------------------------------

MERMAID_SAFE = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,-_/()'?!+")
M_NODE = re.compile(r'    t(\d+)\["([^"]*)"\]')
M_EDGE = re.compile(r"    t(\d+) -(-+)> t(\d+)")
M_CLASSDEF = re.compile(
    r"    classDef (wave\d+|blocked) [a-z-]+:[#a-z0-9 ]+(?:,[a-z-]+:[#a-z0-9 ]+)*"
)
M_CLASS = re.compile(r"    class (t\d+(?:,t\d+)*) (wave\d+|blocked)")
M_ENTITY = re.compile(r"#quot;|#(\d+);")


class Graph:
    def __init__(self) -> None:
        self.labels: dict[int, str] = {}
        self.edges: list[tuple[int, int]] = []
        self.lengths: dict[tuple[int, int], int] = {}  # a Mermaid link's length: its dashes - 1
        self.classes: dict[str, list[int]] = {}


def mermaid_label(raw: str) -> str:
    """The text a Mermaid label shows; fails on any character outside the safe set."""
    rest = M_ENTITY.sub("", raw)
    bad = [c for c in rest if c not in MERMAID_SAFE and not (ord(c) > 127 and c.isalnum())]
    assert not bad, f"unsafe characters {bad!r} in label {raw!r}"
    return M_ENTITY.sub(lambda m: '"' if m[1] is None else chr(int(m[1])), raw)


def read_mermaid(text: str) -> Graph:
    """Parse ``plan_mermaid`` output by its grammar; anything else fails the test."""
    assert text.endswith("\n")
    lines = text[:-1].split("\n")
    # The one directive is the graph's own layout (label wrapping and spacing), first.
    assert lines[0] == MERMAID_INIT
    assert lines[1] == "flowchart TD"
    graph = Graph()
    defined: set[str] = set()
    for line in lines[2:]:
        if node := M_NODE.fullmatch(line):
            number = int(node[1])
            assert number not in graph.labels, line
            graph.labels[number] = mermaid_label(node[2])
        elif edge := M_EDGE.fullmatch(line):
            graph.edges.append((int(edge[1]), int(edge[3])))
            graph.lengths[int(edge[1]), int(edge[3])] = len(edge[2])
        elif classdef := M_CLASSDEF.fullmatch(line):
            defined.add(classdef[1])
        elif klass := M_CLASS.fullmatch(line):
            assert klass[2] in defined, line
            members = [int(n[1:]) for n in klass[1].split(",")]
            graph.classes.setdefault(klass[2], []).extend(members)
        else:
            pytest.fail(f"line outside the Mermaid grammar: {line!r}")
    nodes = set(graph.labels)
    assert all(a in nodes and b in nodes for a, b in graph.edges)
    assert sorted(n for ns in graph.classes.values() for n in ns) == sorted(nodes)
    return graph


D_NODE = re.compile(
    r'  t(\d+) \[label="((?:[^"\\\x00-\x1f]|\\\\|\\")*)", fillcolor="#[0-9a-f]{6}", '
    r'color="#[0-9a-f]{6}"(, style="rounded,filled,dashed")?\];'
)
D_RANK = re.compile(r"  \{rank=same;((?: t\d+;)+)\}")
D_EDGE = re.compile(r"  t(\d+) -> t(\d+);")
D_HEAD = [
    "digraph plan {",
    "  rankdir=TB;",
    '  node [shape=box, style="rounded,filled", fontname="sans-serif"];',
]


def dot_label(raw: str) -> str:
    assert "&" not in raw.replace("&amp;", ""), raw
    return re.sub(r"\\(.)", r"\1", raw.replace("&amp;", "&"))


def read_dot(text: str) -> tuple[Graph, list[list[int]], set[int]]:
    """Parse ``plan_dot`` output: the graph, the rank groups and the dashed (blocked) nodes."""
    assert text.endswith("\n")
    lines = text[:-1].split("\n")
    assert lines[:3] == D_HEAD
    assert lines[-1] == "}"
    graph = Graph()
    ranks: list[list[int]] = []
    dashed: set[int] = set()
    for line in lines[3:-1]:
        if node := D_NODE.fullmatch(line):
            number = int(node[1])
            assert number not in graph.labels, line
            graph.labels[number] = dot_label(node[2])
            if node[3]:
                dashed.add(number)
        elif rank := D_RANK.fullmatch(line):
            ranks.append([int(n) for n in re.findall(r"t(\d+);", rank[1])])
        elif edge := D_EDGE.fullmatch(line):
            graph.edges.append((int(edge[1]), int(edge[2])))
        else:
            pytest.fail(f"line outside the dot grammar: {line!r}")
    nodes = set(graph.labels)
    assert all(a in nodes and b in nodes for a, b in graph.edges)
    assert all(n in nodes for rank_group in ranks for n in rank_group)
    return graph, ranks, dashed


def reaches(edges: list[tuple[int, int]], start: int, goal: int) -> bool:
    """Whether a path of ``edges`` leads from ``start`` to ``goal``."""
    seen, todo = {start}, [start]
    while todo:
        node = todo.pop()
        for dep, task in edges:
            if dep == node and task not in seen:
                if task == goal:
                    return True
                seen.add(task)
                todo.append(task)
    return False


def svg_of(dot_text: str) -> str | None:
    """``dot -Tsvg`` of the text (must succeed), or None when Graphviz is not installed."""
    if shutil.which("dot") is None:
        return None
    done = subprocess.run(
        ["dot", "-Tsvg"], input=dot_text, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stderr, done.stderr
    assert "Error" not in done.stderr, done.stderr
    return done.stdout


# --- plans ------------------------------------------------------------------------------------


def small_plan() -> Plan:
    doc = parse_todo(render_todo(SMALL))
    return plan(doc.tasks, SMALL_SELECTION, unselected_deps="block")


def with_titles(base: Plan, titles: dict[int, str]) -> Plan:
    tasks = {n: t._replace(title=titles.get(n, t.title)) for n, t in base.tasks.items()}
    return base._replace(tasks=tasks)


def independent_plan(count: int) -> Plan:
    doc = parse_todo(render_todo([TaskSpec(n) for n in range(1, count + 1)]))
    return plan(doc.tasks, list(range(1, count + 1)))


class TestSmallPlan:
    def test_mermaid_structure(self) -> None:
        """Header, one node per run or blocked task (``63 Title``), one edge per dependency
        between drawn tasks, one class per wave and one for the blocked tasks."""
        result = small_plan()
        assert result.waves == ((63, 88), (64, 65), (66,))
        text = plan_mermaid(result)
        assert text is not None
        graph = read_mermaid(text)
        assert graph.labels == {
            63: "63 Set up",
            64: "64 Left",
            65: "65 Right",
            66: "66 Join",
            88: "88 Alone",
            70: "70 Waits on 90",
            71: "71 Waits on 70",
            72: "72 Waits on 63 and 70",
        }
        assert len(graph.edges) == len(set(graph.edges))
        assert set(graph.edges) == SMALL_EDGES
        assert graph.classes == {
            "wave1": [63, 88],
            "wave2": [64, 65],
            "wave3": [66],
            "blocked": [70, 71, 72],
        }
        assert "subgraph" not in text

    def test_dot_structure(self) -> None:
        """The same nodes and edges as a digraph; one rank per wave; blocked nodes dashed;
        Graphviz accepts it and draws every node and edge."""
        result = small_plan()
        text = plan_dot(result)
        graph, ranks, dashed = read_dot(text)
        assert set(graph.labels) == set(SMALL_SELECTION)
        assert graph.labels[66] == "66 Join"
        assert set(graph.edges) == SMALL_EDGES
        assert len(graph.edges) == len(SMALL_EDGES)
        assert ranks == [[63, 88], [64, 65], [66]]
        assert dashed == {70, 71, 72}
        svg = svg_of(text)
        if svg is not None:
            assert svg.count('class="node"') == len(SMALL_SELECTION)
            assert svg.count('class="edge"') == len(SMALL_EDGES)

    def test_implied_dependencies_are_not_drawn(self) -> None:
        """72 -> 73 -> 74 and 74 also lists 72: Mermaid draws the chain only, dot every edge.
        A link spans the waves between its ends (80, wave 1, to 81, wave 5: ``----->``), so
        that Mermaid keeps 80 in the first row instead of pulling it down to 81."""
        specs = [
            TaskSpec(72, title="Phase 1"),
            TaskSpec(73, deps="72", title="Phase 2"),
            TaskSpec(74, deps="72, 73", title="Phase 3"),
            TaskSpec(75, deps="72, 73, 74", title="Phase 4"),
            TaskSpec(80, title="Alone"),
            TaskSpec(81, deps="75, 80", title="Last"),
        ]
        result = plan(parse_todo(render_todo(specs)).tasks, [72, 73, 74, 75, 80, 81])
        text = plan_mermaid(result)
        assert text is not None
        graph = read_mermaid(text)
        assert graph.edges == [(72, 73), (73, 74), (74, 75), (75, 81), (80, 81)]
        assert graph.lengths == {(72, 73): 1, (73, 74): 1, (74, 75): 1, (75, 81): 1, (80, 81): 4}
        assert "    t80 -----> t81\n" in text
        assert len(read_dot(plan_dot(result))[0].edges) == 8
        # A cycle (only a hand-made summary has one) keeps what reaches what.
        cycle = drawn_edges([(1, 2), (2, 3), (3, 1), (1, 3)])
        assert all(reaches(cycle, a, b) for a in (1, 2, 3) for b in (1, 2, 3) if a != b)

    def test_graph_edges_only_between_drawn_tasks(self) -> None:
        """90 is not selected: no edge to it, no node for it."""
        assert all(90 not in pair for pair in graph_edges(small_plan()))


class TestHostileTitles:
    @pytest.mark.parametrize("title", HOSTILE)
    def test_title_cannot_change_the_graph(self, title: str) -> None:
        """A hostile title on every task: the same nodes, edges and classes, no directive,
        no markup, and each label reads back as the cleaned title."""
        result = with_titles(small_plan(), dict.fromkeys(SMALL_SELECTION, title))
        mermaid = plan_mermaid(result)
        assert mermaid is not None
        graph = read_mermaid(mermaid)
        assert set(graph.labels) == set(SMALL_SELECTION)
        assert set(graph.edges) == SMALL_EDGES
        for number, label in graph.labels.items():
            assert label == node_label(number, title)
        # Words like ``click`` stay inside labels (the grammar has no line for them).
        body = mermaid.removeprefix(MERMAID_INIT + "\n")
        for needle in ("%%", "<", ">", "`", "|", "\r"):
            assert needle not in re.sub(r" -+> ", "", body)  # the edges' own arrows
        dot = plan_dot(result)
        dot_graph, _, _ = read_dot(dot)
        assert set(dot_graph.edges) == SMALL_EDGES
        for number, label in dot_graph.labels.items():
            assert label == node_label(number, title)
        svg = svg_of(dot)
        if svg is not None:
            assert "<script" not in svg
            assert "<img" not in svg
            assert svg.count('class="node"') == len(SMALL_SELECTION)
            assert svg.count('class="edge"') == len(SMALL_EDGES)

    def test_clean_title(self) -> None:
        """One line, no control or format characters, at most 60 characters."""
        assert clean_title("a\n\tb\r\n  c") == "a b c"
        assert clean_title("bidi \u202eevil\u202c \x00x\u200b") == "bidi evil x"
        long = clean_title("y" * 500)
        assert len(long) == 60
        assert long.endswith("…")
        assert node_label(7, " \n ") == "7"

    @given(st.text(max_size=80))
    def test_any_title_stays_one_label(self, title: str) -> None:
        """Any text as a title leaves the graph's shape alone (Mermaid and dot)."""
        result = with_titles(small_plan(), {63: title, 70: title})
        mermaid = plan_mermaid(result)
        assert mermaid is not None
        graph = read_mermaid(mermaid)
        assert set(graph.edges) == SMALL_EDGES
        assert graph.labels[63] == node_label(63, title)
        dot_graph, _, _ = read_dot(plan_dot(result))
        assert set(dot_graph.edges) == SMALL_EDGES
        assert dot_graph.labels[70] == node_label(70, title)


class TestSizeCut:
    def test_sixty_nodes_are_drawn(self) -> None:
        text = plan_mermaid(independent_plan(MAX_MERMAID_NODES))
        assert text is not None
        assert len(read_mermaid(text).labels) == 60
        assert mermaid_too_large(independent_plan(60)) is None

    def test_past_sixty_the_graph_is_a_note(self) -> None:
        """61 tasks: no Mermaid graph, a note naming the count; dot still draws all of them."""
        result = independent_plan(61)
        assert plan_mermaid(result) is None
        assert mermaid_too_large(result) == (
            "The dependency graph (61 tasks) is left out: more than 60 tasks."
        )
        graph, _, _ = read_dot(plan_dot(result))
        assert len(graph.labels) == 61


# --- the command line -------------------------------------------------------------------------


@pytest.fixture
def small_repo(tmp_path: Path) -> Path:
    hostile = [TaskSpec(s.number, s.status, s.deps, s.effort, s.title) for s in SMALL]
    hostile[0] = TaskSpec(63, title='x"] --> t66["%%{init: {}}%% <script>`|` ]')
    (tmp_path / "TODO.md").write_text(render_todo(hostile), encoding="utf-8")
    return tmp_path


class TestCli:
    def test_formats(self, cli: RunCli, small_repo: Path) -> None:
        """``--format mermaid|dot|json|text``; ``--json`` is ``--format json``; the default is
        text; warnings go to stderr, never into a graph."""
        sel = ["63-66", "70-72", "88", "--unselected-deps", "block"]
        code, mermaid, err = cli("plan", *sel, "--format", "mermaid", cwd=small_repo)
        assert code == 0, err
        graph = read_mermaid(mermaid)
        assert set(graph.edges) == SMALL_EDGES
        assert graph.labels[63] == '63 x"] --> t66["%%{init: {}}%% <script>`|` ]'
        code, dot, err = cli("plan", *sel, "--format", "dot", cwd=small_repo)
        assert code == 0, err
        assert set(read_dot(dot)[0].edges) == SMALL_EDGES
        svg_of(dot)
        json_runs = [
            cli("plan", *sel, *flag, cwd=small_repo) for flag in (["--json"], ["--format", "json"])
        ]
        assert json_runs[0] == json_runs[1]
        assert json.loads(json_runs[0][1])["waves"] == [[63, 88], [64, 65], [66]]
        assert cli("plan", *sel, cwd=small_repo) == cli(
            "plan", *sel, "--format", "text", cwd=small_repo
        )

    def test_unknown_format(self, cli: RunCli, small_repo: Path) -> None:
        code, out, err = cli("plan", "63", "--format", "png", cwd=small_repo)
        assert (code, out) == (2, "")
        assert "invalid choice: 'png'" in err
        assert "Traceback" not in err

    def test_mermaid_past_sixty(self, cli: RunCli, tmp_path: Path) -> None:
        """61 tasks: exit 0, nothing on stdout, the note on stderr."""
        (tmp_path / "TODO.md").write_text(render_todo([TaskSpec(n) for n in range(1, 62)]))
        code, out, err = cli("plan", "1-61", "--format", "mermaid", cwd=tmp_path)
        assert (code, out) == (0, "")
        assert "(61 tasks) is left out: more than 60 tasks" in err

    def test_every_fixture_renders(self, cli: RunCli, todo_fixture: Path) -> None:
        """Every open task of each real file: the graph holds exactly the planned tasks and
        the run's dependency edges, in both languages; Graphviz draws the dot text."""
        doc = parse_todo(todo_fixture.read_bytes().decode("utf-8"))
        numbers = ",".join(str(n) for n in sorted({t.number for t in doc.tasks}))
        expected = plan(doc.tasks, [int(n) for n in numbers.split(",")], headings=doc.headings)
        args = ("plan", numbers, "--todo", str(todo_fixture))
        code, out, err = cli(*args, "--format", "json", cwd=todo_fixture.parent)
        assert code == 0, err
        data = json.loads(out)
        drawn = {n for wave in data["waves"] for n in wave} | {b["number"] for b in data["blocked"]}
        run_edges = {(d, t) for t, deps in expected.edges.items() for d in deps}
        code, text, err = cli(*args, cwd=todo_fixture.parent)
        assert code == 0, err
        assert text.startswith("Plan for ")
        code, dot, err = cli(*args, "--format", "dot", cwd=todo_fixture.parent)
        assert code == 0, err
        dot_graph, _, _ = read_dot(dot)
        assert set(dot_graph.labels) == drawn
        assert run_edges <= set(dot_graph.edges)
        svg = svg_of(dot)
        if svg is not None:
            assert svg.count('class="node"') == len(drawn)
        code, mermaid, err = cli(*args, "--format", "mermaid", cwd=todo_fixture.parent)
        assert code == 0, err
        if len(drawn) > MAX_MERMAID_NODES:
            assert mermaid == ""
            assert "is left out" in err
        else:
            graph = read_mermaid(mermaid)
            assert set(graph.labels) == drawn
            # Every dependency, less those another path implies (dot draws them all).
            assert set(graph.edges) == set(drawn_edges(dot_graph.edges))
            assert all(reaches(graph.edges, dep, task) for dep, task in dot_graph.edges)
            wave = {n: index for index, ns in enumerate(data["waves"], start=1) for n in ns}
            for (dep, task), length in graph.lengths.items():
                both = dep in wave and task in wave
                assert length == (wave[task] - wave[dep] if both else 1), (dep, task)
