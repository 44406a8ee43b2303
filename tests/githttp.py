"""A git server over HTTP on 127.0.0.1 that requires basic auth, and probes for the tests
of the action's credentials.

``GitHttpServer`` serves the bare repositories under a root through ``git http-backend`` (the
CGI program git ships for smart HTTP, git-http-backend(1)), behind a small
``http.server`` handler that answers 401 with ``WWW-Authenticate: Basic`` unless the request
carries ``x-access-token`` and the token (or one of ``passwords``), the way GitHub answers
git for a private repository; a password in ``no_push`` reads but is answered 403 on a push,
the way GitHub answers a token without contents: write. ``ProcessProbe`` reads
``/proc/<pid>/environ`` and ``/proc/<pid>/cmdline`` of every process the test started,
looking for a secret; ``ProxyRecorder`` is a TCP listener that records who connected.
"""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit


@dataclass
class Seen:
    method: str
    path: str
    authorized: bool
    authorization: str
    body: bytes = b""  # the request's first 4 KiB (a push's ref updates come first)


class GitHttpServer:
    """Smart-HTTP git for the repositories under ``root``, at ``url`` (``http://127.0.0.1:N``).

    ``on_authorized(method, path)`` runs in the handler for each authorized request, before
    git answers it: the client (git, git-remote-http, send-pack) is waiting on it then.
    """

    def __init__(
        self,
        root: Path,
        *,
        username: str,
        password: str,
        on_authorized: Callable[[str, str], None] | None = None,
        passwords: Iterable[str] = (),
        no_push: Iterable[str] = (),
    ) -> None:
        self.root = root

        def basic(secret: str) -> str:
            return base64.b64encode(f"{username}:{secret}".encode()).decode()

        self.expected = basic(password)
        self.accepted = {self.expected, *map(basic, passwords)}
        self.read_only = set(map(basic, no_push))
        self.on_authorized = on_authorized
        self.seen: list[Seen] = []
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> GitHttpServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server._serve(self)

            def do_POST(self) -> None:
                server._serve(self)

        return Handler

    def _body(self, request: BaseHTTPRequestHandler) -> bytes:
        if request.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(request.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    request.rfile.readline()
                    return data
                data += request.rfile.read(size)
                request.rfile.readline()
        return request.rfile.read(int(request.headers.get("Content-Length") or 0))

    def _serve(self, request: BaseHTTPRequestHandler) -> None:
        authorization = request.headers.get("Authorization", "")
        scheme, _, credentials = authorization.partition(" ")
        authorized = scheme.lower() == "basic" and credentials.strip() in self.accepted
        body = self._body(request)
        seen = Seen(request.command, request.path, authorized, authorization, body[:4096])
        self.seen.append(seen)
        pushing = "git-receive-pack" in request.path
        if authorized and pushing and credentials.strip() in self.read_only:
            text = b"Permission to octo-org/hello-tasks.git denied to batchaction-app[bot].\n"
            request.send_response(403)
            request.send_header("Content-Type", "text/plain")
            request.send_header("Content-Length", str(len(text)))
            request.end_headers()
            request.wfile.write(text)
            return
        if not authorized:
            request.send_response(401)
            request.send_header("WWW-Authenticate", 'Basic realm="git"')
            request.send_header("Content-Length", "0")
            request.end_headers()
            return
        if self.on_authorized is not None:
            self.on_authorized(request.command, request.path)
        parts = urlsplit(request.path)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_CONFIG_NOSYSTEM": "1",
            "HOME": str(self.root),
            "GIT_PROJECT_ROOT": str(self.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "REQUEST_METHOD": request.command,
            "PATH_INFO": parts.path,
            "QUERY_STRING": parts.query,
            "CONTENT_TYPE": request.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": "x-access-token",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_CONTENT_ENCODING": request.headers.get("Content-Encoding", ""),
            "HTTP_GIT_PROTOCOL": request.headers.get("Git-Protocol", ""),
        }
        proc = subprocess.run(
            ["git", "http-backend"], input=body, env=env, capture_output=True, check=False
        )
        head, _, payload = proc.stdout.partition(b"\r\n\r\n")
        status = 200
        headers = []
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name, value.strip()))
        request.send_response(status)
        for name, value in headers:
            request.send_header(name, value)
        request.send_header("Content-Length", str(len(payload)))
        request.end_headers()
        request.wfile.write(payload)


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:  # the process ended, or a kernel thread
        return b""


def _descendants(root: str) -> list[str]:
    """The pids (as text) of every process below ``root``, from /proc/<pid>/stat."""
    parents: dict[str, str] = {}
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            stat = _read(f"/proc/{pid}/stat")
            # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
            fields = stat[stat.rfind(b")") + 2 :].split()
            if len(fields) > 1:
                parents[pid] = fields[1].decode()
    found: list[str] = []
    level = {root}
    while level:
        level = {pid for pid, parent in parents.items() if parent in level}
        found.extend(sorted(level))
    return found


@dataclass
class ProcessProbe:
    """Looks for ``secrets`` in the environment and command line of every process this
    test started, at any depth (the action, its executors, git and its helpers).

    The ``INPUT_GITHUB-TOKEN`` variable is left out: the runner puts it in the action's
    environment, where a child started with the whole environment inherits it, and how the
    action keeps its own environment from executors is another test's subject. This probe
    is about how the action hands the token to git: any form of it anywhere else, in any
    variable or command line, is found.
    """

    secrets: Iterable[str]
    # Variables the runner puts in the action's environment (before it re-executes itself).
    exempt: tuple[bytes, ...] = (b"INPUT_GITHUB-TOKEN=",)
    found: list[str] = field(default_factory=list)
    commands: set[str] = field(default_factory=set)
    scans: int = 0

    def scan(self) -> None:
        """One pass over the descendants of this process (the action and everything it
        started; other programs on the machine are not this test's)."""
        forms = [s.encode() for s in self.secrets]
        for pid in _descendants(str(os.getpid())):
            cmdline = _read(f"/proc/{pid}/cmdline")
            entries = _read(f"/proc/{pid}/environ").split(b"\0")
            shown = cmdline.replace(b"\0", b" ").decode(errors="replace")[:200]
            self.commands.add(shown)
            entries = [e for e in entries if not e.startswith(self.exempt)]
            for form in forms:
                if form in cmdline:
                    self.found.append(f"pid {pid} ({shown}): command line")
                for entry in entries:
                    if form in entry:
                        name = entry.split(b"=", 1)[0].decode(errors="replace")
                        comm = _read(f"/proc/{pid}/comm").decode(errors="replace").strip()
                        self.found.append(f"pid {pid} ({shown or comm}): environment {name}")
        self.scans += 1

    def saw(self, word: str) -> bool:
        """Whether a scan saw a process whose command line holds ``word``."""
        return any(word in command for command in self.commands)


class BackgroundProbe:
    """Runs ``probe.scan()`` over and over in a thread while the block runs."""

    def __init__(self, probe: ProcessProbe) -> None:
        self.probe = probe
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.probe.scan()

    def __enter__(self) -> ProcessProbe:
        self._thread.start()
        return self.probe

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class ProxyRecorder:
    """A TCP listener on 127.0.0.1 that records the first bytes of every connection and
    closes it (a proxy that forwards nothing)."""

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(8)
        self._socket.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._socket.getsockname()[1]}"

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._socket.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    self.received.append(conn.recv(65536))
                except OSError:
                    self.received.append(b"")

    def __enter__(self) -> ProxyRecorder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._socket.close()
