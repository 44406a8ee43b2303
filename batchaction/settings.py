"""Options shared by the CLI, the configuration file and the action inputs (SPEC 10).

Precedence: command-line flag / action input > ``.github/batchaction.yml`` > default.
Every value may arrive as a string (action inputs always do) and is checked here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from batchaction.depfields import OWN_FIELDS, normalize
from batchaction.errors import BatchError
from batchaction.executoruser import parse_setting as _executor_user
from batchaction.selection import DEFAULT_MAX_TASKS

DEFAULT_CONFIG = Path(".github/batchaction.yml")
TODO_CANDIDATES = ("TODO.md", "specs/TODO.md", ".opencode/specs/TODO.md", ".claude/specs/TODO.md")
STATUS_KEYS = ("in-progress", "completed", "failed", "blocked")
PERMISSIONS = ("none", "read", "triage", "write", "maintain", "admin")

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(s|sec|secs|seconds?|m|min|mins|minutes?|h|hours?)?")
_UNIT_SECONDS = {"s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: str | float, name: str = "duration") -> float:
    """Seconds from ``90``, ``90s``, ``15m``, ``1h``."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            seconds = float(value)
        except OverflowError:  # an integer too large for a float
            seconds = math.inf
    else:
        match = _DURATION.fullmatch(str(value).strip().lower())
        if match is None:
            raise BatchError(
                f"invalid {name} {value!r}: expected seconds or a duration like 90, 90s, 15m, 1h"
            )
        seconds = float(match[1]) * _UNIT_SECONDS[(match[2] or "s")[0]]
    if not math.isfinite(seconds):
        raise BatchError(f"invalid {name} {value!r}: expected a finite number of seconds")
    if seconds <= 0:
        raise BatchError(f"invalid {name} {value!r}: must be more than zero")
    return seconds


def _bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0", ""):
        return False
    raise BatchError(f"invalid {name} {value!r}: expected true or false")


def _int(minimum: int) -> Callable[[Any, str], int]:
    def parse(value: Any, name: str) -> int:
        if isinstance(value, bool):
            raise BatchError(f"invalid {name} {value!r}: expected a whole number")
        try:
            number = int(str(value).strip())
        except ValueError:
            raise BatchError(f"invalid {name} {value!r}: expected a whole number") from None
        if number < minimum:
            raise BatchError(f"invalid {name} {value!r}: must be at least {minimum}")
        return number

    return parse


def _choice(*choices: str) -> Callable[[Any, str], str]:
    def parse(value: Any, name: str) -> str:
        text = str(value).strip().lower()
        if text not in choices:
            raise BatchError(f"invalid {name} {value!r}: expected one of {', '.join(choices)}")
        return text

    return parse


def _text(value: Any, name: str) -> str:
    if isinstance(value, dict | list):
        raise BatchError(f"invalid {name}: expected text, got a {type(value).__name__}")
    return str(value)


def _optional_text(value: Any, name: str) -> str | None:
    text = _text(value, name).strip()
    return text or None


def _text_list(value: Any, name: str) -> tuple[str, ...]:
    items = value if isinstance(value, list) else re.split(r"[\n,]", str(value))
    if not all(isinstance(item, str | int | float) for item in items):
        raise BatchError(f"invalid {name}: expected a list of text items")
    return tuple(str(item).strip() for item in items if str(item).strip())


def _markers(value: Any, name: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict):
        raise BatchError(f"invalid {name}: expected a mapping like {{completed: '[DONE]'}}")
    unknown = sorted(set(map(str, value)) - set(STATUS_KEYS))
    if unknown:
        raise BatchError(
            f"invalid {name}: unknown key(s) {', '.join(unknown)}; "
            f"expected {', '.join(STATUS_KEYS)}"
        )
    return tuple(sorted((str(k), _marker(v, f"{name}.{k}")) for k, v in value.items()))


def _marker(value: Any, name: str) -> str:
    """A Status value to write: one printable line (a line break would add TODO.md lines)."""
    text = _text(value, name)
    if not text.strip() or not text.isprintable():
        raise BatchError(f"invalid {name} {text!r}: expected one line of text like '[DONE]'")
    return text


