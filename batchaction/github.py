"""The few GitHub REST calls the action makes (httpx), against ``GITHUB_API_URL`` (GHES too)."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

import httpx
import tenacity

API_VERSION = "2022-11-28"


class GitHubError(Exception):
    def __init__(self, method: str, path: str, status: int | None, detail: str) -> None:
        where = f"{method} {path}"
        super().__init__(f"{where} -> {status}: {detail}" if status else f"{where}: {detail}")
        self.status = status


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, httpx.TransportError):
        return True
    return isinstance(exc, GitHubError) and exc.status is not None and exc.status >= 500


class GitHub:
    def __init__(self, api_url: str, token: str | None, timeout: float = 20.0) -> None:
        headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": "batchaction",
        }
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.client = httpx.Client(base_url=api_url.rstrip("/"), headers=headers, timeout=timeout)
        self._retry = tenacity.Retrying(
            retry=tenacity.retry_if_exception(_transient),
            stop=tenacity.stop_after_attempt(3),
            wait=tenacity.wait_exponential(multiplier=0.5, max=4),
            reraise=True,
        )

    def close(self) -> None:
        self.client.close()

    def _once(
        self, method: str, path: str, json: Any = None, params: dict[str, str] | None = None
    ) -> Any:
        """One request: its JSON answer (None when empty). Raises GitHubError for an error
        status or a 2xx answer that is not JSON (a proxy's HTML page, say), and lets
        httpx.TransportError through for the retry to see."""
        return self._exchange(method, path, json, params)[0]

    def _exchange(
        self, method: str, path: str, json: Any = None, params: dict[str, str] | None = None
    ) -> tuple[Any, str | None]:
        """``_once``, with the address of the next page (``Link: <...>; rel="next"``)."""
        try:
            response = self.client.request(method, path, json=json, params=params)
        except httpx.TransportError:
            raise
        except httpx.HTTPError as exc:
            raise GitHubError(method, path, None, str(exc)) from None
        if response.status_code >= 400:
            try:
                answer = response.json()
                message = answer.get("message", response.text) if isinstance(answer, dict) else ""
            except ValueError:
                message = response.text
            raise GitHubError(method, path, response.status_code, str(message or "")[:300])
        following = response.links.get("next", {}).get("url")
        if not response.content:
            return None, following
        try:
            return response.json(), following
        except ValueError:
            kind = response.headers.get("content-type", "no content type")
            raise GitHubError(
                method, path, response.status_code, f"the answer is not JSON ({kind})"
            ) from None

    def _call(
        self, method: str, path: str, json: Any = None, params: dict[str, str] | None = None
    ) -> Any:
        """``_once`` retried on network errors and 5xx answers (3 attempts, backoff)."""
        try:
            return self._retry(self._once, method, path, json, params)
        except httpx.TransportError as exc:
            raise GitHubError(method, path, None, f"cannot reach the API: {exc}") from None

    def permission(self, owner: str, repo: str, user: str) -> dict[str, Any]:
        answer = self._call("GET", f"/repos/{owner}/{repo}/collaborators/{user}/permission")
        if not isinstance(answer, dict):
            raise GitHubError("GET", "permission", None, "unexpected answer")
        return answer

    def pull(self, owner: str, repo: str, number: int) -> dict[str, Any]:
        answer = self._call("GET", f"/repos/{owner}/{repo}/pulls/{number}")
        if not isinstance(answer, dict):
            raise GitHubError("GET", "pull", None, "unexpected answer")
        return answer

    def timeline(
        self, owner: str, repo: str, number: int, max_pages: int = 30
    ) -> list[dict[str, Any]]:
        """An issue's or pull request's timeline events, oldest first (``GET
        /repos/{owner}/{repo}/issues/{number}/timeline``, 100 a page, following ``Link``).

        Raises GitHubError on an API error, an answer that is not a list, or a timeline longer
        than ``max_pages`` pages (the newest events, which matter here, come last).
        """
        path = f"/repos/{owner}/{repo}/issues/{number}/timeline"
        events, complete = self._pages(path, {"per_page": "100"}, "timeline", max_pages)
        if not complete:
            raise GitHubError("GET", "timeline", None, f"more than {max_pages * 100} events")
        return events

    def _pages(
        self, where: str | None, params: dict[str, str] | None, what: str, max_pages: int
    ) -> tuple[list[dict[str, Any]], bool]:
        """The objects of up to ``max_pages`` pages of a list answer, following ``Link: <...>;
        rel="next"``, and whether that was every page. Raises GitHubError."""
        found: list[dict[str, Any]] = []
        for _ in range(max_pages):
            assert where is not None
            try:
                page, where = self._retry(self._exchange, "GET", where, None, params)
            except httpx.TransportError as exc:
                raise GitHubError("GET", what, None, f"cannot reach the API: {exc}") from None
            if not isinstance(page, list):
                raise GitHubError("GET", what, None, "unexpected answer")
            found.extend(item for item in page if isinstance(item, dict))
            params = None  # the next page's address carries them
            if where is None:
                return found, True
        return found, False

    def react(self, owner: str, repo: str, comment_id: int, content: str) -> None:
        self._call(
            "POST",
            f"/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions",
            {"content": content},
        )

    def comment(self, owner: str, repo: str, number: int, body: str) -> int | None:
        """Post a comment once; its id (None when the answer has none). A POST that failed
        (a 502, a timeout) may still have been stored, so the body carries an invisible
        marker, and before posting again the comments made since the first attempt are
        searched for it (``POST /repos/{owner}/{repo}/issues/{number}/comments``)."""
        path = f"/repos/{owner}/{repo}/issues/{number}/comments"
        marker = f"<!-- batchaction:{secrets.token_hex(8)} -->"
        since = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
        tries = 0

        def post() -> Any:
            nonlocal tries
            tries += 1
            if tries > 1 and (stored := self._posted(path, marker, since)) is not None:
                return stored
            return self._once("POST", path, {"body": f"{marker}\n{body}"})

        try:
            answer = self._retry(post)
        except httpx.TransportError as exc:
            raise GitHubError("POST", path, None, f"cannot reach the API: {exc}") from None
        found = answer.get("id") if isinstance(answer, dict) else None
        return found if type(found) is int else None

    def _posted(self, path: str, marker: str, since: str) -> dict[str, Any] | None:
        """The comment holding ``marker`` stored since ``since`` (ISO 8601), or None."""
        answer = self._once("GET", path, params={"since": since, "per_page": "100"})
        if not isinstance(answer, list):
            return None
        return next(
            (c for c in answer if isinstance(c, dict) and marker in str(c.get("body", ""))), None
        )

    def edit_comment(self, owner: str, repo: str, comment_id: int, body: str) -> None:
        """Replace a comment's body (``PATCH /repos/{owner}/{repo}/issues/comments/{id}``);
        idempotent, so retried like a read. Raises GitHubError."""
        self._call("PATCH", f"/repos/{owner}/{repo}/issues/comments/{comment_id}", {"body": body})

    def comments_since(
        self, owner: str, repo: str, number: int, since: str, max_pages: int = 10
    ) -> list[dict[str, Any]]:
        """The issue's comments created or updated at or after ``since`` (ISO 8601), oldest
        first (``GET /repos/{owner}/{repo}/issues/{number}/comments?since=``, 100 a page,
        following ``Link``, at most ``max_pages`` pages). Raises GitHubError."""
        path = f"/repos/{owner}/{repo}/issues/{number}/comments"
        return self._pages(path, {"since": since, "per_page": "100"}, "comments", max_pages)[0]

    def create_check_run(self, owner: str, repo: str, fields: dict[str, Any]) -> int:
        """Create a check run (``POST /repos/{owner}/{repo}/check-runs``: ``name``,
        ``head_sha``, ``status``, ``conclusion``, ``output``...); its id. Needs ``checks:
        write``. Not retried after a 5xx (a retry could make two). Raises GitHubError."""
        path = f"/repos/{owner}/{repo}/check-runs"
        try:
            answer = self._once("POST", path, fields)
        except httpx.TransportError as exc:
            raise GitHubError("POST", path, None, f"cannot reach the API: {exc}") from None
        found = answer.get("id") if isinstance(answer, dict) else None
        if type(found) is not int:
            raise GitHubError("POST", path, None, "the answer has no check run id")
        return found

    def update_check_run(
        self, owner: str, repo: str, check_run_id: int, fields: dict[str, Any]
    ) -> dict[str, Any]:
        """Update a check run (``PATCH /repos/{owner}/{repo}/check-runs/{id}``: ``status``,
        ``conclusion``, ``completed_at``, ``output``); the check run as answered."""
        answer = self._call("PATCH", f"/repos/{owner}/{repo}/check-runs/{check_run_id}", fields)
        return answer if isinstance(answer, dict) else {}

    def check_runs_for(self, owner: str, repo: str, sha: str, name: str) -> list[dict[str, Any]]:
        """The check runs named ``name`` on commit ``sha`` (``GET /repos/{owner}/{repo}/commits/
        {sha}/check-runs?check_name=``, first 100). Raises GitHubError."""
        answer = self._call(
            "GET",
            f"/repos/{owner}/{repo}/commits/{sha}/check-runs",
            params={"check_name": name, "per_page": "100"},
        )
        runs = answer.get("check_runs") if isinstance(answer, dict) else None
        if not isinstance(runs, list):
            raise GitHubError("GET", "check runs", None, "unexpected answer")
        return [run for run in runs if isinstance(run, dict)]

    def check_run(self, owner: str, repo: str, check_run_id: int) -> dict[str, Any]:
        """``GET /repos/{owner}/{repo}/check-runs/{id}``. Raises GitHubError."""
        answer = self._call("GET", f"/repos/{owner}/{repo}/check-runs/{check_run_id}")
        if not isinstance(answer, dict):
            raise GitHubError("GET", "check run", None, "unexpected answer")
        return answer
