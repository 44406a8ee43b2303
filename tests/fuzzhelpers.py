"""Reference models, input mutators and checkers for the fuzz and security tests.

Everything here is written from the product contract, not from the implementation: the
selection model tokenizes on its own, the TODO.md mutators work on raw bytes, and the
write-back checker aligns the lines before and after a status write by itself.
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
import signal
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Generic, NamedTuple, ParamSpec, TypeVar

from actionhelpers import FIXTURES, GITHUB_FIXTURES
from hypothesis import strategies as st

from batchaction.errors import BatchError

P = ParamSpec("P")
R = TypeVar("R")

TODO_FIXTURE_PATHS = sorted((FIXTURES / "todo").glob("*.md"))
PAYLOAD_NAMES = (
    "issue_comment-created.payload.json",
    "issue_comment-edited.payload.json",
    "workflow_dispatch-payload.json",
    "pull_request-opened.payload.json",
)
EVENT_NAMES = ("issue_comment", "workflow_dispatch", "pull_request", "unknown")


@cache
def fixture_bytes(path: Path) -> bytes:
    """A real TODO file, byte for byte (read once per test run)."""
    return path.read_bytes()


@cache
def _payload_json(name: str) -> str:
    path = GITHUB_FIXTURES / name
    if not path.is_file():
        raise AssertionError(f"missing fixture {path}: the shared fixtures must be present")
    return path.read_text(encoding="utf-8")


def fresh_payload(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(_payload_json(name))
    return data


# --- selection grammar: a reference model --------------------------------------------------

ASCII_DIGITS = frozenset("0123456789")
# The contract refuses task numbers written with more than 18 digits ("task number too large").
MAX_DIGITS = 18


@dataclass(frozen=True)
class SelectionVerdict:
    """What the grammar says about a text: the numbers, or why it is invalid."""

    numbers: tuple[int, ...] | None  # None when invalid
    bad_item: str | None = None  # the offending item, when one item is to blame


def tokenize_selection(text: str) -> list[str]:
    """Items are separated by commas and/or whitespace (any character ``str.isspace`` accepts)."""
    items: list[str] = []
    current: list[str] = []
    for char in text:
        if char == "," or char.isspace():
            if current:
                items.append("".join(current))
                current = []
        else:
            current.append(char)
    if current:
        items.append("".join(current))
    return items


def _number(text: str) -> int | None:
    """A positive integer written in ASCII digits, or None."""
    if not text or not set(text) <= ASCII_DIGITS or len(text) > MAX_DIGITS:
        return None
    value = int(text)
    return value if value >= 1 else None


def model_selection(text: str, cap: int) -> SelectionVerdict:
    """The selection grammar of the contract, item by item, in order."""
    items = tokenize_selection(text)
    if not items:
        return SelectionVerdict(None)
    chosen: set[int] = set()
    for item in items:
        body = item[1:] if item.startswith("#") else item
        head, dash, tail = body.partition("-")
        start = _number(head)
        end = _number(tail) if dash else start
        if start is None or end is None or start > end or end - start + 1 > cap:
            return SelectionVerdict(None, item)
        chosen.update(range(start, end + 1))
        if len(chosen) > cap:
            return SelectionVerdict(None)
    return SelectionVerdict(tuple(sorted(chosen)))


_SELECTION_PIECES = st.sampled_from(
    [
        "1",
        "7",
        "63",
        "065",
        "0",
        "00",
        "500",
        "501",
        "999999999999999999",
        "1000000000000000000",
        "0000000000000000001",
        "9" * 60,
        "9" * 5000,
        "-",
        "#",
        "##",
        ",",
        " ",
        "\t",
        "\n",
        "\r\n",
        "\u00a0",  # no-break space
        "\u2028",  # line separator
        "\u3000",  # ideographic space
        "٣",  # ARABIC-INDIC DIGIT THREE
        "３",  # FULLWIDTH DIGIT THREE
        "𝟓",  # MATHEMATICAL BOLD DIGIT FIVE
        "²",
        "+",
        "−",  # MINUS SIGN
        "–",  # EN DASH
        "1.5",
        "e3",
        "0x1F",
        "abc",
        "$(touch pwned)",
        "`x`",
        ";",
        "&&",
    ]
)


@st.composite
def selection_soup(draw: st.DrawFn) -> str:
    """Selection-like text: digits of every script, signs, separators and huge numbers."""
    pieces = draw(st.lists(st.one_of(_SELECTION_PIECES, st.integers(1, 700).map(str)), max_size=14))
    return "".join(pieces)


# --- TODO.md mutations ---------------------------------------------------------------------

INVALID_UTF8 = (
    b"\xff",
    b"\xfe",
    b"\xc3",  # a lead byte without its continuation
    b"\x80",  # a continuation byte alone
    b"\xc0\xaf",  # overlong slash
    b"\xed\xa0\x80",  # an encoded surrogate
    b"\xf4\x90\x80\x80",  # beyond U+10FFFF
)
ENDINGS = (b"\n", b"\r\n", b"\r", b"")
MUTATIONS = ("drop", "duplicate", "truncate", "invalid-utf8", "nul", "ending", "swap")


def byte_lines(data: bytes) -> list[bytes]:
    """Lines of a file, each keeping its ``\\n`` (the last one may have none)."""
    if not data:
        return []
    parts = data.split(b"\n")
    lines = [part + b"\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _ending(line: bytes) -> bytes:
    for ending in (b"\r\n", b"\n", b"\r"):
        if line.endswith(ending):
            return ending
    return b""


@dataclass(frozen=True)
class MutatedFile:
    """A real TODO file after mutations; its repr names them instead of holding the bytes."""

    name: str
    mutations: tuple[str, ...]
    data: bytes = field(repr=False)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))  # how Hypothesis prints a failing example: without the bytes


@st.composite
def mutated_todo_files(draw: st.DrawFn, max_mutations: int = 8) -> MutatedFile:
    """A fixture file after random line-level mutations of its bytes."""
    path = draw(st.sampled_from(TODO_FIXTURE_PATHS))
    lines = byte_lines(fixture_bytes(path))
    done: list[str] = []
    for _ in range(draw(st.integers(0, max_mutations))):
        if not lines:
            break
        kind = draw(st.sampled_from(MUTATIONS))
        index = draw(st.integers(0, len(lines) - 1))
        line = lines[index]
        body = line[: len(line) - len(_ending(line))]
        if kind == "drop":
            del lines[index]
        elif kind == "duplicate":
            lines.insert(index, line)
        elif kind == "truncate":
            cut = draw(st.integers(0, len(line)))
            lines[index] = line[:cut]
            kind += f" to {cut} bytes"
        elif kind in ("invalid-utf8", "nul"):
            junk = draw(st.sampled_from(INVALID_UTF8)) if kind == "invalid-utf8" else b"\x00"
            at = draw(st.integers(0, len(body)))
            lines[index] = line[:at] + junk + line[at:]
            kind += f" {junk!r} at byte {at}"
        elif kind == "ending":
            ending = draw(st.sampled_from(ENDINGS))
            lines[index] = body + ending
            kind += f" {ending!r}"
        else:
            other = draw(st.integers(0, len(lines) - 1))
            lines[index], lines[other] = lines[other], lines[index]
            kind += f" with line {other + 1}"
        done.append(f"line {index + 1}: {kind}")
    return MutatedFile(path.name, tuple(done), b"".join(lines))


def first_bad_line(data: bytes) -> int | None:
    """The 1-based line a strict reader must complain about: a NUL first, else bad UTF-8."""
    lines = data.split(b"\n")
    for number, line in enumerate(lines, start=1):
        if b"\x00" in line:
            return number
    for number, line in enumerate(lines, start=1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            return number
    return None


MEGABYTE = 1 << 20
LONG_LINE_PREFIXES = (
    "",
    "### 77. ",
    "## ",
    "- **Status**: ",
    "**Status**:",
    "- **Dependencies**: Task ",
    "**Dependencies**: ",
    "- **Effort**: 1",
    "- **",
    "```",
    "    - ",
)
# A prefix, then two halves of repeated units: long runs of blanks, hashes or parentheses
# followed by something else are what makes a backtracking regular expression quadratic.
# Units always hold a non-digit: numbers stay at real-world sizes.
LONG_LINE_UNITS = st.text(st.sampled_from(list(" \t#()-–,;*.x5\r")), min_size=1, max_size=4).filter(
    lambda unit: not set(unit) <= set("5")
)


@dataclass(frozen=True)
class LongLine:
    """About a megabyte: ``prefix``, ``first`` repeated, ``second`` repeated, ``ending``."""

    prefix: str
    first: str
    second: str
    ending: bytes

    @property
    def data(self) -> bytes:
        half = MEGABYTE // 2
        body = self.prefix + self.first * (half // len(self.first))
        body += self.second * (half // len(self.second))
        return body.encode("utf-8") + self.ending


megabyte_lines = st.builds(
    LongLine,
    st.sampled_from(LONG_LINE_PREFIXES),
    LONG_LINE_UNITS,
    LONG_LINE_UNITS,
    st.sampled_from([b"\n", b"\r\n", b""]),
)
# Shapes that took minutes to hours in earlier parsers (each line inside a task section).
PATHOLOGICAL_LINES = (
    LongLine("### 78. ", " #", "x", b"\n"),
    LongLine("- **Status**: a", " ", "\rb", b"\n"),
    LongLine("- **Status**:", " ", "\rb", b"\n"),
    LongLine("- **Dependencies**: a", " ", "b", b"\n"),
    LongLine("- **Dependencies**: Task", " ", "x", b"\n"),
    LongLine("- **Dependencies**: x #", " ", "y", b"\n"),
    LongLine("- **Dependencies**: ", "(", ")", b"\n"),
    LongLine("- **Effort**: ", "1", "a", b"\n"),
    LongLine("- **Effort**: 1", " ", "-x", b"\n"),
    LongLine("- **", "a*", "*", b"\n"),
    LongLine("", " ", "- **Status**: x\rq", b"\n"),
)


# --- status write-back: what may change ----------------------------------------------------

STATUS_FIELDS = ("status",)
LIFECYCLE_FIELDS = (
    "started",
    "completed",
    "failed",
    "failure reason",
    "blocked",
    "blocking reason",
)
OUTCOMES = ("in-progress", "completed", "failed", "blocked", "restore")
_FIELD_LINE = re.compile(r"[ \t]*(?:[-*+][ \t]+)?\*\*([^*\n]+?)(?::\*\*|\*\*:)")


def field_key(line: str) -> str | None:
    """The lower-cased name of a ``**Name**: value`` line, else None."""
    match = _FIELD_LINE.match(line)
    return match[1].strip().lower() if match else None


def text_lines(text: str) -> list[str]:
    """Lines split on ``\\n`` only, each keeping its ending."""
    if not text:
        return []
    parts = text.split("\n")
    return [part + "\n" for part in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def check_status_patch(
    before: Sequence[str],
    after: Sequence[str],
    sections: Iterable[tuple[int, int]],
    changeable: Mapping[int, str],
) -> None:
    """Assert that ``after`` is ``before`` with only status/lifecycle lines changed or added.

    ``sections`` are the [heading, end) line ranges of the patched tasks; ``changeable`` maps
    the index of each of their Status/lifecycle field lines to its field key. Lines outside the
    sections must be equal and in order; inside them a changeable line may get a new value
    (same field) or, for a lifecycle field, be removed; lifecycle field lines may be added
    after a line of a patched section.
    """
    patched = [False] * len(before)
    for start, end in sections:
        for index in range(start, end):
            patched[index] = True
    added_ok = set(LIFECYCLE_FIELDS)
    at = 0

    def skip_added(until: str | None, same_key: str | None) -> None:
        nonlocal at
        while at < len(after) and after[at] != until:
            key = field_key(after[at])
            if key not in added_ok or key == same_key:
                return
            at += 1

    for index, line in enumerate(before):
        key = changeable.get(index)
        if index > 0 and patched[index - 1]:
            skip_added(line, key)
        assert at < len(after), f"line {index + 1} {line!r} is missing after the write"
        if key is not None:
            if key != "status" and field_key(after[at]) != key:
                continue  # a lifecycle line the new status made untrue was removed
            assert field_key(after[at]) == key, (
                f"line {index + 1}: {line!r} became {after[at]!r} (field {key} expected)"
            )
            if line.endswith("\n"):  # its line ending is kept (a last line may gain one)
                assert after[at].endswith("\n")
                assert after[at].endswith("\r\n") == line.endswith("\r\n"), (line, after[at])
        else:
            where = "inside a patched task" if patched[index] else "outside every patched task"
            assert after[at] == line, f"line {index + 1} ({where}): {line!r} -> {after[at]!r}"
        at += 1
    if before and patched[-1]:
        skip_added(None, None)
    assert at == len(after), f"unexpected lines after the write: {list(after[at:])!r}"


# Reasons and previous statuses as executors and users really produce them, and worse.
REASON_PIECES = st.sampled_from(
    [
        "exit code 1",
        "\n",
        "\r\n",
        "\r",
        "\n\n## 99. Injected task\n- **Status**: [NOT STARTED]\n",
        "**Status**: [COMPLETED]",
        "```",
        "| a | b |",
        "<details>",
        "$(touch pwned)",
        "::error::x",
        "\x00",
        "\ud800",
        "\x1b[31m",
        "\u2028",
        "\t",
        "✅",
        "x" * 400,
    ]
)
reasons = st.one_of(
    st.none(),
    REASON_PIECES,
    st.lists(REASON_PIECES, min_size=2, max_size=4).map("".join),
    st.text(max_size=40),
    st.lists(st.one_of(REASON_PIECES, st.text(max_size=8)), max_size=6).map("".join),
)
previous_statuses = st.one_of(
    st.none(),
    st.sampled_from(["[NOT STARTED]", "Not Started", "[PLANNED]", "[IN PROGRESS]", "", "✅ x"]),
    st.text(st.characters(codec="utf-8", exclude_characters="\r\n\x00"), max_size=20),
)


# --- event payloads ------------------------------------------------------------------------

INTERESTING_PATHS: tuple[tuple[str, ...], ...] = (
    ("action",),
    ("comment",),
    ("comment", "body"),
    ("comment", "id"),
    ("comment", "user"),
    ("issue",),
    ("issue", "number"),
    ("issue", "pull_request"),
    ("sender",),
    ("sender", "login"),
    ("sender", "type"),
    ("repository",),
    ("repository", "full_name"),
    ("inputs",),
    ("inputs", "tasks"),
    ("ref",),
    ("pull_request", "head"),
)
COMMENT_BODIES = st.one_of(
    st.sampled_from(
        [
            "/task 1",
            "/task 1-3, 5",
            "/task",
            "/task ",
            "/task\t1",
            "/task 1\n/task 2",
            "/task 1\r\n$(touch pwned)",
            "\ufeff/task 2",
            "/task ٣",
            "/task 1 && touch pwned",
            "/tasks 1",
            "  /task 4  ",
        ]
    ),
    st.text(max_size=30).map(lambda text: "/task " + text),
    st.text(st.characters(codec="utf-8", categories=["Cc", "Zs", "Nd"]), max_size=20).map(
        lambda text: "/task" + text
    ),
    st.text(max_size=40),
)
# Values a JSON payload can hold (json.loads never produces anything else), and then some.
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**300), max_value=10**300),
    st.floats(),
    st.text(max_size=20),
    st.just("x" * 200_000),
    st.text(st.characters(codec="utf-8", categories=["Cc"]), max_size=10),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=8), children, max_size=4),
    ),
    max_leaves=12,
)


def all_paths(value: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every key path of the nested mappings in ``value``."""
    found: list[tuple[str, ...]] = []
    if isinstance(value, dict):
        for key, child in value.items():
            path = (*prefix, key)
            found.append(path)
            found.extend(all_paths(child, path))
    return found


