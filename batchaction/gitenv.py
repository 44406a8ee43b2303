"""How batchaction starts its own git commands: the configuration they override and the
environment they get, shared by every module that runs git."""

from __future__ import annotations

import os

from batchaction.executor import TOKEN_VARIABLES

# batchaction's own git commands never run what a task may have left in the shared git
# directory or config: hooks (a post-checkout, a reference-transaction), an fsmonitor
# command, or commit signing that needs a key batchaction does not have.
OWN_CONFIG = (
    "-c", "core.hooksPath=/dev/null",
    "-c", "core.fsmonitor=false",
    "-c", "commit.gpgSign=false",
)  # fmt: skip


def git_environment() -> dict[str, str]:
    """The environment batchaction's own git commands get: this process's, less the action's
    inputs and every token (a filter or helper a task planted in the shared config sees
    none), no prompts, the C locale, no replace refs or grafts. Credentials are added per
    command, for fetch and push."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.upper().startswith("INPUT_") and key.upper() not in TOKEN_VARIABLES
    }
    # Replace refs and grafts a task wrote would make git see a history the remote does not
    # have (a push_fast_forward check fooled into dropping commits): batchaction sees objects.
    env.update(
        {
            "GIT_TERMINAL_PROMPT": "0",
            "LC_ALL": "C",
            "GIT_NO_REPLACE_OBJECTS": "1",
            "GIT_GRAFT_FILE": os.devnull,
        }
    )
    return env


def own_git(*args: str) -> list[str]:
    """The argv of a batchaction git command: ``["git", *OWN_CONFIG, *args]``."""
    return ["git", *OWN_CONFIG, *args]
