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
"""

from __future__ import annotations

import contextlib
import os
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
    git configuration was changed during the run, see ``remoteconfig``) or None.
    """

    server: str
    token: str | None = field(default=None, repr=False)
    problem: Callable[[], str | None] | None = field(default=None, repr=False, compare=False)

    def refusal(self) -> str | None:
        """Why this fetch or push must not run, or None."""
        if self.token:
            try:
                server_origin(self.server)
            except ValueError as exc:
                return f"cannot authenticate to the git server: GITHUB_SERVER_URL: {exc}"
        return self.problem() if self.problem is not None else None

    @contextlib.contextmanager
    def git_options(self) -> Iterator[tuple[list[str], tuple[int, ...]]]:
        """For one git command: (``-c`` options to put before the subcommand, file
        descriptors it must inherit). The pipe is closed when the block ends.

        Raises OSError when a pipe cannot be made (out of descriptors), ValueError when
        ``server`` is not a URL (``refusal`` says so first)."""
        options = [*REMOTE_CONFIG]
        if not self.token:
            yield options, ()
            return
        protocol, host = server_origin(self.server)
        read_end, write_end = os.pipe()
        try:
            with os.fdopen(write_end, "wb") as writer:
                writer.write(f"{self.token}\n".encode() * COPIES)
            helper = shlex.join(
                [sys.executable, "-I", "-S", "-c", HELPER_SOURCE, str(read_end), protocol, host]
            )
            options += ["-c", f"credential.helper=!{helper}"]
            yield options, (read_end,)
        finally:
            os.close(read_end)
