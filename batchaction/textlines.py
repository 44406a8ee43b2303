"""Reading TODO.md bytes into lines that re-join to the original, byte for byte."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from batchaction.errors import BatchError


def split_lines(text: str) -> list[str]:
    """Split on ``\\n`` only, keeping each line's ending (``\\r\\n`` stays whole).

    ``str.splitlines`` also splits on form feeds, ``\\u2028`` and friends, which would change the
    line numbering other tools (editors, ``git blame``) see.
    """
    if not text:
        return []
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def decode_todo(data: bytes, path: str) -> str:
    """Decode TODO.md bytes strictly as UTF-8, refusing binary files with a clear message."""
    if b"\x00" in data:
        line = data.count(b"\n", 0, data.index(b"\x00")) + 1
        raise BatchError(
            f"{path}:{line}: error: file holds a NUL byte: it looks binary, not a Markdown TODO "
            "file; pass the right file with --todo"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise BatchError(
            f"{path}:{line}: error: invalid UTF-8 (byte 0x{data[exc.start]:02x}): "
            "save the file as UTF-8 and try again"
        ) from None


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def open_regular(path: Path, *, follow: bool = True) -> BinaryIO:
    """``path`` opened for reading, refused unless it is a regular file: opened without
    blocking (a FIFO would block the open itself) and, with ``follow=False``, without
    following a symlink; checked with fstat. Raises OSError (a BatchError-free check for
    files a task controls: its log, its result file)."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
    fd = os.open(path, flags)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path}: not a regular file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def regular_bytes(path: Path, *, follow: bool = True) -> bytes:
    """The bytes of ``path``, a regular file, read without ever blocking on a FIFO or a
    device that a task put in its place (``open_regular``); with ``follow=False`` a symlink
    in its place is refused too (ELOOP). Raises OSError."""
    with open_regular(path, follow=follow) as handle:
        return handle.read()


def _read_regular(path: Path) -> bytes:
    """The bytes of ``path``, a regular file (after symlinks). A FIFO or a device is refused
    before anything reads it: opened without blocking, checked with fstat."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise BatchError(
                f"{path}: is {_kind(mode)}, not a TODO file: pass a regular file with --todo PATH"
            )
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as handle:
            return handle.read()
    finally:
        os.close(fd)


def read_todo_text(path: Path) -> str:
    """Read a TODO file as text, turning every OS error into a BatchError (exit 2); a path
    that is not a regular file (directory, FIFO, device, socket) is refused at once."""
    try:
        data = _read_regular(path)
    except FileNotFoundError:
        raise BatchError(
            f"{path}: no such file: pass the TODO file with --todo PATH "
            "(or run from the repository root)"
        ) from None
    except IsADirectoryError:
        raise BatchError(
            f"{path}: is a directory, not a TODO file: pass a file with --todo PATH"
        ) from None
    except OSError as exc:
        raise BatchError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return decode_todo(data, str(path))
