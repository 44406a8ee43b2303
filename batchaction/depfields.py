"""Which TODO.md fields state dependencies: forward (this task needs N) and reverse (N needs it).

Names match exactly after normalisation (case, blanks, ``-`` and ``_`` ignored), never by
prefix: ``Blocking Reason``, which batchaction writes itself, is not ``Blocking``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Literal, NamedTuple

Direction = Literal["forward", "reverse"]

DEFAULT_FORWARD: tuple[str, ...] = (
    "Dependencies",
    "Dependency",
    "Depends",
    "Depends On",
    "Requires",
    "Prerequisites",
    "Prerequisite",
    "Blocked By",
    # ProofChecker's most used blocker field (``- **Blocked on**: Task 995 (...), Task 974``).
    "Blocked On",
    "After",
)
DEFAULT_REVERSE: tuple[str, ...] = ("Blocks", "Blocking", "Unblocks", "Enables", "Required By")

# Fields batchaction writes itself: never dependencies, never a lint warning.
OWN_FIELDS: frozenset[str] = frozenset({"blocked", "blockingreason"})
# Fields of real files that name past or satisfied blockers, or reasons: no lint warning.
HISTORY_FIELDS: frozenset[str] = frozenset(
    {"unblockedby", "previouslyblockedby", "blockedreason", "blockingresolved", "previousblockers"}
)
_HINTS = ("depend", "require", "block", "prereq", "waitingon", "waitsfor", "needs")
_HINT_NAMES = frozenset({"deps", "dep", "needs", "prereqs"})
_IGNORED = re.compile(r"[\s_\-–—]+")


@functools.lru_cache(maxsize=4096)  # field names repeat in every task
def normalize(name: str) -> str:
    """The comparison key of a field name: ``Depends-On`` and ``depends on`` -> ``dependson``."""
    return _IGNORED.sub("", name).lower()


class DependencyFields(NamedTuple):
    """The normalised forward and reverse field names (defaults plus configured extensions)."""

    forward: frozenset[str]
    reverse: frozenset[str]

    @classmethod
    def create(cls, forward: Iterable[str] = (), reverse: Iterable[str] = ()) -> DependencyFields:
        """Defaults extended by ``dependency-fields`` and ``reverse-dependency-fields``.

        A name given in both lists is refused by the settings layer, not here; here forward
        wins, so no field is ever read both ways.
        """
        fwd = frozenset(normalize(n) for n in (*DEFAULT_FORWARD, *forward) if normalize(n))
        rev = frozenset(normalize(n) for n in (*DEFAULT_REVERSE, *reverse) if normalize(n))
        return cls(forward=fwd, reverse=rev - fwd)

    def direction(self, name: str) -> Direction | None:
        """``forward``, ``reverse`` or None for a field name as written."""
        key = normalize(name)
        if key in self.forward:
            return "forward"
        if key in self.reverse:
            return "reverse"
        return None

    def looks_like_dependency(self, name: str) -> bool:
        """A name that mentions depend/require/block but is read as neither direction."""
        key = normalize(name)
        if key in OWN_FIELDS or key in HISTORY_FIELDS or key in self.forward or key in self.reverse:
            return False
        return key in _HINT_NAMES or any(hint in key for hint in _HINTS)


DEFAULT_FIELDS = DependencyFields.create()
