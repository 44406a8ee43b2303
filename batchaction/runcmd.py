"""The ``run`` and ``status set`` subcommands."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from batchaction.errors import EXIT_OK, BatchError
from batchaction.status import MarkerStyle

# One Status value a person would type: words of letters and digits, joined by blanks, "-",
# "_", "/", "&" or "'" (``on-hold``, ``PR READY``, ``needs review``).
_STATUS_WORD = re.compile(r"[^\W_][\w'&/ -]*", re.UNICODE)

STATUS_WORDS = {
    "in-progress": "in-progress",
    "inprogress": "in-progress",
    "started": "in-progress",
    "completed": "completed",
    "complete": "completed",
    "done": "completed",
    "failed": "failed",
    "blocked": "blocked",
    "not-started": "not-started",
    "notstarted": "not-started",
}


def register(commands: Any) -> None:
    from batchaction.cliargs import add_planning  # noqa: PLC0415

    run = commands.add_parser("run", help="run the selected tasks")
    add_planning(run)
    run.add_argument(
        "--executor", metavar="CMD", help="shell command per task; {number} is replaced"
    )
    run.add_argument("--max-parallel", metavar="N", help="tasks at once (default 5)")
    run.add_argument("--timeout", metavar="DUR", help="per task: 90, 90s, 15m, 1h (default 1h)")
    run.add_argument("--grace", metavar="DUR", help="SIGTERM to SIGKILL (default 10s)")
    run.add_argument("--retries", metavar="N", help="retries for failed tasks (default 0)")
    run.add_argument("--strategy", choices=("eager", "waves"), help="scheduling (default eager)")
    run.add_argument(
        "--isolation",
        choices=("worktree", "none"),
        help="worktree: each task in its own git worktree, its commits integrated in dependency "
        "order (default in a git repository with a commit); none: all tasks share the work tree",
    )
    run.add_argument(
        "--verify",
        metavar="CMD",
        help="a command ({number} replaced) that must pass before a task's work is integrated",
    )
    run.add_argument(
        "--verify-on",
        choices=("integrated", "task"),
        help="integrated: on the tip with the task's work replayed (default); task: in the "
        "task's worktree (cheaper, blind to tasks that break each other)",
    )
    run.add_argument(
        "--stall-timeout",
        metavar="DUR",
        help="a task that prints nothing for this long is stopped as timed-out (default: off)",
    )
    run.add_argument(
        "--lock-timeout",
        metavar="DUR",
        help="longest wait for TODO.md.lock in the whole run; past it statuses that cannot be "
        "written are reported (default 60s)",
    )
    run.add_argument(
        "--run-deadline",
        metavar="DUR",
        help="start no task after this long; running ones get the grace period (default: "
        "330m (5h 30m) under GitHub Actions, else none)",
    )
    run.add_argument(
        "--fail-fast",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="start nothing new after the first failure",
    )
    run.add_argument("--summary-json", metavar="PATH", help="write the JSON summary here")
    run.add_argument("--summary-md", metavar="PATH", help="write the Markdown summary here")
    run.add_argument("--log-dir", metavar="DIR", help="per-task logs (default: a temp directory)")
    stream = run.add_mutually_exclusive_group()
    stream.add_argument(
        "--stream", action="store_true", default=None, help="echo output as [63] lines"
    )
    stream.add_argument("--no-stream", action="store_false", dest="stream")
    run.add_argument("--log-format", choices=("console", "json"), default="console")
    run.set_defaults(func=cmd_run)

    status = commands.add_parser("status", help="change a task's status in the TODO file")
    actions = status.add_subparsers(dest="status_command", metavar="ACTION")
    actions.required = True
    set_ = actions.add_parser("set", help="set a task's status (same locked write as run)")
    set_.add_argument("number", help="task number")
    set_.add_argument(
        "status",
        help="in-progress, completed, failed, blocked, not-started, or any other word "
        "(planned, '[ON HOLD]'), written in the file's own style",
    )
    set_.add_argument("--todo", metavar="PATH", help="the TODO file (default: auto-detect)")
    set_.add_argument("--reason", help="why (for failed and blocked)")
    set_.set_defaults(func=cmd_status_set)

    demo = commands.add_parser("demo", help="run the whole pipeline on a bundled example")
    demo.add_argument("--keep", action="store_true", help="keep the scratch repository")
    demo.set_defaults(func=cmd_demo)

    action = commands.add_parser(
        "action", help="the GitHub Action entrypoint (reads GITHUB_* and INPUT_*)"
    )
    action.set_defaults(func=cmd_action)


def cmd_action(args: argparse.Namespace) -> int:
    from batchaction.tokenhandoff import isolate  # noqa: PLC0415

    # First: re-executes without the token in the environment (it arrives through a pipe).
    isolate()
    from batchaction.action import run_action  # noqa: PLC0415

    return run_action()


def cmd_demo(args: argparse.Namespace) -> int:
    from batchaction.demo import run_demo  # noqa: PLC0415

    return run_demo(keep=args.keep)


def cmd_run(args: argparse.Namespace) -> int:
    from batchaction.cliargs import load_plan  # noqa: PLC0415
    from batchaction.progress import (  # noqa: PLC0415
        HumanReporter,
        JsonReporter,
        configure_json_logging,
        final_report,
    )
    from batchaction.runner import RunRequest, execute  # noqa: PLC0415

    settings, todo, doc, plan = load_plan(args)
    if not settings.executor:
        raise BatchError("no executor: pass --executor 'CMD' (use {number} for the task number)")
    stream = sys.stdout.isatty() if args.stream is None else bool(args.stream)
    reporter: Any
    if args.log_format == "json":
        configure_json_logging()
        reporter = JsonReporter()
        for warning in plan.warnings:
            reporter.plan_warning(warning)
    else:
        reporter = HumanReporter(total=len(plan.run) + len(plan.blocked))
        for warning in plan.warnings:
            print(f"warning: {warning}", file=sys.stderr)
    result = execute(
        RunRequest(
            settings=settings,
            todo=todo,
            doc=doc,
            plan=plan,
            reporter=reporter,
            stream=stream,
            log_dir=Path(args.log_dir) if args.log_dir else None,
            summary_json=Path(args.summary_json) if args.summary_json else None,
            summary_md=Path(args.summary_md) if args.summary_md else None,
        )
    )
    if args.log_format == "json":
        reporter.run_finished(result.summary)
    else:
        print(final_report(result.summary), file=sys.stderr)
    return result.exit_code


def status_value(word: str, style: MarkerStyle) -> str:
    """A status word other than the five outcomes, in the file's style: ``on-hold`` ->
    ``[ON HOLD]`` in a bracketed file, ``On Hold`` in a plain one. BatchError (exit 2) for
    text that cannot be one Status value."""
    text = word.strip()
    inner = text[1:-1].strip() if text.startswith("[") and text.endswith("]") else text
    if not _STATUS_WORD.fullmatch(inner) or len(inner) > 100:
        raise BatchError(
            f"invalid status {word!r}: expected in-progress, completed, failed, blocked, "
            "not-started, or one word or phrase such as planned or '[ON HOLD]'"
        )
    words = [w for w in re.split(r"[\s_-]+", inner) if w]
    if style.bracketed:
        return "[" + " ".join(w.upper() for w in words) + "]"
    mixed = inner != inner.lower() and inner != inner.upper()
    return " ".join(w if mixed else w.capitalize() for w in words)


def cmd_status_set(args: argparse.Namespace) -> int:
    from batchaction.cliargs import settings_for, todo_for  # noqa: PLC0415
    from batchaction.loading import status_table  # noqa: PLC0415
    from batchaction.status import classify, detect_style  # noqa: PLC0415
    from batchaction.textlines import read_todo_text  # noqa: PLC0415
    from batchaction.todo import parse_todo  # noqa: PLC0415
    from batchaction.writeback import StatusChange, today, write_changes  # noqa: PLC0415

    try:
        number = int(str(args.number).lstrip("#"))
    except ValueError:
        raise BatchError(f"invalid task number {args.number!r}: expected digits like 63") from None
    key = "".join(str(args.status).lower().strip("[]").replace("_", "-").split())
    outcome = STATUS_WORDS.get(key) or STATUS_WORDS.get(key.replace("-", ""))
    settings = settings_for(args)
    todo = todo_for(args, settings)
    table = status_table(settings)
    doc = parse_todo(read_todo_text(todo), table)
    matches = [t for t in doc.tasks if t.number == number]
    if not matches:
        raise BatchError(f"task {number} is not in {todo}: check the number")
    if len(matches) > 1:
        lines = " and ".join(str(t.heading_line + 1) for t in matches)
        raise BatchError(
            f"task {number} is defined more than once in {todo} (lines {lines}): fix that first"
        )
    statuses = [f for f in (*matches[0].fields, *matches[0].repeated) if f.key == "status"]
    if len(statuses) > 1:
        lines = " and ".join(str(f.line + 1) for f in sorted(statuses, key=lambda f: f.line))
        raise BatchError(
            f"task {number} has {len(statuses)} Status fields in {todo} (lines {lines}): "
            "keep one, then set it"
        )
    markers = dict(settings.status_markers)
    style = detect_style((t.status for t in doc.tasks), markers)
    if outcome == "not-started":
        value = style.render("not-started")
        change = StatusChange(number, "set", today(), value=value, stale="not-started")
    elif outcome is not None:
        change = StatusChange(number, outcome, today(), args.reason)  # type: ignore[arg-type]
    else:
        value = status_value(str(args.status), style)
        state = "done" if classify(value, table) == "done" else "open"
        change = StatusChange(number, "set", today(), value=value, stale=state)
    from batchaction.repo import exclude_lock_file  # noqa: PLC0415

    exclude_lock_file(todo)
    try:
        result = write_changes(todo, [change], table, markers)
    except OSError as exc:
        raise BatchError(f"{todo}: cannot write: {exc.strerror or exc}", 1) from None
    if result.missing:
        raise BatchError(f"task {number} disappeared from {todo} while writing; try again")
    return EXIT_OK