def _field_names(value: Any, name: str) -> tuple[str, ...]:
    """Names of TODO.md fields (``[Needs, Waits For]``): each must have a letter and no ``*``."""
    names = _text_list(value, name)
    for item in names:
        if not any(ch.isalpha() for ch in item) or "*" in item or ":" in item:
            raise BatchError(
                f"invalid {name} {item!r}: expected a field name as written between ** **, "
                "like 'Needs'"
            )
        if normalize(item) in ("status", *OWN_FIELDS):
            raise BatchError(
                f"invalid {name} {item!r}: batchaction writes that field itself; "
                "it cannot hold dependencies"
            )
    return names


_SIZE = re.compile(r"(\d+)\s*(b|k|kb|kib|m|mb|mib)?")


def _bytes(value: Any, name: str) -> int:
    """A size in bytes from ``65536``, ``64k``, ``64 KiB``, ``1M`` (k and M are binary, as
    KiB and MiB); zero allowed."""
    match = _SIZE.fullmatch(str(value).strip().lower()) if not isinstance(value, bool) else None
    if match is None:
        raise BatchError(f"invalid {name} {value!r}: expected a size like 65536, 64KiB or 1MiB")
    return int(match[1]) * {"k": 1024, "m": 1024 * 1024}.get((match[2] or "b")[0], 1)


def _seconds(value: Any, name: str) -> float:
    return parse_duration(value, name)


def _seconds_or_none(value: Any, name: str) -> float | None:
    """A duration, or ``none``/``off`` for no limit."""
    if str(value).strip().lower() in ("none", "off"):
        return None
    return parse_duration(value, name)


@dataclass(frozen=True)
class Settings:
    """Every option, with its default. Field names are the kebab-case keys with underscores."""

    tasks: str | None = None
    executor: str | None = None
    todo_path: str | None = None
    max_parallel: int = 5
    timeout: float = 3600.0
    grace: float = 10.0
    retries: int = 0
    strategy: str = "eager"
    include_deps: bool = False
    unselected_deps: str = "warn"
    fail_fast: bool = False
    max_tasks: int = DEFAULT_MAX_TASKS
    command: str = "/task"
    permission: str = "write"
    allow_forks: bool = False
    allow_edits: bool = False
    commit: str = "end"
    commit_message: str | None = None
    add_paths: tuple[str, ...] = ()
    expose_token: bool = False
    done_markers: tuple[str, ...] = ()
    closed_markers: tuple[str, ...] = ()
    status_markers: tuple[tuple[str, str], ...] = ()
    dependency_fields: tuple[str, ...] = ()
    reverse_dependency_fields: tuple[str, ...] = ()
    isolation: str | None = None  # worktree or none; None: worktree in a git repository
    worktree_copy: tuple[str, ...] = ()
    worktree_link: tuple[str, ...] = ()
    task_author: str | None = None  # "Name <email>" for commits made on a task's behalf
    verify: str | None = None  # a command that must pass before a task's work is integrated
    verify_on: str = "integrated"  # integrated (on the tip with the task's work) or task
    stall_timeout: float | None = None  # seconds without output before a task is stopped
    push_failed_branches: bool = False  # action: push the branches that keep unintegrated work
    executor_user: str = "auto"  # action as root: auto (the workspace owner), root, UID[:GID]
    lock_timeout: float = 60.0  # seconds a run may wait for the TODO lock, in all
    run_deadline: float | None = None  # seconds after the start: nothing new starts past it
    push_every: float = 600.0  # action, worktrees: push integrated work at most this often
    log_excerpt: int = 64 * 1024  # action: bytes of each task's log printed in the job log
    check_run: bool = False  # action, comment runs: a check run on the PR head (checks: write)
    progress_interval: float = 10.0  # action, comment runs: seconds between progress edits

    def with_values(self, values: Mapping[str, Any], origin: str) -> Settings:
        """A copy with kebab-case ``values`` applied; unknown keys and bad values -> exit 2."""
        known = {f.name.replace("_", "-"): f.name for f in fields(self)}
        unknown = sorted(str(key) for key in values if key not in known)
        if unknown:
            raise BatchError(
                f"{origin}: unknown key(s): {', '.join(unknown)}; "
                f"known keys are {', '.join(sorted(known))}"
            )
        changes = {
            known[key]: PARSERS[key](value, f"{key} in {origin}")
            for key, value in values.items()
            if value is not None
        }
        updated = replace(self, **changes)
        both = {normalize(n) for n in updated.dependency_fields} & {
            normalize(n) for n in updated.reverse_dependency_fields
        }
        if both:
            raise BatchError(
                f"{origin}: {', '.join(sorted(both))} is in both dependency-fields and "
                "reverse-dependency-fields: a field is read one way; keep it in one list"
            )
        return updated


