"""Status classification: the text of a Status field -> done, closed or open."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Literal, NamedTuple

State = Literal["done", "closed", "open"]

# IMPLEMENTED: the agent workflow's word for "implementation completed" (its documented
# lifecycle: RESEARCHED -> PLANNED -> IMPLEMENTING -> IMPLEMENTED / COMPLETED).
DONE_MARKERS: tuple[str, ...] = ("COMPLETE", "COMPLETED", "DONE", "IMPLEMENTED")
# The words batchaction may write for "completed", following the file: never IMPLEMENTED.
COMPLETION_WORDS: tuple[str, ...] = ("COMPLETE", "COMPLETED", "DONE")
CLOSED_MARKERS: tuple[str, ...] = ("ABANDONED", "SUPERSEDED", "EXPANDED", "CANCELLED", "CANCELED")
DONE_PREFIXES: tuple[str, ...] = ("✅",)

_WORD = re.compile(r"[A-Za-z]+")


def marker_words(text: str) -> tuple[str, ...]:
    """The upper-cased words of a status marker: ``[in-progress]`` -> ('IN', 'PROGRESS')."""
    return tuple(word.upper() for word in _WORD.findall(text))


class StatusTable(NamedTuple):
    """Which markers mean done and closed; everything else is open. Extended by configuration."""

    done: tuple[tuple[str, ...], ...]
    closed: tuple[tuple[str, ...], ...]
    done_prefixes: tuple[str, ...]

    @classmethod
    def create(
        cls,
        extra_done: Iterable[str] = (),
        extra_closed: Iterable[str] = (),
    ) -> StatusTable:
        done = [marker_words(m) for m in (*DONE_MARKERS, *extra_done)]
        closed = [marker_words(m) for m in (*CLOSED_MARKERS, *extra_closed)]
        # Longest first so that a longer marker wins over a shorter one it starts with.
        return cls(
            done=tuple(sorted({m for m in done if m}, key=len, reverse=True)),
            closed=tuple(sorted({m for m in closed if m}, key=len, reverse=True)),
            done_prefixes=DONE_PREFIXES,
        )


DEFAULT_TABLE = StatusTable.create()


def status_head(value: str) -> str:
    """The marker part of a status value, without brackets or trailing notes.

    ``[COMPLETE] ✅`` -> ``COMPLETE``; ``Not Started (since May)`` -> ``Not Started``.
    """
    text = value.strip()
    if text.startswith("["):
        end = text.find("]")
        return text[1:end].strip() if end != -1 else text[1:].strip()
    match = re.match(r"[A-Za-z][A-Za-z '_-]*", text)
    return match.group(0).strip(" _-") if match else text


_HIDDEN = re.compile(r"<!--.*?-->|~~[^~]*~~")


def visible_status(value: str) -> str:
    """A Status value without what GitHub does not show as current (an HTML comment,
    struck-through text), stripped."""
    text = value.strip()
    if "<!--" in text or "~~" in text:
        text = _HIDDEN.sub("", text).strip()
    return text


def classify(value: str, table: StatusTable = DEFAULT_TABLE) -> State:
    """Classify a Status field's value (case-insensitive, brackets optional). What GitHub
    does not show as current (an HTML comment, struck-through text) is not read."""
    text = visible_status(value)
    if text.startswith(table.done_prefixes):
        return "done"
    words = marker_words(status_head(text))
    for marker in table.done:
        if words[: len(marker)] == marker:
            return "done"
    for marker in table.closed:
        if words[: len(marker)] == marker:
            return "closed"
    return "open"


class MarkerStyle(NamedTuple):
    """How a file spells the statuses batchaction writes."""

    bracketed: bool
    done_word: str
    overrides: tuple[tuple[str, str], ...] = ()

    def render(self, outcome: str) -> str:
        """The Status value to write for ``in-progress``, ``completed``, ``failed``, ``blocked``."""
        for key, verbatim in self.overrides:
            if key == outcome:
                return verbatim
        words = self.done_word if outcome == "completed" else outcome.replace("-", " ").upper()
        return f"[{words}]" if self.bracketed else words.title()


def detect_style(values: Iterable[str], overrides: Mapping[str, str] | None = None) -> MarkerStyle:
    """Follow the spelling the file already uses: brackets or not, COMPLETE or COMPLETED.

    A file with any bracketed status (or none at all) gets ``[IN PROGRESS]``; a file that only
    writes plain words gets ``In Progress``. ``overrides`` (from configuration) win verbatim.
    """
    texts = [value.strip() for value in values]
    bracketed = not texts or any(text.startswith("[") for text in texts)
    done_counts: dict[str, int] = {}
    for text in texts:
        words = marker_words(status_head(text))
        if words and words[0] in COMPLETION_WORDS:
            done_counts[words[0]] = done_counts.get(words[0], 0) + 1
    done_word = max(done_counts, key=lambda w: (done_counts[w], w)) if done_counts else "COMPLETED"
    return MarkerStyle(
        bracketed=bracketed,
        done_word=done_word,
        overrides=tuple(sorted((overrides or {}).items())),
    )
