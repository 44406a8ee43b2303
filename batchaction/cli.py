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
from batchaction.cliargs import add_planning, load_plan, settings_for, todo_for
from batchaction.errors import EXIT_INVALID_INPUT, EXIT_OK, EXIT_SIGINT, BatchError


class _Parser(argparse.ArgumentParser):
    """argparse that exits 2 with the usage line, never a traceback."""

    def error(self, message: str) -> Any:
        self.print_usage(sys.stderr)
        raise BatchError(f"{self.prog}: {message}")


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
    add_planning(plan)
    plan.add_argument(
        "--format",
        choices=("text", "json", "mermaid", "dot"),
        default="text",
        help="text (default), one JSON object, a Mermaid flowchart or a Graphviz digraph",
    )
    plan.add_argument(
        "--json", dest="format", action="store_const", const="json", help="--format json"
    )
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


def cmd_plan(args: argparse.Namespace) -> int:
    from batchaction.graphview import mermaid_too_large, plan_dot, plan_mermaid  # noqa: PLC0415
    from batchaction.planview import plan_json, plan_text  # noqa: PLC0415

    _, todo, _, result = load_plan(args)
    if args.format == "json":
        print(json.dumps(plan_json(result)))
        return EXIT_OK
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.format == "text":
        sys.stdout.write(plan_text(result, str(todo)))
    elif args.format == "dot":
        sys.stdout.write(plan_dot(result))
    else:
        # Past 60 tasks: nothing on stdout, the note on stderr, exit 0.
        text = plan_mermaid(result)
        sys.stdout.write(text or "")
        if text is None:
            print(f"note: {mermaid_too_large(result)} Use --format dot.", file=sys.stderr)
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
    except BatchError as exc:  # exit 0: nothing to do (``run failed`` with nothing failed)
        print(f"batchaction: {'error: ' if exc.exit_code else ''}{exc}", file=sys.stderr)
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
