"""A check run on the pull request for a comment-triggered run (``check-run: true``).

A run started by a comment belongs to no check suite of the pull request's head, so it would
show nowhere on the PR but in the comment. With ``check-run``, the action creates one check run
named after the command (``/task 63-67``) on the head commit it runs on, ``in_progress`` with a
link to the run, and completes it with the run's conclusion and the Markdown summary; the same
completed check run is created on the commit the action pushed, which is the PR's new head.
It needs ``checks: write``; without it, or on any API error, a warning says so and the run
goes on.

Source: GitHub REST API, "Check runs" (https://docs.github.com/en/rest/checks/runs): ``name``,
``head_sha``, ``status`` (``in_progress``, ``completed``), ``conclusion`` (``success``,
``failure``, ``cancelled``, ``timed_out``, ``neutral``...), ``details_url``, ``external_id``,
``output.title`` and ``output.summary`` (at most 65,535 characters).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from batchaction.github import GitHub, GitHubError

OUTPUT_LIMIT = 65_535  # characters of output.summary (GitHub's limit)


def conclusion_of(summary: Mapping[str, Any]) -> str:
    """The check run's conclusion for a JSON summary: ``success``; ``cancelled`` for an
    interrupted run; ``timed_out`` when the run deadline stopped it; else ``failure``."""
    if summary.get("result") == "interrupted":
        return "cancelled"
    if (summary.get("deadline") or {}).get("reached"):
        return "timed_out"
    return "success" if summary.get("result") == "success" else "failure"


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _output(title: str, text: str) -> dict[str, str]:
    if len(text) > OUTPUT_LIMIT:
        text = text[: OUTPUT_LIMIT - 100].rsplit("\n", 1)[0] + "\n\n…(truncated)\n"
    return {"title": title[:1000], "summary": text}


class CheckRun:
    """One run's check runs: created on ``head_sha`` by ``start``, completed by ``complete``
    (again on the pushed commit). ``warn`` receives the API errors (one warning each)."""

    def __init__(
        self,
        gh: GitHub,
        owner: str,
        repo: str,
        *,
        name: str,
        details_url: str,
        external_id: str,
        warn: Callable[[str], None],
    ) -> None:
        self.gh, self.owner, self.repo = gh, owner, repo
        self.name, self.details_url, self.external_id = name[:200], details_url, external_id
        self.warn = warn
        self.id: int | None = None
        self.head_sha: str | None = None
        self.completed: str | None = None  # the conclusion given, once completed
        self.posted_on: set[str] = set()  # commits given a completed check run of their own
        self.disabled = False  # the first call failed: no more calls (and warnings) follow

    def start(self, head_sha: str, title: str, text: str) -> None:
        """Create the check run ``in_progress`` on ``head_sha``."""
        self.head_sha = head_sha
        try:
            self.id = self.gh.create_check_run(self.owner, self.repo, {
                "name": self.name, "head_sha": head_sha, "status": "in_progress",
                "started_at": _now(), "details_url": self.details_url,
                "external_id": self.external_id, "output": _output(title, text),
            })  # fmt: skip
        except GitHubError as exc:
            if exc.status is None or exc.status >= 500:  # it may have been stored all the same
                self.id = self._stored(head_sha)
                if self.id is not None:
                    return
            hint = " (does the job have `checks: write`?)" if exc.status == 403 else ""
            self.warn(f"could not create the check run{hint}: {exc}")
            self.disabled = True

    def _stored(self, sha: str) -> int | None:
        """The id of this run's check run on ``sha`` (its ``external_id``), if GitHub stored
        one; None when there is none or it cannot be read."""
        try:
            found = self.gh.check_runs_for(self.owner, self.repo, sha, self.name)
        except GitHubError:
            return None
        ids = [r.get("id") for r in found if r.get("external_id") == self.external_id]
        return next((i for i in ids if type(i) is int), None)

    def complete(
        self, conclusion: str, title: str, text: str, pushed_sha: str | None = None
    ) -> None:
        """Complete the check run with ``conclusion`` and the summary ``text``; when the run
        pushed ``pushed_sha`` (another commit), create the same completed check run there."""
        if self.disabled:
            return
        fields = {
            "status": "completed", "conclusion": conclusion, "completed_at": _now(),
            "output": _output(title, text),
        }  # fmt: skip
        if self.id is not None:
            try:
                self.gh.update_check_run(self.owner, self.repo, self.id, fields)
                self.completed = conclusion
            except GitHubError as exc:
                self.warn(f"could not complete the check run: {exc}")
        if pushed_sha and pushed_sha != self.head_sha and pushed_sha not in self.posted_on:
            self.posted_on.add(pushed_sha)
            try:
                self.gh.create_check_run(self.owner, self.repo, {
                    "name": self.name, "head_sha": pushed_sha, "details_url": self.details_url,
                    "external_id": self.external_id, **fields,
                })  # fmt: skip
            except GitHubError as exc:
                self.warn(f"could not create the check run on the pushed commit: {exc}")
