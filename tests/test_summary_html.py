"""The Markdown summary as GitHub renders it: cmark-gfm (GitHub's own fork of cmark, the
``cmarkgfm`` bindings) turns summaries of real runs into HTML, read back as a tree: one
table with a row per task, the graph a mermaid code block in an open ``<details>``, every
element closed, hostile titles as text (no script, image, link or mention), and a truncated
summary's note outside every block.
"""

from __future__ import annotations

import copy
import html
import re
from html.parser import HTMLParser
from typing import Any

import cmarkgfm
from cmarkgfm.cmark import Options
from hypothesis import given
from runhelpers import RunOutcome
from summaryruns import TITLES, mermaid_block

from batchaction.graphview import summary_mermaid
from batchaction.summary import render_markdown

Run = tuple[RunOutcome, str]


def gfm(markdown: str) -> str:
    """HTML of ``markdown`` by cmark-gfm as github.com runs it: the table, autolink,
    strikethrough and tasklist extensions, raw HTML kept (GitHub sanitizes afterwards),
    ``<pre lang="mermaid">`` for fenced code. Not the tagfilter extension: it would blunt
    a raw ``<script>`` that the summary must never emit in the first place."""
    options = Options.CMARK_OPT_UNSAFE | Options.CMARK_OPT_GITHUB_PRE_LANG
    extensions = ["table", "autolink", "strikethrough", "tasklist"]
    return cmarkgfm.markdown_to_html_with_extensions(markdown, options, extensions)


class Element:
    def __init__(self, tag: str, attrs: dict[str, str | None], parent: Element | None) -> None:
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Element | str] = []

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def find(self, tag: str) -> list[Element]:
        found = []
        for child in self.children:
            if isinstance(child, Element):
                found += [child] if child.tag == tag else []
                found += child.find(tag)
        return found

    def ancestors(self) -> list[str]:
        return [] if self.parent is None else [self.parent.tag, *self.parent.ancestors()]


