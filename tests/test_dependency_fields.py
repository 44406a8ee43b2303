"""Every field that states a dependency is read, forward and reverse, in every style (SPEC 3).

The samples are shaped like the real files in fixtures/todo/ and the agent workflow's other
repositories: ``- **Depends**: 910``, ``**Blocking**: 173``, ``- **Dependencies**:`` followed
by indented items.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batchaction.depfields import DEFAULT_FORWARD, DEFAULT_REVERSE, DependencyFields, normalize
from batchaction.planner import plan
from batchaction.todo import TodoDocument, parse_todo


def todo(*sections: str) -> str:
    return "# TODO\n\n## Active\n\n" + "\n".join(sections)


def task(number: int, *fields: str, status: str = "[NOT STARTED]") -> str:
    lines = [f"### {number}. Task {number}", f"- **Status**: {status}", *fields, ""]
    return "\n".join(lines) + "\n"


def deps(doc: TodoDocument) -> dict[int, tuple[int, ...]]:
    return {t.number: t.dependencies for t in doc.tasks}


def waves(doc: TodoDocument, selection: list[int]) -> list[list[int]]:
    return [list(w) for w in plan(doc.tasks, selection).waves]


class TestForwardNames:
    @pytest.mark.parametrize(
        "name",
        [
            "Dependencies",
            "Dependency",
            "Depends",
            "Depends On",
            "depends on",
            "DEPENDS ON",
            "Depends-On",
            "Requires",
            "Prerequisites",
            "Blocked By",
            "blocked-by",
            "Blocked on",
            "After",
        ],
    )
    def test_each_forward_name_orders_the_plan(self, name: str) -> None:
        """``- **<name>**: 1`` under task 2 puts 2 in the wave after 1."""
        doc = parse_todo(todo(task(1), task(2, f"- **{name}**: 1")))
        assert deps(doc)[2] == (1,)
        assert waves(doc, [1, 2]) == [[1], [2]]

    def test_proofchecker_depends_chain(self) -> None:
        """The shape of ProofChecker specs/TODO.md at 84be697: newest task first."""
        text = todo(
            task(911, "- **Depends**: 910"),
            task(910, "- **Depends**: 909"),
            task(909, "- **Depends**: 908"),
            task(908, status="[COMPLETED]"),
        )
        doc = parse_todo(text)
        assert waves(doc, [909, 910, 911]) == [[909], [910], [911]]

    def test_several_fields_are_unioned(self) -> None:
        """Dependencies, Depends and a repeated Requires all count."""
        doc = parse_todo(
            todo(
                task(1),
                task(2),
                task(3),
                task(
                    4,
                    "- **Dependencies**: Task 1",
                    "- **Depends**: 2",
                    "- **Requires**: Task 3",
                    "- **Requires**: Task 1",
                ),
            )
        )
        assert deps(doc)[4] == (1, 2, 3)

    @pytest.mark.parametrize(
        "name", ["Dependencies Note", "Depend", "Requirements", "Afterword", "Blocked", "Blocker"]
    )
    def test_names_match_exactly_never_by_prefix(self, name: str) -> None:
        """A field whose name only starts like a dependency field is not one."""
        doc = parse_todo(todo(task(1), task(2, f"- **{name}**: 1")))
        assert deps(doc)[2] == ()


class TestReverseNames:
    @pytest.mark.parametrize(
        "name",
        ["Blocks", "Blocking", "Unblocks", "BLOCKING", "un-blocks", "Enables", "Required By"],
    )
    def test_reverse_field_makes_the_named_task_wait(self, name: str) -> None:
        """``**Blocking**: 173`` under 183 (ProofChecker 43ce1ce) makes 173 depend on 183."""
        doc = parse_todo(todo(task(173), task(183, f"- **{name}**: 173")))
        assert deps(doc)[173] == (183,)
        assert waves(doc, [173, 183]) == [[183], [173]]

    def test_reverse_edge_only_to_tasks_in_the_file(self) -> None:
        """A reverse reference to an archived number adds nothing anywhere."""
        doc = parse_todo(todo(task(5, "- **Blocks**: 99")))
        assert deps(doc) == {5: ()}
        assert doc.tasks[0].blocks == (99,)

    def test_blocking_reason_is_never_a_reverse_edge(self) -> None:
        """The field batchaction writes after a failure must not create a cycle on re-plan."""
        doc = parse_todo(
            todo(
                task(63),
                task(
                    64,
                    "- **Dependencies**: Task 63",
                    "- **Blocked**: 2026-01-02",
                    "- **Blocking Reason**: blocked by failed task 63",
                    status="[BLOCKED]",
                ),
            )
        )
        assert deps(doc) == {63: (), 64: (63,)}
        assert waves(doc, [63, 64]) == [[63], [64]]

    def test_forward_and_reverse_together(self) -> None:
        doc = parse_todo(todo(task(1, "- **Blocks**: 3"), task(2), task(3, "- **Depends**: 2")))
        assert deps(doc)[3] == (2, 1)


class TestIndentedItems:
    def test_empty_field_with_requires_and_plain_items(self) -> None:
        """The issue's sample: a nested REQUIRES field and a plain item count, BENEFITS FROM
        does not."""
        body = (
            "- **Dependencies**:\n"
            "  - **REQUIRES**: Task 9 (Begin Completeness Proofs)\n"
            "  - Task 12\n"
            "  - **BENEFITS FROM**: Task 7\n"
        )
        doc = parse_todo(todo(task(7), task(9), task(12), task(20, body.rstrip("\n"))))
        assert deps(doc)[20] == (9, 12)

    def test_items_end_at_the_next_field_or_text(self) -> None:
        """Items at the field's own indentation, or prose, end the list."""
        body = "- **Depends**:\n  - 3\n- **Plan**: see notes\n  - 4\n\nTask 5 is next.\n"
        doc = parse_todo(todo(task(3), task(4), task(5), task(6, body.rstrip("\n"))))
        assert deps(doc)[6] == (3,)

    def test_items_under_other_fields_are_not_dependencies(self) -> None:
        body = "- **Files Affected**:\n  - Task 3 notes.md\n  - 4\n"
        doc = parse_todo(todo(task(3), task(4), task(6, body.rstrip("\n"))))
        assert deps(doc)[6] == ()

    def test_reverse_items(self) -> None:
        body = "- **Blocks**:\n  - Task 8\n  - #9\n"
        doc = parse_todo(todo(task(7, body.rstrip("\n")), task(8), task(9)))
        assert deps(doc)[8] == (7,)
        assert deps(doc)[9] == (7,)


