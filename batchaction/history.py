"""Commit history read and written for ``integration.py``, with as few git processes as it can.

Reads go to one long-running ``git cat-file --batch`` (``ObjectStore``): commits and trees are
parsed here, so following a task's few commits back to its start, finding the files at given
paths or whether two trees differ but in given paths costs no process at all. New trees go to
one ``git mktree --batch`` (``TreeEditor.set_files``), and a ref moves through one ``git
update-ref --stdin`` (``RefWriter``), a transaction each. These ``Batch`` processes start on
first use and stop with ``close`` (or when their owner is collected); one that dies is started
again on the next request, and its error is raised as ``GitError``. Anything else goes through
``gitops.git``, a process each.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TypeVar

from batchaction.gitenv import OWN_CONFIG, git_environment
from batchaction.gitops import GitError, git

T = TypeVar("T")
AUTHOR = re.compile(rb"author (\S(?:[^<>\n]*\S)?) <([^<>\n]*)> (\d+ [+-]\d{4})")
TREE_MODE = b"40000"
KEPT_TREES = 64


@dataclass(frozen=True)
class Commit:
    """One commit; ``author`` holds the ``GIT_AUTHOR_NAME``/``EMAIL``/``DATE`` pairs."""

    sha: str
    tree: str
    parents: tuple[str, ...]
    author: tuple[tuple[str, str], ...]
    message: str


Running = tuple[subprocess.Popen[bytes], IO[bytes]]  # the process, its stderr file


def _shutdown(box: list[Running]) -> str:
    """Stop the process in ``box`` (stdin closed, then waited for); what it said on stderr."""
    said = ""
    for proc, errors in box:
        for stream in (proc.stdin, proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        errors.seek(0)
        said = errors.read().decode("utf-8", "replace")
        errors.close()
    box.clear()
    return said


class Batch:
    """A long-running ``git ARGS`` in ``repo`` answering one request at a time."""

    def __init__(self, repo: Path, *args: str) -> None:
        self.repo = repo
        self.args = args
        self._box: list[Running] = []
        self._finalizer = weakref.finalize(self, _shutdown, self._box)

    def ask(self, request: bytes, answer: Callable[[IO[bytes]], T]) -> T:
        """Write ``request``, read the reply with ``answer`` (which raises EOFError when the
        reply is cut short). Raises GitError when the command failed or died."""
        if not self._box:
            env = git_environment()
            errors = tempfile.TemporaryFile()  # noqa: SIM115 (closed by _shutdown)
            proc = subprocess.Popen(
                ["git", *OWN_CONFIG, *self.args], cwd=self.repo, env=env, stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=errors,
            )  # fmt: skip
            self._box.append((proc, errors))
        proc, _ = self._box[0]
        try:
            if proc.stdin is None or proc.stdout is None:
                raise EOFError
            proc.stdin.write(request)
            proc.stdin.flush()
            return answer(proc.stdout)
        except (OSError, ValueError, EOFError):
            said = _shutdown(self._box)
            raise GitError(self.args, proc.returncode or 1, said) from None

    def close(self) -> None:
        _shutdown(self._box)


def _line(stream: IO[bytes]) -> bytes:
    line = stream.readline()
    if not line.endswith(b"\n"):
        raise EOFError
    return line[:-1]


def _quote(name: bytes) -> str:
    """``name`` as a C-quoted string (every byte outside printable ASCII as octal)."""
    out = []
    for byte in name:
        char = chr(byte)
        out.append("\\" + char if char in '"\\' else char if 32 <= byte < 127 else f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


class ObjectStore:
    """Objects of ``repo`` read through ``git cat-file --batch``; the trees last read are
    kept (an object never changes)."""

    def __init__(self, repo: Path) -> None:
        self.batch = Batch(repo, "cat-file", "--batch")
        self._trees: dict[str, dict[bytes, tuple[bytes, str]]] = {}

    def read(self, rev: str) -> tuple[str, bytes] | None:
        """(type, content) of the object ``rev`` names, or None when there is none."""

        def answer(stream: IO[bytes]) -> tuple[str, bytes] | None:
            header = _line(stream).split(b" ")
            if len(header) != 3:
                return None  # "<rev> missing" or "ambiguous"
            data = stream.read(int(header[2]) + 1)
            if len(data) != int(header[2]) + 1:
                raise EOFError
            return header[1].decode(), data[:-1]

        if "\n" in rev:
            return None
        return self.batch.ask(rev.encode() + b"\n", answer)

    def commit(self, sha: str) -> Commit | None:
        """The commit ``sha``, or None when it is not one this module reads (an encoding
        header, an unusual author line, a message that is not UTF-8 or holds a NUL)."""
        found = self.read(sha)
        if found is None or found[0] != "commit":
            return None
        head, sep, message = found[1].partition(b"\n\n")
        tree, parents, author = "", [], None
        for line in head.split(b"\n"):
            if line.startswith(b"tree "):
                tree = line[5:].decode()
            elif line.startswith(b"parent "):
                parents.append(line[7:].decode())
            elif line.startswith(b"author "):
                author = AUTHOR.fullmatch(line)
            elif line.startswith(b"encoding "):
                return None
        if not sep or not tree or author is None or b"\0" in message:
            return None
        try:
            name, email, date, text = (p.decode() for p in (*author.groups(), message))
        except UnicodeDecodeError:
            return None
        pairs = (("GIT_AUTHOR_NAME", name), ("GIT_AUTHOR_EMAIL", email), ("GIT_AUTHOR_DATE", date))
        return Commit(sha, tree, tuple(parents), pairs, text)

    def tree(self, sha: str) -> dict[bytes, tuple[bytes, str]] | None:
        """The entries of the tree ``sha``: {name: (mode, sha)}; None when it is no tree. The
        caller may change the dict it gets."""
        if sha in self._trees:
            return dict(self._trees[sha])
        found = self.read(sha)
        if found is None or found[0] != "tree":
            return None
        data, width = found[1], len(sha) // 2
        entries: dict[bytes, tuple[bytes, str]] = {}
        at = 0
        while at < len(data):
            space = data.index(b" ", at)
            nul = data.index(b"\0", space)
            entries[data[space + 1 : nul]] = (data[at:space], data[nul + 1 : nul + 1 + width].hex())
            at = nul + 1 + width
        self._trees[sha] = entries
        while len(self._trees) > KEPT_TREES:
            del self._trees[next(iter(self._trees))]
        return dict(entries)

    def files_at(self, tree: str, paths: Sequence[str]) -> dict[str, str] | None:
        """The files of ``paths`` that ``tree`` holds: {path: "mode sha"}; None if a tree on
        the way cannot be read."""
        found: dict[str, str] = {}
        for path in paths:
            parts = path.encode().split(b"/")
            at = tree
            for depth, part in enumerate(parts, 1):
                rows = self.tree(at)
                if rows is None:
                    return None
                hit = rows.get(part)
                if hit is None or (depth < len(parts) and hit[0] != TREE_MODE):
                    break  # not there
                if depth == len(parts):
                    found[path] = f"{hit[0].decode().rjust(6, '0')} {hit[1]}"
                at = hit[1]
        return found

    def differs(self, old: str, new: str, paths: Sequence[str]) -> bool | None:
        """Whether the trees ``old`` and ``new`` differ but in ``paths``; None: unreadable."""
        if old == new:
            return False
        left, right = self.tree(old), self.tree(new)
        if left is None or right is None:
            return None
        here = {p.encode() for p in paths if "/" not in p}
        below: dict[bytes, list[str]] = {}
        for path in paths:
            first, inside, rest = path.partition("/")
            if inside:
                below.setdefault(first.encode(), []).append(rest)
        for name in left.keys() | right.keys():
            a, b = left.get(name), right.get(name)
            if a == b or name in here:
                continue
            if a and b and name in below and a[0] == b[0] == TREE_MODE:
                inner = self.differs(a[1], b[1], below[name])
                if inner is not False:
                    return inner
                continue
            return True
        return False

    def close(self) -> None:
        self.batch.close()


class RefWriter:
    """Ref updates through ``git update-ref --stdin``, a transaction each."""

    def __init__(self, repo: Path) -> None:
        self.batch = Batch(repo, "update-ref", "--stdin")

    def update(self, ref: str, new: str, old: str = "") -> None:
        """Move ``ref`` to ``new`` (from ``old`` when given: GitError when it is not there)."""

        def answer(stream: IO[bytes]) -> None:
            if (_line(stream), _line(stream)) != (b"start: ok", b"commit: ok"):
                raise EOFError

        request = (f"start\nupdate {ref} {new} {old}".rstrip() + "\ncommit\n").encode()
        self.batch.ask(request, answer)

    def close(self) -> None:
        self.batch.close()


class TreeEditor:
    """New trees from old ones in ``repo``; git failures raise ``GitError``."""

    def __init__(self, repo: Path, store: ObjectStore) -> None:
        self.repo = repo
        self.store = store
        self.mktree = Batch(repo, "mktree", "--batch")
        self._git_dir: Path | None = None

    def set_files(self, tree: str, entries: Mapping[str, str]) -> str:
        """``tree`` with files that it holds set to ``entries`` (path -> "mode sha"): the
        directories on the way to them read and written again, nothing else."""
        if not entries:
            return tree
        rows = self.store.tree(tree)
        as_index = [f"{e}\t{p}" for p, e in entries.items()]
        if rows is None:
            return self.with_entries(tree, as_index)
        below: dict[bytes, dict[str, str]] = {}
        for path, entry in entries.items():
            first, inside, rest = path.partition("/")
            name = first.encode()
            if name not in rows or (rows[name][0] == TREE_MODE) != bool(inside):
                return self.with_entries(tree, as_index)  # not there as such: no shortcut
            if inside:
                below.setdefault(name, {})[rest] = entry
            else:
                mode, sha = entry.split(" ")
                rows[name] = (mode.encode(), sha)
        for name, inner in below.items():
            rows[name] = (TREE_MODE, self.set_files(rows[name][1], inner))
        listing = "".join(
            f"{mode.decode()} {_kind(mode)} {sha}\t{_quote(name)}\n"
            for name, (mode, sha) in rows.items()
        )
        return self.mktree.ask((listing + "\n").encode(), _line).decode()

    def with_entries(self, tree: str, entries: Sequence[str]) -> str:
        """``tree`` with index entries (``mode sha\tpath``, mode 0 to remove) applied."""
        if self._git_dir is None:
            found = Path(git("rev-parse", "--git-dir", cwd=self.repo).stdout.strip())
            self._git_dir = found if found.is_absolute() else self.repo / found
        index_file = self._git_dir / f"batchaction-index-{id(self)}"
        env = {"GIT_INDEX_FILE": str(index_file)}
        try:
            git("read-tree", tree, cwd=self.repo, env=env)
            git(
                "update-index", "--index-info", cwd=self.repo, env=env,
                input_text="".join(e + "\n" for e in entries),
            )  # fmt: skip
            return git("write-tree", cwd=self.repo, env=env).stdout.strip()
        finally:
            index_file.unlink(missing_ok=True)

    def close(self) -> None:
        self.mktree.close()


def _kind(mode: bytes) -> str:
    return "tree" if mode == TREE_MODE else "commit" if mode == b"160000" else "blob"


def author_and_message(repo: Path, commit: str) -> tuple[dict[str, str], str]:
    """A commit's author (as ``GIT_AUTHOR_*``) and its message, in one git call."""
    out = git("log", "-1", "--format=%an%x00%ae%x00%aD%x00%B", commit, cwd=repo).stdout
    name, email, date, message = out.split("\x00", 3)
    author = {"GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email, "GIT_AUTHOR_DATE": date}
    return author, message.removesuffix("\n")
