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

    def _call(self, method: str, path: str, json: Any = None) -> Any:
        """``_once`` retried on network errors and 5xx answers (3 attempts, backoff)."""
        try:
            return self._retry(self._once, method, path, json)
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
        where: str | None = f"/repos/{owner}/{repo}/issues/{number}/timeline"
        params: dict[str, str] | None = {"per_page": "100"}
        events: list[dict[str, Any]] = []
        for _ in range(max_pages):
            assert where is not None
            try:
                page, where = self._retry(self._exchange, "GET", where, None, params)
            except httpx.TransportError as exc:
                raise GitHubError("GET", "timeline", None, f"cannot reach the API: {exc}") from None
            if not isinstance(page, list):
                raise GitHubError("GET", "timeline", None, "unexpected answer")
            events.extend(event for event in page if isinstance(event, dict))
            params = None  # the next page's address carries them
            if where is None:
                return events
        raise GitHubError("GET", "timeline", None, f"more than {max_pages * 100} events")

    def react(self, owner: str, repo: str, comment_id: int, content: str) -> None:
        self._call(
            "POST",
            f"/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions",
            {"content": content},
        )

    def comment(self, owner: str, repo: str, number: int, body: str) -> None:
        """Post a comment once. A POST that failed (a 502, a timeout) may still have been
        stored, so the body carries an invisible marker, and before posting again the
        comments made since the first attempt are searched for it."""
        path = f"/repos/{owner}/{repo}/issues/{number}/comments"
        marker = f"<!-- batchaction:{secrets.token_hex(8)} -->"
        since = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
        tries = 0

        def post() -> None:
            nonlocal tries
            tries += 1
            if tries > 1 and self._posted(path, marker, since):
                return
            self._once("POST", path, {"body": f"{marker}\n{body}"})

        try:
            self._retry(post)
        except httpx.TransportError as exc:
            raise GitHubError("POST", path, None, f"cannot reach the API: {exc}") from None

    def _posted(self, path: str, marker: str, since: str) -> bool:
        """Whether a comment holding ``marker`` was stored since ``since`` (ISO 8601)."""
        answer = self._once("GET", path, params={"since": since, "per_page": "100"})
        return isinstance(answer, list) and any(
            isinstance(c, dict) and marker in str(c.get("body", "")) for c in answer
        )
