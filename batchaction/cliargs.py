"""What the subcommands share: the TODO and planning options, the settings from defaults, the
configuration file and the flags, the TODO file to use, and the plan for a selection."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from batchaction.errors import EXIT_OK, BatchError
from batchaction.settings import Settings, find_todo, resolve


def add_todo(parser: argparse.ArgumentParser) -> None:
    """``--todo PATH`` and ``--config PATH``."""
    parser.add_argument(
        "--todo",
        metavar="PATH",
        help="the TODO file (default: the first of TODO.md, specs/TODO.md, "
        ".opencode/specs/TODO.md, .claude/specs/TODO.md)",
    )
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="configuration file (default: .github/batchaction.yml when it exists)",
    )


def add_planning(parser: argparse.ArgumentParser) -> None:
    """``SELECTION... --todo --config --include-deps --unselected-deps --max-tasks``."""
    parser.add_argument(
        "selection",
        nargs="+",
        help="task numbers and ranges: 63, 65-67; or `failed`: the failed tasks and those "
        "batchaction blocked",
    )
    parser.add_argument(
        "--all",
        action="store_true",
        dest="every_blocked",
        help="with `failed`: every blocked task too, whatever blocked it",
    )
    add_todo(parser)
    parser.add_argument(
        "--include-deps",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="pull open dependencies into the run, transitively (--no-include-deps overrides "
        "the configuration file)",
    )
    parser.add_argument(
        "--unselected-deps",
        choices=("warn", "block"),
        help="an open dependency that is not selected: warn and run (default) or block the task",
    )
    parser.add_argument("--max-tasks", metavar="N", help="cap on selected tasks (default 500)")


def flag_values(args: argparse.Namespace) -> dict[str, Any]:
    """The options given on the command line, as kebab-case configuration keys."""
    names = {name.replace("-", "_") for name in _setting_keys()}
    return {
        name.replace("_", "-"): value
        for name, value in vars(args).items()
        if name in names and value is not None
    }


def _setting_keys() -> list[str]:
    return [name.replace("_", "-") for name in Settings.__dataclass_fields__]


def root_base() -> Path:
    """The repository root as a path relative to the working directory (``.``, ``..``, ...).

    The default configuration file, ``todo-path`` from it and the auto-detected TODO file are
    found from here, as git finds its files from the work tree's top in a subdirectory.
    """
    from batchaction.repo import repository_root  # noqa: PLC0415

    cwd = Path.cwd()
    return Path(os.path.relpath(repository_root(cwd), cwd))


def settings_for(args: argparse.Namespace) -> Settings:
    """Default < configuration file (``--config``, else the repository's) < command line."""
    from batchaction.runlimits import environment_defaults  # noqa: PLC0415

    config = Path(args.config) if getattr(args, "config", None) else None
    flags = flag_values(args)
    if getattr(args, "todo", None):
        flags["todo-path"] = args.todo
    defaults = environment_defaults(os.environ, action=False)  # run-deadline under Actions
    return resolve(flags, config, base=root_base(), defaults=defaults)


def todo_for(args: argparse.Namespace, settings: Settings) -> Path:
    """The TODO file: ``--todo`` as typed (relative to the working directory, else to the
    repository root); else ``$BATCH_TODO_PATH`` (set for executors: the run's shared file);
    else ``todo-path`` from the configuration file or the first usual place, both from the
    repository root. BatchError (exit 2) when none is found.
    """
    base = root_base()
    given = getattr(args, "todo", None)
    shared = os.environ.get("BATCH_TODO_PATH")
    if not given and shared and not settings.todo_path:
        # Inside a task's worktree: the shared TODO file, edited under its lock.
        return Path(shared)
    if given:
        typed = Path(given)
        if typed.is_absolute() or typed.exists() or not (base / typed).exists():
            return typed
        return base / typed
    return find_todo(settings.todo_path, base=base)


def load_plan(args: argparse.Namespace) -> tuple[Settings, Path, Any, Any]:
    """Shared by plan and run: settings, TODO path, parsed document and plan."""
    from batchaction.loading import read_and_plan, read_document  # noqa: PLC0415
    from batchaction.retry import (  # noqa: PLC0415
        RetryRequest,
        nothing_to_retry,
        parse_request,
        pick_retry,
    )

    settings = settings_for(args)
    text = " ".join(args.selection) + (" --all" if args.every_blocked else "")
    selection = parse_request(text, settings.max_tasks)
    todo = todo_for(args, settings)
    if isinstance(selection, RetryRequest):
        pick = pick_retry(read_document(settings, todo).tasks, dict(settings.status_markers))
        request, selection = selection, pick.selection(selection, settings.max_tasks)
        if not selection:
            why = nothing_to_retry(pick, request, f"batchaction {args.command}").replace("`", "'")
            raise BatchError(f"nothing to retry in {todo}: {why}", EXIT_OK)
    doc, result = read_and_plan(settings, todo, selection)
    return settings, todo, doc, result
