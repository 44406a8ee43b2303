"""Planning (SPEC 4): skipping, dependencies, cycles, duplicates, waves and critical paths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import Graph, TaskSpec, render_todo, task_graphs

from batchaction.errors import BatchError
from batchaction.planner import Plan, plan
from batchaction.todo import parse_todo

CANONICAL = [
    TaskSpec(63, deps="None"),
    TaskSpec(64, deps="Task 63"),
    TaskSpec(65, deps="63"),
    TaskSpec(66, deps="Task 64"),
    TaskSpec(67, deps="Tasks 65"),
    TaskSpec(88, deps="None"),
]


def plan_text(text: str, selection: list[int], **options: Any) -> Plan:
    return plan(parse_todo(text).tasks, selection, **options)


def plan_specs(specs: list[TaskSpec], selection: list[int], **options: Any) -> Plan:
    return plan_text(render_todo(specs), selection, **options)


def as_lists(result: Plan) -> list[list[int]]:
    return [list(wave) for wave in result.waves]


def read_exact(path: Path) -> str:
    with path.open(encoding="utf-8", newline="") as handle:
        return handle.read()


class TestCanonicalExample:
    @pytest.mark.parametrize("eol", ["\n", "\r\n"])
    @pytest.mark.parametrize("list_items", [False, True], ids=["bare-fields", "list-fields"])
    def test_waves(self, list_items: bool, eol: str) -> None:
        """63,64,65,66,67,88 with 64<-63, 65<-63, 66<-64, 67<-65 give three waves."""
        text = render_todo(CANONICAL, list_items=list_items, eol=eol)
        assert ("- **Status**:" in text) is list_items
        result = plan_text(text, [63, 64, 65, 66, 67, 88])
        assert as_lists(result) == [[63, 88], [64, 65], [66, 67]]
        assert result.skipped == ()
        assert result.blocked == ()
        assert result.warnings == ()
        assert dict(result.edges) == {63: (), 64: (63,), 65: (63,), 66: (64,), 67: (65,), 88: ()}


class TestSkipping:
    def test_not_found_done_and_closed(self) -> None:
        """Missing, done and closed tasks are skipped with their reason; the rest run."""
        specs = [
            TaskSpec(1, "[COMPLETED]"),
            TaskSpec(2, "[ABANDONED]"),
            TaskSpec(3, "Superseded by 4"),
            TaskSpec(4, "[NOT STARTED]"),
            TaskSpec(5, "✅ shipped"),
        ]
        result = plan_specs(specs, [1, 2, 3, 4, 5, 9])
        assert [(s.number, s.reason) for s in result.skipped] == [
            (1, "already-done"),
            (2, "closed"),
            (3, "closed"),
            (5, "already-done"),
            (9, "not-found"),
        ]
        assert as_lists(result) == [[4]]
        assert any("9" in w and "not in the TODO file" in w for w in result.warnings)

    def test_nothing_to_run(self) -> None:
        """A selection of only done tasks plans no waves."""
        result = plan_specs([TaskSpec(1, "Done")], [1])
        assert (result.waves, result.run) == ((), ())


class TestDependencies:
    def test_done_dependency_is_satisfied_silently(self) -> None:
        """A done dependency outside the selection needs no warning."""
        result = plan_specs([TaskSpec(1, "[DONE]"), TaskSpec(2, deps="1")], [2])
        assert (as_lists(result), result.warnings) == ([[2]], ())

    def test_absent_dependency_is_satisfied_with_warning(self) -> None:
        """A dependency missing from the file (archived) is satisfied, with a warning."""
        result = plan_specs([TaskSpec(73, deps="Task 72")], [73])
        assert as_lists(result) == [[73]]
        (warning,) = result.warnings
        assert "73" in warning
        assert "72" in warning
        assert "not in the TODO file" in warning

    def test_closed_dependency_is_satisfied(self) -> None:
        """A closed dependency does not hold its dependent back."""
        result = plan_specs([TaskSpec(1, "[ABANDONED]"), TaskSpec(2, deps="1")], [2])
        assert as_lists(result) == [[2]]

    def test_unselected_open_dependency_warns_by_default(self) -> None:
        """By default the task still runs; the warning names the dependency and its status."""
        result = plan_specs(CANONICAL, [64, 65, 66])
        assert as_lists(result) == [[64, 65], [66]]
        assert result.blocked == ()
        warnings = [w for w in result.warnings if w.startswith("task 64")]
        (warning,) = warnings
        assert "63" in warning
        assert "[NOT STARTED]" in warning
        assert "run 63 first" in warning

    def test_unselected_open_dependency_blocks_when_asked(self) -> None:
        """With block, the task and everything depending on it transitively is blocked."""
        result = plan_specs(CANONICAL, [64, 65, 66, 67, 88], unselected_deps="block")
        assert as_lists(result) == [[88]]
        blocked = {b.number: b for b in result.blocked}
        assert sorted(blocked) == [64, 65, 66, 67]
        assert blocked[64].blocked_by == (63,)
        assert "63" in blocked[64].reason
        assert "[NOT STARTED]" in blocked[64].reason
        assert blocked[66].blocked_by == (64,)
        assert "64" in blocked[66].reason
        assert blocked[67].blocked_by == (65,)

    def test_block_names_every_unselected_dependency(self) -> None:
        """A task with two unselected open dependencies names both."""
        specs = [TaskSpec(1), TaskSpec(2), TaskSpec(3, deps="1, 2")]
        (blocked,) = plan_specs(specs, [3], unselected_deps="block").blocked
        assert blocked.blocked_by == (1, 2)
        assert "task 1" in blocked.reason
        assert "task 2" in blocked.reason

    def test_include_deps_pulls_open_dependencies_transitively(self) -> None:
        """include_deps adds open dependencies of dependencies, and marks them pulled in."""
        result = plan_specs(CANONICAL, [66, 67], include_deps=True)
        assert as_lists(result) == [[63], [64, 65], [66, 67]]
        assert result.pulled_in == (63, 64, 65)
        assert result.warnings == ()

    def test_include_deps_skips_done_and_closed_dependencies(self) -> None:
        """include_deps never pulls in done or closed tasks."""
        specs = [
            TaskSpec(1, "[DONE]"),
            TaskSpec(2, deps="1"),
            TaskSpec(3, "[ABANDONED]"),
            TaskSpec(4, deps="2, 3"),
            TaskSpec(5, deps="4"),
        ]
        result = plan_specs(specs, [5], include_deps=True)
        assert as_lists(result) == [[2], [4], [5]]
        assert result.pulled_in == (2, 4)

    def test_free_text_dependency_warns(self) -> None:
        """A Dependencies value without task references is surfaced as a planning warning."""
        result = plan_specs([TaskSpec(11, deps="Requires Layer 0 completion")], [11])
        assert as_lists(result) == [[11]]
        assert any("Requires Layer 0 completion" in w for w in result.warnings)


class TestCycles:
    def test_cycle_is_refused_with_path(self) -> None:
        """A cycle among the tasks to run is exit 2 naming the path in running order."""
        specs = [TaskSpec(63, deps="65"), TaskSpec(64, deps="63"), TaskSpec(65, deps="64")]
        with pytest.raises(BatchError) as info:
            plan_specs(specs, [63, 64, 65])
        assert info.value.exit_code == 2
        assert "63 -> 64 -> 65 -> 63" in str(info.value)

    def test_cycle_starts_at_smallest_number(self) -> None:
        """The printed path starts from the smallest task in the cycle."""
        specs = [TaskSpec(10, deps="30"), TaskSpec(20, deps="10"), TaskSpec(30, deps="20")]
        with pytest.raises(BatchError, match=r"10 -> 20 -> 30 -> 10"):
            plan_specs(specs, [30, 20, 10, 5])

    def test_cycle_found_through_include_deps(self) -> None:
        """A cycle closed by pulled-in dependencies is refused too."""
        specs = [TaskSpec(63, deps="65"), TaskSpec(64, deps="63"), TaskSpec(65, deps="64")]
        with pytest.raises(BatchError, match=r"63 -> 64 -> 65 -> 63"):
            plan_specs(specs, [63], include_deps=True)

    def test_broken_cycle_is_fine(self) -> None:
        """A cycle through an unselected task is not a cycle among the tasks to run."""
        specs = [TaskSpec(63, deps="65"), TaskSpec(64, deps="63"), TaskSpec(65, deps="64")]
        assert as_lists(plan_specs(specs, [63, 64])) == [[63], [64]]

    def test_self_dependency_is_a_cycle(self) -> None:
        """A task depending on itself is refused as a cycle."""
        with pytest.raises(BatchError) as info:
            plan_specs([TaskSpec(7, deps="Task 7")], [7])
        assert info.value.exit_code == 2
        assert "7 -> 7" in str(info.value)


class TestDuplicates:
    SPECS = (
        TaskSpec(1, title="First copy"),
        TaskSpec(1, title="Second copy"),
        TaskSpec(2, deps="1"),
        TaskSpec(3),
    )

    def test_selected_duplicate_is_refused(self) -> None:
        """Selecting a duplicated number is exit 2 naming both heading lines."""
        text = render_todo(self.SPECS)
        lines = [i + 1 for i, line in enumerate(text.splitlines()) if line.startswith("### 1.")]
        with pytest.raises(BatchError) as info:
            plan_text(text, [1, 3])
        assert info.value.exit_code == 2
        message = str(info.value)
        assert "task 1" in message
        assert all(str(line) in message for line in lines)

    def test_depended_on_duplicate_is_refused(self) -> None:
        """Depending on a duplicated number is refused too."""
        with pytest.raises(BatchError, match="task 1"):
            plan_specs(list(self.SPECS), [2])

    def test_pulled_in_duplicate_is_refused(self) -> None:
        """include_deps does not pull in a duplicated number silently."""
        with pytest.raises(BatchError, match="task 1"):
            plan_specs(list(self.SPECS), [2], include_deps=True)

    def test_unrelated_duplicate_is_ignored(self) -> None:
        """A duplicate that is neither selected nor depended on does not matter."""
        assert as_lists(plan_specs(list(self.SPECS), [3])) == [[3]]


class TestBottomLevel:
    def test_chain_sums_efforts(self) -> None:
        """On a chain, the root's bottom level is the sum of the Effort hours below it."""
        specs = [
            TaskSpec(1, effort="2 hours"),
            TaskSpec(2, deps="1", effort="30 minutes"),
            TaskSpec(3, deps="2", effort="2-3 hours"),
        ]
        result = plan_specs(specs, [1, 2, 3])
        assert result.bottom_level == {
            1: pytest.approx(5.0),
            2: pytest.approx(3.0),
            3: pytest.approx(2.5),
        }

    def test_missing_effort_weighs_one(self) -> None:
        """Tasks without an Effort field weigh one hour; the heaviest branch wins."""
        specs = [
            TaskSpec(1),
            TaskSpec(2, deps="1"),
            TaskSpec(3, deps="1", effort="4 hours"),
            TaskSpec(4, deps="2"),
            TaskSpec(5, effort="TBD"),
        ]
        result = plan_specs(specs, [1, 2, 3, 4, 5])
        assert result.bottom_level == {1: 5.0, 2: 2.0, 3: 4.0, 4: 1.0, 5: 1.0}


