"""The one user-facing error type and the exit codes of the product contract."""

from __future__ import annotations

EXIT_OK = 0
EXIT_TASKS_FAILED = 1
EXIT_INVALID_INPUT = 2
EXIT_SIGHUP = 129
EXIT_SIGINT = 130
EXIT_SIGTERM = 143


class BatchError(Exception):
    """A failure the user can act on: printed as one message, mapped to an exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_INVALID_INPUT) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message
