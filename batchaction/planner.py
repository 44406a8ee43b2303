"""Planning: which selected tasks run, in which dependency waves, and why the others do not."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal, NamedTuple

from batchaction.errors import BatchError
from batchaction.selection import format_selection
from batchaction.todo import Heading, Task

UnselectedDeps = Literal["warn", "block"]


class Skipped(NamedTuple):
    number: int
    reason: str  # "not-found" | "not-a-task" | "already-done" | "closed"
    detail: str


class Blocked(NamedTuple):
    number: int
    blocked_by: tuple[int, ...]
    reason: str


class Plan(NamedTuple):
    selection: tuple[int, ...]
    waves: tuple[tuple[int, ...], ...]
    skipped: tuple[Skipped, ...]
    blocked: tuple[Blocked, ...]
    warnings: tuple[str, ...]
    tasks: Mapping[int, Task]  # every task that runs or is blocked
    edges: Mapping[int, tuple[int, ...]]  # task -> its dependencies that run in this batch
    bottom_level: Mapping[int, float]  # longest remaining chain, Effort-weighted
    pulled_in: tuple[int, ...]  # open dependencies added by include-deps

    @property
    def run(self) -> tuple[int, ...]:
        return tuple(n for wave in self.waves for n in wave)

    def wave_of(self, number: int) -> int:
        for index, wave in enumerate(self.waves, start=1):
            if number in wave:
                return index
        return 0

    def dependents(self) -> dict[int, list[int]]:
        """Task -> the tasks in this batch that depend on it directly."""
        result: dict[int, list[int]] = {n: [] for n in self.run}
        for task, deps in self.edges.items():
            for dep in deps:
                result.setdefault(dep, []).append(task)
        return result


def index_tasks(tasks: Iterable[Task]) -> tuple[dict[int, Task], dict[int, list[Task]]]:
    """Tasks by number, and the numbers defined more than once."""
    by_number: dict[int, Task] = {}
    duplicates: dict[int, list[Task]] = {}
    for task in tasks:
        if task.number in by_number:
            duplicates.setdefault(task.number, [by_number[task.number]]).append(task)
        else:
            by_number[task.number] = task
    return by_number, duplicates


def _refuse_duplicate(number: int, duplicates: Mapping[int, list[Task]], why: str) -> None:
    if number in duplicates:
        lines = " and ".join(str(t.heading_line + 1) for t in duplicates[number])
        raise BatchError(
            f"task {number} is {why} but is defined more than once (lines {lines}): "
            "give each task its own number"
        )


def missing_phrase(numbers: Sequence[int]) -> str:
    """``4, which is`` or ``1-400, which are``: the numbers a warning names, compactly."""
    if len(numbers) == 1:
        return f"{numbers[0]}, which is"
    return f"{format_selection(numbers)}, which are"


def _refuse_repeated_status(task: Task, why: str) -> None:
    """A task with two Status fields has no single state: refuse it (exit 2), like duplicates."""
    if not task.repeated:
        return
    extra = [f for f in task.repeated if f.key == "status"]
    status = task.field("status")
    if extra and status is not None:
        lines = " and ".join(str(f.line + 1) for f in (status, *extra))
        raise BatchError(
            f"task {task.number} is {why} but has {len(extra) + 1} Status fields "
            f"(lines {lines}): keep one (a heading may be missing before the second)"
        )


def find_cycle(edges: Mapping[int, Sequence[int]]) -> list[int] | None:
    """A dependency cycle as a path in running order (``[63, 64, 65, 63]``), or None."""
    import networkx as nx  # noqa: PLC0415 - heavy import, only needed for graphs with cycles

    graph = nx.DiGraph()
    graph.add_nodes_from(edges)
    graph.add_edges_from((dep, task) for task, deps in edges.items() for dep in deps)
    try:
        cycle = nx.find_cycle(graph)
    except nx.NetworkXNoCycle:
        return None
    path = [int(u) for u, _ in cycle]
    start = path.index(min(path))
    path = path[start:] + path[:start]
    return [*path, path[0]]


def format_cycle(path: Sequence[int]) -> str:
    if len(path) == 2:
        return f"dependency cycle: {path[0]} -> {path[0]} (task {path[0]} depends on itself)"
    return (
        f"dependency cycle: {' -> '.join(map(str, path))} "
        "(each task depends on the one before it): remove one of these dependencies"
    )


def kahn_levels(edges: Mapping[int, Sequence[int]]) -> list[list[int]] | None:
    """Kahn levels of a task -> dependencies map, each sorted; None when a cycle remains."""
    indegree = {task: len(deps) for task, deps in edges.items()}
    dependents: dict[int, list[int]] = {task: [] for task in edges}
    for task, deps in edges.items():
        for dep in deps:
            dependents[dep].append(task)
    level = sorted(task for task, degree in indegree.items() if degree == 0)
    levels: list[list[int]] = []
    seen = 0
    while level:
        levels.append(level)
        seen += len(level)
        following: list[int] = []
        for task in level:
            for child in dependents[task]:
                indegree[child] -= 1
                if indegree[child] == 0:
                    following.append(child)
        level = sorted(following)
    return levels if seen == len(edges) else None


def bottom_levels(
    levels: Sequence[Sequence[int]],
    edges: Mapping[int, Sequence[int]],
    weight: Mapping[int, float],
) -> dict[int, float]:
    """Each task's weight plus the heaviest chain of dependents after it (critical path)."""
    best: dict[int, float] = {}
    dependents: dict[int, list[int]] = {task: [] for task in edges}
    for task, deps in edges.items():
        for dep in deps:
            dependents[dep].append(task)
    for level in reversed(levels):
        for task in level:
            after = max((best[child] for child in dependents[task]), default=0.0)
            best[task] = weight[task] + after
    return best