class Tree(HTMLParser):
    """The HTML as a tree; an end tag that does not close the open element is an error."""

    VOID = frozenset({"br", "hr", "img", "input", "wbr"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#root", {}, None)
        self.open = [self.root]
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, dict(attrs), self.open[-1])
        self.open[-1].children.append(element)
        if tag not in self.VOID:
            self.open.append(element)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            return
        if self.open[-1].tag != tag:
            self.errors.append(f"</{tag}> closes <{self.open[-1].tag}>")
        if len(self.open) > 1:
            self.open.pop()

    def handle_data(self, data: str) -> None:
        self.open[-1].children.append(data)


def html_tree(markdown: str) -> Element:
    tree = Tree()
    tree.feed(gfm(markdown))
    tree.close()
    assert tree.errors == []
    assert [e.tag for e in tree.open] == ["#root"], "an element is left open"
    return tree.root


ALLOWED = {"p", "strong", "em", "del", "code", "table", "thead", "tbody", "tr", "th", "td"}
ALLOWED |= {"details", "summary", "pre", "ul", "li"}


def check_html(markdown: str, summary: dict[str, Any]) -> Element:
    """The structure every summary must have once rendered: one table, a row per task, the
    graph as a mermaid code block in an open ``<details>``, no element outside ALLOWED (no
    link, image, script), no mention or reference outside code."""
    root = html_tree(markdown)
    (table,) = root.find("table")
    head = [th.text() for th in table.find("th")]
    assert head == ["Wave", "Task", "Outcome", "Duration", "Reason"]
    (body,) = table.find("tbody")
    rows = body.find("tr")
    assert len(rows) == len(summary["tasks"])
    for row, task in zip(rows, summary["tasks"], strict=True):
        cells = row.find("td")
        assert len(cells) == 5
        assert re.match(rf"{task['number']}( |$)", cells[1].text()), cells[1].text()
        assert cells[2].text().endswith(f" {task['outcome']}")
    used = _tags(root)
    assert used <= ALLOWED, used - ALLOWED
    outside_code = "".join(_text_outside(root, {"code", "pre"}))
    assert re.search(r"@[A-Za-z0-9]", outside_code) is None, outside_code
    assert re.search(r"(?<![&\w])#\d", outside_code) is None, outside_code
    return root


def _tags(element: Element) -> set[str]:
    found = set()
    for child in element.children:
        if isinstance(child, Element):
            found |= {child.tag, *_tags(child)}
    return found


def _text_outside(element: Element, skip: set[str]) -> list[str]:
    out = []
    for child in element.children:
        if isinstance(child, str):
            out.append(child)
        elif child.tag not in skip:
            out += _text_outside(child, skip)
    return out


def graph_code(root: Element) -> str:
    """The mermaid block's text: one ``<pre lang="mermaid"><code>`` in an open details."""
    (pre,) = [pre for pre in root.find("pre") if pre.attrs.get("lang") == "mermaid"]
    assert pre.parent is not None
    assert pre.parent.tag == "details"
    assert "open" in pre.parent.attrs
    (code,) = [c for c in pre.children if isinstance(c, Element)]
    assert code.tag == "code"
    return code.text()


class TestGfmHtml:
    def test_real_run(self, real_run_summary: Run) -> None:
        """One table, a row per task; the graph a mermaid block equal to the Markdown's;
        each log tail a closed ``<details>`` holding a ``<pre>``."""
        result, markdown = real_run_summary
        assert result.summary is not None
        root = check_html(markdown, result.summary)
        assert graph_code(root) == mermaid_block(markdown)
        details = root.find("details")
        assert all(d.ancestors() == ["#root"] for d in details)  # none inside another
        heads = [d.find("summary")[0].text() for d in details]
        assert heads[0].startswith("Dependency graph: ")
        assert heads[1].startswith("❌ 133 Build canonical model")
        assert heads[2].startswith("⏱️ 137 Implement tableau")
        assert all(len(d.find("pre")) == 1 for d in details)
        steps = root.find("ul")[-1]  # the next steps, after the blocks, outside them
        assert steps.ancestors() == ["#root"]
        assert "Fix 133, 137" in steps.text()

    def test_hostile_run(self, hostile_run_summary: Run) -> None:
        """Hostile titles come out as text: no script, image or link, no mention; the
        title that closes ``</details>`` and opens another closes nothing."""
        result, markdown = hostile_run_summary
        assert result.summary is not None
        root = check_html(markdown, result.summary)
        assert graph_code(root) == mermaid_block(markdown)
        rendered = gfm(markdown)
        for tag in ("<script", "<img", "<a ", "<iframe"):
            assert tag not in rendered
        cells = [row.find("td")[1].text() for row in root.find("tbody")[0].find("tr")]
        assert "3 <script>alert(1)</script> <img src=x onerror=alert(1)> fails" in cells
        assert "6 </details></pre><details open><summary>x" in cells
        assert "_www\u200b.example.org" in cells[0]  # GFM would link "_www." (underscore first)
        assert len(root.find("details")) == 3  # the graph and the two log tails

    @given(title=TITLES)
    def test_any_title(self, hostile_run_summary: Run, title: str) -> None:
        """Any title on every task keeps the rendered structure."""
        summary = copy.deepcopy(hostile_run_summary[0].summary)
        assert summary is not None
        for task in summary["tasks"]:
            task["title"] = title
        markdown = render_markdown(summary)
        root = check_html(markdown, summary)
        assert html.unescape(graph_code(root)) == html.unescape(mermaid_block(markdown))

    def test_truncated_summary(self, hostile_run_summary: Run) -> None:
        """Cut anywhere (the graph, a log tail): the HTML has every element closed and the
        note at the top level, outside any block."""
        result, _ = hostile_run_summary
        summary = copy.deepcopy(result.summary)
        assert summary is not None
        for task in summary["tasks"]:
            if task["log_tail"]:
                task["log_tail"] = [f"</pre>line {n} <b>" + "x" * 120 for n in range(40)]
        full = render_markdown(summary)
        kept = dropped = 0
        for limit in range(900, len(full), 97):
            text = render_markdown(summary, limit=limit)
            root = html_tree(text)
            (note,) = [p for p in root.find("p") if p.text().startswith("…(summary truncated")]
            assert note.ancestors() == ["#root"]
            assert root.children.index(note) > root.children.index(root.find("table")[0])
            if [pre for pre in root.find("pre") if pre.attrs.get("lang") == "mermaid"]:
                assert graph_code(root) == summary_mermaid(summary)  # whole, or not at all
                kept += 1
            else:
                assert "```mermaid" not in text
                dropped += 1
        assert kept > 10
        assert dropped > 0
