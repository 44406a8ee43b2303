"""The ``batchaction`` command line: one function per subcommand, each returning an exit code."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from batchaction import __version__
from batchaction.errors import EXIT_INVALID_INPUT, EXIT_OK, EXIT_SIGINT, BatchError
from batchaction.settings import Settings, find_todo, resolve


class _Parser(argparse.ArgumentParser):
    """argparse that exits 2 with the usage line, never a traceback."""

    def error(self, message: str) -> Any:
        self.print_usage(sys.stderr)
        raise BatchError(f"{self.prog}: {message}")


def _add_todo(parser: argparse.ArgumentParser) -> None:
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


def _add_planning(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("selection", nargs="+", help="task numbers and ranges: 63, 65-67")
    _add_todo(parser)
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


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="batchaction",
        description="Run numbered TODO.md tasks in dependency order, in parallel, "
        "and keep their statuses true.",
    )
    parser.add_argument("--version", action="version", version=f"batchaction {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    plan = commands.add_parser("plan", help="show the dependency waves for a selection")
    _add_planning(plan)
    plan.add_argument("--json", action="store_true", help="print one JSON object")
    plan.set_defaults(func=cmd_plan)

    lint = commands.add_parser("lint", help="check TODO files (compiler-style output)")
    lint.add_argument("paths", nargs="*", metavar="PATH", help="TODO files (default: auto-detect)")
    lint.add_argument(
        "--config",
        metavar="PATH",
        help="configuration file (default: .github/batchaction.yml when it exists)",
    )
    lint.set_defaults(func=cmd_lint)

    for register in _extra_commands():
        register(commands)
    return parser


def _extra_commands() -> list[Callable[[Any], None]]:
    from batchaction import runcmd  # noqa: PLC0415

    return [runcmd.register]


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
    config = Path(args.config) if getattr(args, "config", None) else None
    flags = flag_values(args)
    if getattr(args, "todo", None):
        flags["todo-path"] = args.todo
    return resolve(flags, config, base=root_base())


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
    from batchaction.loading import read_and_plan  # noqa: PLC0415
    from batchaction.selection import parse_selection  # noqa: PLC0415

    settings = settings_for(args)
    selection = parse_selection(" ".join(args.selection), settings.max_tasks)
    todo = todo_for(args, settings)
    doc, result = read_and_plan(settings, todo, selection)
    return settings, todo, doc, result


def cmd_plan(args: argparse.Namespace) -> int:
    from batchaction.planview import plan_json, plan_text  # noqa: PLC0415

    _, todo, _, result = load_plan(args)
    if args.json:
        print(json.dumps(plan_json(result)))
    else:
        for warning in result.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        sys.stdout.write(plan_text(result, str(todo)))
    return EXIT_OK


def cmd_lint(args: argparse.Namespace) -> int:
    from batchaction.lint import has_errors, lint_document  # noqa: PLC0415
    from batchaction.loading import dependency_fields, read_document  # noqa: PLC0415

    settings = settings_for(args)
    paths = [Path(p) for p in args.paths] or [todo_for(args, settings)]
    status = EXIT_OK
    for path in paths:
        try:
            doc = read_document(settings, path)
        except BatchError as exc:
            # A file that cannot be read (missing, a directory, not UTF-8, binary) is invalid
            # input, not a finding about its content: exit 2, which wins over exit 1.
            print(_compiler_style(str(path), str(exc)))
            status = max(status, EXIT_INVALID_INPUT)
            continue
        problems = lint_document(doc, dependency_fields(settings))
        for problem in problems:
            print(problem.render(str(path)))
        if has_errors(problems):
            status = max(status, 1)  # errors in the content
    return status


def _compiler_style(path: str, message: str) -> str:
    """``path:line: error: message`` for a file-level error (line 1 when none is known)."""
    match = re.match(re.escape(path) + r"(?::(\d+))?:\s*(?:error:\s*)?(.*)", message, re.DOTALL)
    if match is None:
        return f"{path}:1: error: {message}"
    return f"{path}:{match[1] or 1}: error: {match[2]}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        code: int = args.func(args)
    except BatchError as exc:
        print(f"batchaction: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("batchaction: interrupted", file=sys.stderr)
        return EXIT_SIGINT
    except BrokenPipeError:
        # Output closed early (e.g. piped into head): not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
