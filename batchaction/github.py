"""The few GitHub REST calls the action makes (httpx), against ``GITHUB_API_URL`` (GHES too)."""

from __future__ import annotations

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

    def _call(self, method: str, path: str, json: Any = None) -> Any:
        def once() -> Any:
            try:
                response = self.client.request(method, path, json=json)
            except httpx.TransportError:
                raise
            except httpx.HTTPError as exc:
                raise GitHubError(method, path, None, str(exc)) from None
            if response.status_code >= 400:
                try:
                    message = response.json().get("message", response.text)
                except ValueError:
                    message = response.text
                raise GitHubError(method, path, response.status_code, str(message)[:300])
            return response.json() if response.content else None

        try:
            return self._retry(once)
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

    def react(self, owner: str, repo: str, comment_id: int, content: str) -> None:
        self._call(
            "POST",
            f"/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions",
            {"content": content},
        )

    def comment(self, owner: str, repo: str, number: int, body: str) -> None:
        self._call("POST", f"/repos/{owner}/{repo}/issues/{number}/comments", {"body": body})