PARSERS: dict[str, Callable[[Any, str], Any]] = {
    "tasks": _optional_text,
    "executor": _optional_text,
    "todo-path": _optional_text,
    "max-parallel": _int(1),
    "timeout": _seconds,
    "grace": _seconds,
    "retries": _int(0),
    "strategy": _choice("eager", "waves"),
    "include-deps": _bool,
    "unselected-deps": _choice("warn", "block"),
    "fail-fast": _bool,
    "max-tasks": _int(1),
    "command": _text,
    "permission": _choice(*PERMISSIONS),
    "allow-forks": _bool,
    "allow-edits": _bool,
    "commit": _choice("end", "each", "never"),
    "commit-message": _optional_text,
    "add-paths": _text_list,
    "expose-token": _bool,
    "done-markers": _text_list,
    "closed-markers": _text_list,
    "status-markers": _markers,
    "isolation": _choice("worktree", "none"),
    "worktree-copy": _text_list,
    "worktree-link": _text_list,
    "task-author": _optional_text,
    "verify": _optional_text,
    "verify-on": _choice("integrated", "task"),
    "stall-timeout": _seconds,
    "push-failed-branches": _bool,
    "executor-user": _executor_user,
    "lock-timeout": _seconds,
    "run-deadline": _seconds_or_none,
    "push-every": _seconds,
    "log-excerpt": _bytes,
    "check-run": _bool,
    "progress-interval": _seconds,
    "dependency-fields": _field_names,
    "reverse-dependency-fields": _field_names,
}


def load_config(path: Path, *, required: bool) -> dict[str, Any]:
    """Read the YAML configuration file; a missing optional file is an empty mapping."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if required:
            raise BatchError(f"{path}: configuration file not found") from None
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise BatchError(f"{path}: cannot read configuration: {exc}") from None
    import yaml  # noqa: PLC0415 - only needed when a configuration file exists

    class Loader(yaml.SafeLoader):
        def construct_object(self, node: Any, deep: bool = False) -> Any:
            # PyYAML lets ValueError through (``2024-13-45``, an integer of 5000 digits).
            try:
                return super().construct_object(node, deep)
            except ValueError as exc:
                raise yaml.MarkedYAMLError(
                    problem=f"cannot read {node.value!s:.40}: {exc}", problem_mark=node.start_mark
                ) from None

    try:
        data = yaml.load(text, Loader=Loader)  # noqa: S506 - a SafeLoader
    except RecursionError:
        raise BatchError(f"{path}: invalid YAML: nested too deeply") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f":{where.line + 1}" if where is not None else ""
        raise BatchError(f"{path}{line}: invalid YAML: {getattr(exc, 'problem', exc)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise BatchError(f"{path}: expected a mapping of option: value at the top level")
    return {str(key): value for key, value in data.items()}


def resolve(
    flags: Mapping[str, Any],
    config_path: Path | None,
    base: Path = Path(),
    defaults: Mapping[str, Any] | None = None,
) -> Settings:
    """Default < ``defaults`` (kebab-case keys: the environment's, e.g. under GitHub Actions)
    < config file < flags. ``flags`` maps kebab-case keys to given values."""
    explicit = config_path is not None
    path = config_path if config_path is not None else base / DEFAULT_CONFIG
    settings = Settings().with_values(defaults or {}, "defaults")
    settings = settings.with_values(load_config(path, required=explicit), str(path))
    return settings.with_values(flags, "command line")


def find_todo(given: str | None, base: Path = Path()) -> Path:
    """The TODO file: the one given, else the first that exists of the usual places."""
    if given:
        return base / given
    for candidate in TODO_CANDIDATES:
        if (base / candidate).is_file():
            return base / candidate
    raise BatchError(
        "no TODO file found (looked for " + ", ".join(TODO_CANDIDATES) + "): pass --todo PATH"
    )