class TestConfiguredNames:
    def test_configured_forward_and_reverse_names(self) -> None:
        names = DependencyFields.create(["Needs", "Waits For"], ["Unlocks"])
        text = todo(task(1), task(2, "- **Needs**: 1"), task(3, "- **waits-for**: 2"))
        text += task(4, "- **Unlocks**: 1")
        doc = parse_todo(text, dependency_fields=names)
        assert deps(doc) == {1: (4,), 2: (1,), 3: (2,), 4: ()}
        assert deps(parse_todo(text)) == {1: (), 2: (), 3: (), 4: ()}

    def test_configured_names_extend_the_defaults(self) -> None:
        names = DependencyFields.create(["Needs"])
        doc = parse_todo(todo(task(1), task(2, "- **Depends**: 1")), dependency_fields=names)
        assert deps(doc)[2] == (1,)


_STYLES = st.sampled_from(["- **{n}**: {v}", "**{n}**: {v}", "  - **{n}:** {v}", "* **{n}**: {v}"])


def _spelling(draw: Callable[[st.SearchStrategy[str]], str], name: str) -> str:
    words = name.split()
    cased = [draw(st.sampled_from([w, w.lower(), w.upper(), w.title()])) for w in words]
    return draw(st.sampled_from([" ", "-", "  "])).join(cased)


@st.composite
def graphs(draw: st.DrawFn) -> dict[int, list[int]]:
    """A random DAG on tasks 1..n: each task depends on some lower-numbered ones."""
    size = draw(st.integers(2, 8))
    return {
        n: sorted(draw(st.sets(st.integers(1, n - 1), max_size=3))) if n > 1 else []
        for n in range(1, size + 1)
    }


class TestProperty:
    @given(graphs(), st.data())
    def test_any_field_name_and_style_gives_the_dependencies_graph(
        self, graph: dict[int, list[int]], data: st.DataObject
    ) -> None:
        """Any forward or reverse name, in any case, separator and field style, states the
        same graph as ``Dependencies`` does."""
        reference_sections = [
            task(n, f"- **Dependencies**: {', '.join(map(str, ds)) or 'None'}")
            for n, ds in graph.items()
        ]
        reference = deps(parse_todo(todo(*reference_sections)))
        lines: dict[int, list[str]] = {n: [] for n in graph}
        for number, ds in graph.items():
            for dep in ds:
                if data.draw(st.booleans(), label="reverse"):
                    name = data.draw(st.sampled_from(DEFAULT_REVERSE), label="reverse name")
                    owner, value = dep, str(number)
                else:
                    name = data.draw(st.sampled_from(DEFAULT_FORWARD), label="forward name")
                    owner, value = number, str(dep)
                style = data.draw(_STYLES, label="style")
                lines[owner].append(style.format(n=_spelling(data.draw, name), v=value))
        doc = parse_todo(todo(*(task(n, *lines[n]) for n in graph)))
        got = {n: tuple(sorted(d)) for n, d in deps(doc).items()}
        assert got == {n: tuple(sorted(d)) for n, d in reference.items()}


def test_normalize_ignores_case_blanks_and_dashes() -> None:
    assert normalize("Depends-On") == normalize("depends  on") == normalize("DEPENDS_ON")
