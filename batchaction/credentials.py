"""The token for batchaction's own fetch and push, given to git through a pipe.

Nothing secret is in any process's argv or environment (``/proc/<pid>/cmdline`` and
``/proc/<pid>/environ`` are readable by every process of the same user, an executor
included). For each fetch or push batchaction opens a pipe, writes the token into it, and
passes the read end to git as an inherited file descriptor; git is configured (``-c``, for
that command only) with a credential helper of our own, a ``python -I -S -c`` one-liner
whose argv holds the descriptor's number and the server's protocol and host, never the
token. Git asks it after the server answers 401 (the credential-helper protocol,
gitcredentials(7)); it answers ``x-access-token`` and one line read from the pipe, and only
to the GitHub server the action talks to (a redirected URL gets nothing). Every other
credential helper (a task may have configured one) is reset for the command first
(``credential.helper=``), and TLS verification is forced on (``http.sslVerify=true``).

A push to the pull request's branch can use another token, the ``push-token`` input (a
GitHub App installation token or a fine-grained personal access token): a push made with
the workflow's ``GITHUB_TOKEN`` starts no workflow, so the pushed head would get no CI. It
travels the same way, through the pipe, for ``git push`` only; fetches keep ``token``. The
push-token wins over credentials actions/checkout left in ``.git/config``: for that push
the ``http.<url>.extraheader`` keys holding them are emptied on git's command line (an
empty value resets the list of extra headers, git-config(1); a later value of the same key
wins, so each key is reset by name, a generic ``http.extraheader=`` would not do).
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

# The helper: argv = [fd, protocol, host, operation]; git writes key=value lines on stdin.
# It reads one line from the descriptor byte by byte (an unbuffered readline), so each
# "get" takes one copy of the token and leaves the next for a later one.
HELPER_SOURCE = (
    "import sys\n"
    "fd, protocol, host, operation = sys.argv[1:5]\n"
    'asked = dict(l.split("=", 1) for l in sys.stdin.read().splitlines() if "=" in l)\n'
    'if operation == "get" and (asked.get("protocol"), asked.get("host")) == (protocol, host):\n'
    '    line = open(int(fd), "rb", buffering=0).readline().decode().strip()\n'
    "    if line:\n"
    '        sys.stdout.write("username=x-access-token\\npassword=" + line + "\\n")\n'
)
# For every fetch and push, on the command line (GIT_CONFIG_PARAMETERS, which outranks every
# config file and reaches the git processes it starts): no credential helper but ours, TLS
# verified, and no recursion into submodules, whose own config the check in remoteconfig does
# not read (a submodule's ``remote.origin.url = ext::<command>`` would run that command with
# the credential pipe); the transports that run a command (``ext``) or use a descriptor
# (``fd``) are off whatever any config says, and so is ``core.alternateRefsCommand`` (run by
# fetch and push for a repository with alternates).
REMOTE_CONFIG = (
    "-c", "credential.helper=",
    "-c", "http.sslVerify=true",
    "-c", "push.recurseSubmodules=no",
    "-c", "fetch.recurseSubmodules=no",
    "-c", "submodule.recurse=false",
    "-c", "protocol.ext.allow=never",
    "-c", "protocol.fd.allow=never",
    "-c", "core.alternateRefsCommand=true",  # an alternate's refs come from no command of theirs
)  # fmt: skip
# Copies of the token in the pipe: git asks once per remote-helper process; a spare or two
# for a fetch that starts another.
COPIES = 3
# What git prints when the server refuses the credentials of a push (401: unknown or expired
# token; 403: a token without contents: write, GitHub's "Permission to o/r.git denied").
AUTH_REFUSED = re.compile(
    r"Authentication failed|returned error: 40[13]\b|Permission to \S+ denied|"
    r"Invalid username or (?:password|token)",
    re.IGNORECASE,
)


def server_origin(server_url: str) -> tuple[str, str]:
    """``https://github.com/`` -> ``("https", "github.com")``: the protocol and host (with a
    port when the URL names one) git's credential protocol sends for that server.

    Raises ValueError when the URL has no scheme or host."""
    parts = urlsplit(server_url.strip())
    host = parts.netloc.rsplit("@", 1)[-1]
    if not parts.scheme or not host:
        raise ValueError(f"not a server URL: {server_url!r}")
    return parts.scheme.lower(), host.lower()


@dataclass(frozen=True)
class RemoteAccess:
    """How batchaction's own fetch and push reach the remote.

    ``server``: the GitHub server URL (``GITHUB_SERVER_URL``); ``token``: sent to that
    server only, or None (no credentials of ours: anonymous, or the checkout's persisted
    ones); ``problem``: called before every fetch and push, returns why it must not run (the
    git configuration was changed during the run, see ``remoteconfig``) or None;
    ``push_token``: sent instead of ``token`` by ``git push``, or None; ``reset_headers``:
    the ``http.<url>.extraheader`` keys emptied for a push made with ``push_token``.
    """

    server: str
    token: str | None = field(default=None, repr=False)
    problem: Callable[[], str | None] | None = field(default=None, repr=False, compare=False)
    push_token: str | None = field(default=None, repr=False)
    reset_headers: tuple[str, ...] = ()
    # Filled by gitops.git: why a push made with push_token was refused and made again with
    # token (one line each), for the summary.
    refused: list[str] = field(default_factory=list, repr=False, compare=False)

    def refusal(self) -> str | None:
        """Why this fetch or push must not run, or None."""
        if self.token or self.push_token:
            try:
                server_origin(self.server)
            except ValueError as exc:
                return f"cannot authenticate to the git server: GITHUB_SERVER_URL: {exc}"
        return self.problem() if self.problem is not None else None

    @contextlib.contextmanager
    def git_options(self, *, push: bool = False) -> Iterator[tuple[list[str], tuple[int, ...]]]:
        """For one git command (``push``: a ``git push``): (``-c`` options to put before the
        subcommand, file descriptors it must inherit). The pipe is closed when the block ends.

        Raises OSError when a pipe cannot be made (out of descriptors), ValueError when
        ``server`` is not a URL (``refusal`` says so first)."""
        options = [*REMOTE_CONFIG]
        token = self.token
        if push and self.push_token:
            token = self.push_token
            options += [arg for key in self.reset_headers for arg in ("-c", f"{key}=")]
        if not token:
            yield options, ()
            return
        protocol, host = server_origin(self.server)
        read_end, write_end = os.pipe()
        try:
            with os.fdopen(write_end, "wb") as writer:
                writer.write(f"{token}\n".encode() * COPIES)
            helper = shlex.join(
                [sys.executable, "-I", "-S", "-c", HELPER_SOURCE, str(read_end), protocol, host]
            )
            options += ["-c", f"credential.helper=!{helper}"]
            yield options, (read_end,)
        finally:
            os.close(read_end)

    def push_refused(self, output: str) -> str | None:
        """For a failed ``git push`` made with ``push_token`` whose ``output`` (git's stderr
        and stdout) says the server refused the credentials (HTTP 401 or 403): the error
        to report, which names the push-token, the status and what the token needs; else
        None. About 300 characters at most: git's ``remote:`` lines (or its ``fatal:`` one),
        cut."""
        if not self.push_token or not AUTH_REFUSED.search(output):
            return None
        status = 403 if re.search(r"error: 403\b|Permission to", output) else 401
        lines = [line.strip() for line in output.splitlines()]
        said = [line for line in lines if line.startswith("remote:")]
        said = said or [line for line in lines if line.startswith("fatal:")] or lines[-1:]
        text = " ".join(said).rstrip(". ")
        text = text if len(text) <= 150 else text[:147] + "..."
        return (
            f"the push-token was refused (HTTP {status}): {text}; it must be valid (an App "
            "installation token lasts one hour) and allow contents: write on this repository"
        )