class TestFixturePlans:
    @pytest.mark.parametrize(
        ("name", "selection", "waves", "skipped"),
        [
            (
                "proofchecker-6172a67.md",
                [72, 73, 74, 75, 76, 77, 78],
                [[72], [73], [74, 75], [76], [77], [78]],
                [],
            ),
            (
                "proofchecker-b8aee1a.md",
                [72, 73, 74, 75, 76, 77, 78],
                [[73], [74, 75], [76], [77], [78]],
                [(72, "not-found")],
            ),
            (
                "modelchecker-9402af1.md",
                list(range(132, 139)),
                [[132, 136], [133, 137], [134, 138], [135]],
                [],
            ),
            (
                "proofchecker-43ce1ce.md",
                list(range(183, 189)),
                [[183, 184], [185]],
                [(186, "already-done"), (187, "already-done"), (188, "already-done")],
            ),
            (
                "proofchecker-b9a45da.md",
                list(range(129, 142)),
                [[129, 132, 136, 139, 140, 141], [130, 133, 137], [134, 138], [135]],
                [(131, "already-done")],
            ),
            (
                "proofchecker-e430f09.md",
                list(range(62, 72)),
                [[63, 64, 65, 66, 67, 68, 69, 70, 71]],
                [(62, "already-done")],
            ),
        ],
    )
    def test_waves(
        self,
        fixtures_dir: Path,
        name: str,
        selection: list[int],
        waves: list[list[int]],
        skipped: list[tuple[int, str]],
    ) -> None:
        """A chosen selection of each real file plans the expected waves and skips."""
        result = plan_text(read_exact(fixtures_dir / "todo" / name), selection)
        assert as_lists(result) == waves
        assert [(s.number, s.reason) for s in result.skipped] == skipped

    def test_archived_dependency_warns(self, fixtures_dir: Path) -> None:
        """In b8aee1a, 72 is archived: 73 runs first, with a warning about 72."""
        text = read_exact(fixtures_dir / "todo" / "proofchecker-b8aee1a.md")
        result = plan_text(text, [73, 74])
        assert as_lists(result) == [[73], [74]]
        assert any(w.startswith("task 73 depends on 72") for w in result.warnings)

    def test_open_dependency_in_fixture_blocks(self, fixtures_dir: Path) -> None:
        """In 6172a67, selecting 73-78 without 72 blocks the whole chain when asked to."""
        text = read_exact(fixtures_dir / "todo" / "proofchecker-6172a67.md")
        result = plan_text(text, [73, 74, 75, 76, 77, 78], unselected_deps="block")
        assert result.waves == ()
        assert [b.number for b in result.blocked] == [73, 74, 75, 76, 77, 78]