def _parent(payload: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any] | None:
    node: Any = payload
    for key in path[:-1]:
        if not isinstance(node, dict) or not isinstance(node.get(key), dict):
            return None
        node = node[key]
    return node if isinstance(node, dict) else None


@dataclass(frozen=True)
class MutatedPayload:
    """A webhook payload after mutations; the repr names them (values can be huge)."""

    name: str
    mutations: tuple[str, ...]
    payload: dict[str, Any] = field(repr=False)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:60]}... ({len(text)} chars)"


@st.composite
def mutated_payloads(draw: st.DrawFn) -> MutatedPayload:
    """A real webhook payload with keys deleted and values of the wrong type put in."""
    name = draw(st.sampled_from(PAYLOAD_NAMES))
    payload = fresh_payload(name)
    done: list[str] = []
    if "comment" in payload and draw(st.booleans()):
        # Reach the deeper branches: a pull request comment that holds a command.
        payload["comment"]["body"] = draw(COMMENT_BODIES)
        payload["issue"]["pull_request"] = {"url": "https://example.invalid/pulls/1"}
        done.append(f"PR comment {_short(payload['comment']['body'])}")
    if "inputs" in payload and draw(st.booleans()):
        payload["inputs"] = {"tasks": draw(st.one_of(COMMENT_BODIES, json_values))}
        done.append(f"inputs.tasks = {_short(payload['inputs']['tasks'])}")
    for _ in range(draw(st.integers(0, 5))):
        path = draw(st.sampled_from(INTERESTING_PATHS + tuple(all_paths(payload)[:400])))
        parent = _parent(payload, path)
        if parent is None:
            continue
        where = ".".join(path)
        if draw(st.booleans()):
            parent.pop(path[-1], None)
            done.append(f"delete {where}")
        else:
            value = draw(st.one_of(json_values, COMMENT_BODIES, st.just(payload.get("sender"))))
            parent[path[-1]] = copy.deepcopy(value)
            done.append(f"{where} = {_short(value)}")
    # Only what a JSON file can carry reaches the action.
    loaded: dict[str, Any] = json.loads(json.dumps(payload))
    return MutatedPayload(name, tuple(done), loaded)