def plan(
    tasks: Sequence[Task],
    selection: Sequence[int],
    *,
    include_deps: bool = False,
    unselected_deps: UnselectedDeps = "warn",
    headings: Sequence[Heading] = (),
    source: str = "the TODO file",
) -> Plan:
    """Plan a batch (SPEC 4).

    ``headings`` are the numbered headings that are not tasks (``TodoDocument.headings``): a
    selected one is skipped ``not-a-task``. Raises BatchError (exit 2) for cycles, duplicate
    numbers, a selected or depended-on task with two Status fields, and a selection of which
    no number is a task in ``source``.
    """
    by_number, duplicates = index_tasks(tasks)
    untasked = {h.number: h for h in reversed(headings)}
    skipped: list[Skipped] = []
    warnings: list[str] = []
    candidates: list[int] = []
    for number in selection:
        task = by_number.get(number)
        if task is None and number in untasked:
            heading = untasked[number]
            detail = f"line {heading.line + 1} has heading {heading.text!r} but no Status field"
            skipped.append(Skipped(number, "not-a-task", detail))
            warnings.append(f"task {number} is not a task: {detail}: skipped")
            continue
        if task is None:
            skipped.append(Skipped(number, "not-found", f"task {number} is not in {source}"))
            warnings.append(f"task {number} is not in {source}: skipped")
            continue
        _refuse_duplicate(number, duplicates, "selected")
        _refuse_repeated_status(task, "selected")
        if task.state == "done":
            skipped.append(Skipped(number, "already-done", f"status is {task.status.strip()}"))
        elif task.state == "closed":
            skipped.append(Skipped(number, "closed", f"status is {task.status.strip()}"))
        else:
            candidates.append(number)

    if (
        selection
        and len(skipped) == len(selection)
        and all(s.reason in ("not-found", "not-a-task") for s in skipped)
    ):
        raise BatchError(
            f"none of {format_selection(selection)} is a task in {source}: "
            "check the numbers, or pass the right file with --todo"
        )
    chosen = set(candidates)
    pulled_in: list[int] = []
    if include_deps:
        queue = deque(candidates)
        while queue:
            for dep in by_number[queue.popleft()].dependencies:
                dep_task = by_number.get(dep)
                if dep_task is None or dep in chosen or dep_task.state != "open":
                    continue
                _refuse_duplicate(dep, duplicates, "depended on")
                _refuse_repeated_status(dep_task, "depended on")
                chosen.add(dep)
                pulled_in.append(dep)
                queue.append(dep)

    edges: dict[int, tuple[int, ...]] = {}
    blocked_direct: dict[int, tuple[list[int], str]] = {}
    for number in sorted(chosen):
        task = by_number[number]
        warnings.extend(f"task {number}: {message}" for _, message in task.dependency_warnings)
        inside: list[int] = []
        missing = [dep for dep in task.dependencies if dep not in by_number]
        if missing:
            warnings.append(
                f"task {number} depends on {missing_phrase(missing)} not in {source} "
                "(archived?): treated as done"
            )
        for dep in task.dependencies:
            dep_task = by_number.get(dep)
            if dep_task is None:
                continue
            _refuse_duplicate(dep, duplicates, f"a dependency of task {number}")
            _refuse_repeated_status(dep_task, f"a dependency of task {number}")
            if dep in chosen:
                inside.append(dep)
            elif dep_task.state == "closed":
                warnings.append(
                    f"task {number} depends on {dep}, whose status is "
                    f"{dep_task.status.strip()}: treated as satisfied"
                )
            elif dep_task.state == "open":
                if unselected_deps == "block":
                    deps_found, _ = blocked_direct.get(number, ([], ""))
                    deps_found.append(dep)
                    blocked_direct[number] = (
                        deps_found,
                        "depends on unselected open "
                        + ", ".join(
                            f"task {d} ({by_number[d].status.strip()})" for d in deps_found
                        ),
                    )
                else:
                    warnings.append(
                        f"task {number} depends on {dep} ({dep_task.status.strip()}), which is "
                        f"not selected: run {dep} first, or add it to the selection "
                        "(--include-deps pulls in open dependencies)"
                    )
        edges[number] = tuple(sorted(set(inside)))

    cycle = find_cycle(edges) if kahn_levels(edges) is None else None
    if cycle is not None:
        raise BatchError(format_cycle(cycle))

    # Blocking spreads to everything that depends on a blocked task.
    blocked: dict[int, Blocked] = {
        n: Blocked(n, tuple(sorted(deps)), reason) for n, (deps, reason) in blocked_direct.items()
    }
    if blocked:
        for level in kahn_levels(edges) or []:
            for number in level:
                if number in blocked:
                    continue
                upstream = sorted(dep for dep in edges[number] if dep in blocked)
                if upstream:
                    blocked[number] = Blocked(
                        number,
                        tuple(upstream),
                        "blocked by task " + ", ".join(map(str, upstream)) + " (also blocked)",
                    )
    runnable = {n: tuple(d for d in deps) for n, deps in edges.items() if n not in blocked}
    levels = kahn_levels(runnable) or []
    weight = {n: by_number[n].effort_hours or 1.0 for n in runnable}
    return Plan(
        selection=tuple(selection),
        waves=tuple(tuple(level) for level in levels),
        skipped=tuple(skipped),
        blocked=tuple(blocked[n] for n in sorted(blocked)),
        warnings=tuple(warnings),
        tasks={n: by_number[n] for n in sorted(chosen)},
        edges=runnable,
        bottom_level=bottom_levels(levels, runnable, weight),
        pulled_in=tuple(sorted(pulled_in)),
    )
