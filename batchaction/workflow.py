"""GitHub Actions workflow commands and files: outputs, step summary, masks, annotations."""

from __future__ import annotations

import secrets
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TextIO

STEP_SUMMARY_LIMIT = 1024 * 1024


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


class Workflow:
    """Writes workflow commands to ``out`` and the files GitHub names in the environment."""

    def __init__(self, env: Mapping[str, str], out: TextIO | None = None) -> None:
        self.env = env
        self.out = out or sys.stdout

    def command(self, name: str, message: str = "", **props: str) -> None:
        rendered = ",".join(f"{k}={escape_property(v)}" for k, v in props.items())
        self.out.write(f"::{name}{' ' + rendered if rendered else ''}::{escape_data(message)}\n")
        self.out.flush()

    def mask(self, value: str) -> None:
        if value:
            self.command("add-mask", value)

    def notice(self, message: str) -> None:
        self.command("notice", message)

    def error(self, message: str, file: str | None = None, line: int | None = None) -> None:
        props = {}
        if file:
            props["file"] = file
        if line:
            props["line"] = str(line)
        self.command("error", message, **props)

    def group(self, title: str, pieces: Iterable[str]) -> None:
        """Print untrusted text, in pieces of any size (a log excerpt read in chunks), in a
        collapsed group where it cannot run workflow commands; ended by a line break."""
        token = secrets.token_hex(16)
        self.out.write(f"::group::{escape_data(title)}\n::stop-commands::{token}\n")
        last = "\n"
        for piece in pieces:
            if piece:
                self.out.write(piece)
                last = piece[-1]
        if last != "\n":
            self.out.write("\n")
        self.out.write(f"::{token}::\n::endgroup::\n")
        self.out.flush()

    def set_outputs(self, values: Mapping[str, str]) -> None:
        path = self.env.get("GITHUB_OUTPUT")
        if not path:
            return
        with Path(path).open("a", encoding="utf-8") as handle:
            for name, value in values.items():
                delimiter = f"ghadelimiter_{secrets.token_hex(16)}"
                handle.write(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")

    def step_summary(self, markdown: str) -> None:
        path = self.env.get("GITHUB_STEP_SUMMARY")
        if not path:
            return
        data = markdown.encode("utf-8")
        if len(data) > STEP_SUMMARY_LIMIT - 1024:
            # Drop a character the cut split in two (a long line has no newline to cut at).
            cut = data[: STEP_SUMMARY_LIMIT - 1024].decode("utf-8", "ignore").encode("utf-8")
            data = cut.rsplit(b"\n", 1)[0]
            data += b"\n\n...(truncated: the full summary is in the summary-json output)\n"
        with Path(path).open("ab") as handle:
            handle.write(data + b"\n")


def run_key(env: Mapping[str, str]) -> str:
    """``<run id>-<run attempt>`` from ``GITHUB_RUN_ID`` and ``GITHUB_RUN_ATTEMPT`` (digits
    only, ``0`` when unset): this run among the workflow's runs and their re-runs."""
    return "-".join(
        "".join(ch for ch in env.get(name, "") if ch.isdigit()) or "0"
        for name in ("GITHUB_RUN_ID", "GITHUB_RUN_ATTEMPT")
    )