# --- configuration files -------------------------------------------------------------------

CONFIG_KEYS = (
    "tasks",
    "executor",
    "todo-path",
    "max-parallel",
    "timeout",
    "grace",
    "retries",
    "strategy",
    "include-deps",
    "unselected-deps",
    "fail-fast",
    "max-tasks",
    "command",
    "permission",
    "allow-forks",
    "allow-edits",
    "commit",
    "commit-message",
    "add-paths",
    "expose-token",
    "done-markers",
    "closed-markers",
    "status-markers",
)
STATUS_KEYS = ("in-progress", "completed", "failed", "blocked", "x")
config_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 10),
    st.integers(),
    st.integers(min_value=10**300, max_value=10**400),
    st.floats(),
    st.sampled_from(
        [
            *("15m", "90s", "1h", "720h", "0", "-1", "soon", "eager", "waves", "warn", "block"),
            *("write", "admin", "end", "never", "yes", "off", "[DONE]", "a\nb", "\x00", ""),
        ]
    ),
    st.text(max_size=12),
)
config_values = st.recursive(
    config_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(
            st.one_of(st.sampled_from(STATUS_KEYS), st.text(max_size=6)),
            children,
            max_size=3,
        ),
    ),
    max_leaves=8,
)
config_keys = st.one_of(
    st.sampled_from(CONFIG_KEYS),
    st.sampled_from(["max_parallel", "Timeout", "todo_path", "unknown-key", "github-token"]),
    st.text(min_size=1, max_size=12),
)
# Scalars written into YAML as they are: what a YAML file can say that a dump never would.
RAW_SCALARS = (
    "9" * 5000,
    "1" + "0" * 400,
    ".nan",
    ".inf",
    "-.inf",
    "1e400",
    "2024-13-45",
    "2024-02-30",
    "0x1F",
    "0o17",
    "~",
    "!!binary aGVsbG8=",
    "!!python/object:os.system x",
    "*undefined",
    "&a [*a]",
    "[[[[[[1]]]]]]",
    "{a: {b: {c: 1}}}",
    '"\\x00"',
    '"a\\nb"',
    "|\n  two\n  lines",
)
INVALID_YAML = st.sampled_from(
    [
        "max-parallel: [1, 2\n",
        "timeout: {a\n",
        "\tmax-parallel: 3\n",
        "a: b: c\n",
        "- a\n- b\n",
        "just text\n",
        "? [a, b]\n: 1\n",
        "key: 'unterminated\n",
        "%YAML 9.9\n---\na: 1\n",
        "a: 1\n---\nb: 2\n",
        "[" * 3000 + "]" * 3000 + "\n",
        "max-parallel: " + "[" * 3000 + "]" * 3000 + "\n",
    ]
)