def model_waves(graph: Graph, selection: set[int]) -> dict[int, int]:
    """Expected wave per runnable task: 1 + the latest wave among its runnable dependencies."""
    runnable = {n for n in selection if graph.states[n] == "open"}
    wave: dict[int, int] = {}

    def level(number: int) -> int:
        if number not in wave:
            inside = [d for d in graph.deps[number] if d in runnable]
            wave[number] = 1 + max((level(d) for d in inside), default=0)
        return wave[number]

    for number in runnable:
        level(number)
    return wave


class TestPlannerProperties:
    @given(task_graphs())
    def test_waves_follow_dependencies(self, graph: Graph) -> None:
        """Waves partition the runnable set, edges go forward, each task sits as early as it can."""
        selection = sorted(graph.states)
        result = plan_text(graph.text, selection)
        runnable = {n for n, state in graph.states.items() if state == "open"}
        flat = [n for wave in result.waves for n in wave]
        assert sorted(flat) == sorted(runnable)
        assert len(flat) == len(set(flat))
        assert all(list(wave) == sorted(wave) and wave for wave in result.waves)
        index = {n: i for i, wave in enumerate(result.waves, start=1) for n in wave}
        for task in runnable:
            for dep in graph.deps[task]:
                if dep in runnable:
                    assert index[dep] < index[task]
        assert index == model_waves(graph, set(selection))

    @given(task_graphs(), st.data())
    def test_partial_selection_warn_and_block(self, graph: Graph, data: st.DataObject) -> None:
        """For any subset selected: ``warn`` runs every selected open task, in the earliest wave
        its selected dependencies allow, warning about each open unselected dependency;
        ``block`` blocks exactly the tasks that reach an open unselected dependency through
        selected open tasks, and plans the rest the same way."""
        selection = sorted(data.draw(st.sets(st.sampled_from(sorted(graph.states)), min_size=1)))
        chosen = set(selection)
        runnable = {n for n in chosen if graph.states[n] == "open"}
        outside = {
            n: sorted(d for d in graph.deps[n] if graph.states[d] == "open" and d not in chosen)
            for n in runnable
        }
        warned = plan_text(graph.text, selection)
        index = {n: i for i, wave in enumerate(warned.waves, start=1) for n in wave}
        assert index == model_waves(graph, chosen)
        assert warned.blocked == ()
        for number, deps in outside.items():
            for dep in deps:
                assert any(str(number) in w and str(dep) in w for w in warned.warnings)

        blocked: set[int] = set()
        changed = True
        while changed:
            changed = False
            for number in runnable - blocked:
                if outside[number] or any(d in blocked for d in graph.deps[number]):
                    blocked.add(number)
                    changed = True
        strict = plan_text(graph.text, selection, unselected_deps="block")
        assert {b.number for b in strict.blocked} == blocked
        strict_index = {n: i for i, wave in enumerate(strict.waves, start=1) for n in wave}
        assert set(strict_index) == runnable - blocked
        for task, wave in strict_index.items():
            for dep in graph.deps[task]:
                if dep in strict_index:
                    assert strict_index[dep] < wave

    @given(task_graphs(max_tasks=15))
    def test_include_deps_runs_every_open_ancestor(self, graph: Graph) -> None:
        """With include_deps, every open ancestor of a selected open task runs before it."""
        last = max(graph.states)
        result = plan_text(graph.text, [last], include_deps=True)
        index = {n: i for i, wave in enumerate(result.waves, start=1) for n in wave}
        if graph.states[last] != "open":
            assert index == {}
            return
        assert last in index
        for task, wave in index.items():
            for dep in graph.deps[task]:
                if graph.states[dep] == "open":
                    assert index[dep] < wave
