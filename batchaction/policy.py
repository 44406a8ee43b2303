"""Scheduling policy: which task starts next. Pure bookkeeping, no processes.

``eager`` (the default) starts a task as soon as every dependency it has in the batch is done,
longest remaining chain first (the critical path, weighted by Effort: ``Plan.bottom_level``),
as list schedulers do (HLFET). ``waves`` holds each wave until the one before it has finished.
Retries wait in a second queue until their backoff is over.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

from batchaction.planner import Plan


class ReadyQueue:
    """Tasks whose dependencies are done, by priority, and retries waiting for their time."""

    def __init__(self, plan: Plan, strategy: str) -> None:
        self.plan = plan
        self.strategy = strategy
        self.dependents = plan.dependents()
        self.waiting = {n: len(plan.edges.get(n, ())) for n in plan.run}
        self.ready: list[tuple[float, int]] = []
        self.delayed: list[tuple[float, int]] = []
        self.current_wave = 1

    def initial(self) -> None:
        for number in self.plan.run:
            if self.waiting[number] == 0:
                self.push(number)

    def push(self, number: int) -> None:
        heapq.heappush(self.ready, (-self.plan.bottom_level.get(number, 1.0), number))

    def delay(self, at: float, number: int) -> None:
        heapq.heappush(self.delayed, (at, number))

    def due(self, now: float) -> list[int]:
        """Retries whose backoff is over, removed from the delayed queue."""
        found: list[int] = []
        while self.delayed and self.delayed[0][0] <= now:
            found.append(heapq.heappop(self.delayed)[1])
        return found

    def next_retry(self) -> list[float]:
        return [at for at, _ in self.delayed]

    def take(
        self, limit: int, wave_of: Callable[[int], int], finished: Callable[[int], bool]
    ) -> list[int]:
        """Up to ``limit`` tasks to start now, best first."""
        if self.strategy == "waves":
            while self.current_wave <= len(self.plan.waves) and all(
                finished(n) for n in self.plan.waves[self.current_wave - 1]
            ):
                self.current_wave += 1
        chosen: list[int] = []
        held: list[tuple[float, int]] = []
        while self.ready and len(chosen) < limit:
            item = heapq.heappop(self.ready)
            if self.strategy == "waves" and wave_of(item[1]) != self.current_wave:
                held.append(item)
                continue
            chosen.append(item[1])
        for item in held:
            heapq.heappush(self.ready, item)
        return chosen

    def completed(self, number: int) -> list[int]:
        """Dependents of ``number`` that now have every dependency done."""
        freed: list[int] = []
        for child in self.dependents.get(number, []):
            self.waiting[child] -= 1
            if self.waiting[child] == 0:
                freed.append(child)
        return freed

    def discard(self, number: int) -> None:
        if any(item[1] == number for item in self.ready):
            self.ready = [item for item in self.ready if item[1] != number]
            heapq.heapify(self.ready)

    def drain(self) -> list[int]:
        """Every queued task (ready or waiting to retry), the queues emptied."""
        numbers = [n for _, n in self.ready] + [n for _, n in self.delayed]
        self.ready.clear()
        self.delayed.clear()
        return numbers


def retry_delay(attempt: int, backoff: float) -> float:
    """Seconds to wait after ``attempt`` failed: tenacity's exponential backoff, capped at 60 s.

    tenacity is imported here, on the first retry, so that runs without one never load it.
    """
    import tenacity  # noqa: PLC0415

    state = tenacity.RetryCallState(retry_object=tenacity.Retrying(), fn=None, args=(), kwargs={})
    state.attempt_number = attempt
    return float(tenacity.wait_exponential(multiplier=backoff, max=60.0)(state))
