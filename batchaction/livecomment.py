"""Live progress on the pull request: one comment, posted when the run is accepted and edited
as tasks start and finish, and the check run (``checkrun.py``) beside it.

``LiveComment`` is a ``Reporter`` placed in front of the terminal's: each start and finish
marks the comment stale, and one thread edits it, at most once per ``progress-interval`` (10 s
by default: GitHub's secondary rate limits count content-creating requests, and a maintainer
does not need more). ``final`` stops the thread (an edit under way is finished first, so no late
edit can overwrite the final one) and puts the whole summary in its place; ``Context.reply``
calls it, so every ending the action already reports (success, failure, the run deadline, a
refusal after acceptance, the early publication on the first interrupt) ends the live comment
too, and ``Context.abandon`` covers an error that escapes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from batchaction.checkrun import CheckRun
from batchaction.github import GitHub, GitHubError
from batchaction.inert import redact
from batchaction.liveview import Board, mark, render_live
from batchaction.summary import truncate_markdown
from batchaction.taskrun import Reporter, TaskRun

COMMENT_LIMIT = 65_000  # characters of a comment's body (GitHub refuses more than 65,536)
FINAL_WAIT = 2.0  # seconds the final edit waits for a progress edit under way
LINGER = 25.0  # seconds the action's end waits for it (the HTTP client's timeout is 20 s)


class LiveComment(Reporter):
    """The live comment of one run (see the module docstring) on pull request ``pr`` =
    (owner, repo, number); ``interval`` in seconds; ``warn`` receives API errors."""

    def __init__(
        self,
        gh: GitHub,
        pr: tuple[str, str, int],
        inner: Reporter,
        board: Board,
        *,
        interval: float,
        run_key: str,
        warn: Callable[[str], None],
        check: CheckRun | None = None,
        secrets: list[str] | None = None,
    ) -> None:
        self.gh, self.pr, self.inner, self.board = gh, pr, inner, board
        self.interval, self.run_key, self.warn, self.check = interval, run_key, warn, check
        self.secrets = secrets or []  # replaced by *** in every body (inert.redact)
        self.comment_id: int | None = None
        self.edits = 0
        self.edit_failures = 0  # the first is warned of
        self.finished = False
        self._cond = threading.Condition()
        self._dirty = False
        self._stop = False
        self._final: str | None = None  # the final body, once final() was called
        self._last = 0.0
        self._thread = threading.Thread(target=self._run, name="live-comment", daemon=True)

    def body(self, state: str, markdown: str) -> str:
        check = self.check.id if self.check is not None else None
        text = redact(markdown, self.secrets)
        if len(text) > COMMENT_LIMIT - 200:
            text = truncate_markdown(text, COMMENT_LIMIT - 200, "…(truncated: see the run)")
        return f"{mark(self.run_key, state, check)}\n{text}"

    def open(self) -> None:
        """Post the comment (the plan, every task waiting) and start the editing thread."""
        text = self.body("running", render_live(self.board, time.monotonic()))
        try:
            self.comment_id = self.gh.comment(*self.pr, text)
        except GitHubError as exc:
            self.warn(f"could not post the progress comment: {exc}")
            return
        self._last = time.monotonic()
        self._thread.start()

    # -- Reporter -----------------------------------------------------------------------------

    def task_started(self, run: TaskRun, running: Sequence[int]) -> None:
        self.inner.task_started(run, running)
        self.board.runs[run.number] = run
        self.board.started[run.number] = time.monotonic()
        self._poke()

    def task_finished(self, run: TaskRun, running: Sequence[int]) -> None:
        self.inner.task_finished(run, running)
        self.board.runs[run.number] = run
        self._poke()

    def task_retry(self, run: TaskRun, delay: float) -> None:
        self.inner.task_retry(run, delay)

    def output(self, number: int, line: str) -> None:
        self.inner.output(number, line)

    def interrupted(self, signum: int) -> None:
        self.inner.interrupted(signum)

    def notice(self, message: str) -> None:
        self.inner.notice(message)

    # -- editing ------------------------------------------------------------------------------

    def _poke(self) -> None:
        with self._cond:
            self._dirty = True
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._dirty or self._stop)
                wait = self._last + self.interval - time.monotonic()
                if wait > 0 and not self._stop:
                    self._cond.wait_for(lambda: self._stop, timeout=wait)
                if self._stop:
                    return
                self._dirty = False
                self._last = time.monotonic()
            self._edit(self.body("running", render_live(self.board, time.monotonic())))
            with self._cond:
                late = self._final
            if late is not None:  # this edit outlasted final()'s wait: put the final one back
                self._edit(late)

    def _edit(self, text: str) -> bool:
        if self.comment_id is None:
            return False
        try:
            self.gh.edit_comment(self.pr[0], self.pr[1], self.comment_id, text)
        except GitHubError as exc:
            if not self.edit_failures:
                self.warn(f"could not update the progress comment: {exc}")
            self.edit_failures += 1
            return False
        self.edits += 1
        return True

    def stop(self, wait: float | None = None) -> None:
        """Stop the editing thread, waiting at most ``wait`` seconds (None: until it ends)
        for an edit under way."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(wait)

    def close(self) -> None:
        """At the action's end: wait (at most ``LINGER`` seconds) for a progress edit still
        under way, so that the thread puts the final body back after it (a daemon thread
        would die with the process, leaving the slow edit's "running" text last)."""
        self.stop(LINGER)

    def final(self, markdown: str) -> bool:
        """Replace the comment with ``markdown`` (the summary, a refusal, an error); whether
        it was edited (False: there is no comment, or the edit failed). A progress edit still
        under way after ``FINAL_WAIT`` seconds (a slow API: a cancelled job has about 10 s) is
        not waited for; when it ends, the thread puts this body back."""
        body = self.body("done", markdown)
        with self._cond:
            self._final = body
        self.stop(FINAL_WAIT)
        done = self._edit(body)
        self.finished = self.finished or done
        return done