@dataclass(frozen=True)
class ConfigCase:
    """A configuration file to load, with the keys it holds when it is a mapping."""

    data: bytes
    keys: tuple[str, ...] | None  # None: not a mapping of known shape (invalid YAML, bytes, ...)


@st.composite
def config_cases(draw: st.DrawFn) -> ConfigCase:
    import yaml

    kind = draw(st.sampled_from(["mapping", "raw", "invalid", "bytes"]))
    if kind == "invalid":
        return ConfigCase(draw(INVALID_YAML).encode("utf-8"), None)
    mapping = draw(st.dictionaries(config_keys, config_values, min_size=1, max_size=5))
    if kind == "raw":
        key = draw(st.sampled_from(CONFIG_KEYS))
        scalar = draw(st.sampled_from(RAW_SCALARS))
        text = yaml.safe_dump({k: v for k, v in mapping.items() if k != key}, allow_unicode=True)
        text = ("" if text.strip() == "{}" else text) + f"{key}: {scalar}\n"
        return ConfigCase(text.encode("utf-8"), None)
    text = yaml.safe_dump(mapping, allow_unicode=True)
    data = text.encode("utf-8")
    if kind == "bytes":
        at = draw(st.integers(0, len(data)))
        return ConfigCase(data[:at] + draw(st.sampled_from(INVALID_UTF8)) + data[at:], None)
    # The keys the file holds, as YAML reads them back (a dump does not always round-trip:
    # a NEL in a key reads back as a space).
    loaded = yaml.safe_load(text)
    return ConfigCase(data, tuple(str(key) for key in loaded) if isinstance(loaded, dict) else None)


# --- time limits ---------------------------------------------------------------------------


@contextlib.contextmanager
def time_limit(seconds: float, what: str) -> Iterator[None]:
    """Fail (instead of hanging) when the block runs longer than ``seconds`` (main thread)."""

    def expire(_signum: int, _frame: object) -> None:
        raise AssertionError(f"{what} took more than {seconds:.0f}s: super-linear behaviour?")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def attempt(function: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> Outcome[R]:
    """Call ``function``: its value, or the BatchError it raised (anything else propagates)."""
    try:
        return Outcome(function(*args, **kwargs), None)
    except BatchError as exc:
        return Outcome(None, exc)


class Outcome(NamedTuple, Generic[R]):
    value: R | None
    error: BatchError | None
