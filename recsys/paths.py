"""Checks on file and folder paths a user gives (query media, output files, the cache folder).

A path is checked before any work starts, so that a typo costs nothing and the message says what
is wrong with the path itself. Left to ``open``, a 300-character name surfaced as ``OSError: File
name too long``, a NUL byte as ``ValueError: embedded null byte``, and an output file in a missing
or read-only folder was found only after every model had been fitted.

Each check has two forms: ``*_problem(path) -> str | None`` says what is wrong (for callers that
name the path their own way, e.g. :mod:`recsys.config`), and ``check_*`` raises :class:`InputError`.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
from pathlib import Path
from typing import Any

from recsys.errors import InputError, RecsysError

#: Longest path shown in a message; longer ones are cut in the middle.
SHOWN_CHARS = 80
#: The longest file name (one path component) most file systems accept, in bytes.
NAME_MAX = 255

PathLike = str | os.PathLike[str]


def show(path: object) -> str:
    """``path`` quoted for a one-line message: control characters escaped, very long paths shortened."""
    text = repr(os.fspath(path)) if isinstance(path, str | os.PathLike) else repr(path)
    if len(text) > SHOWN_CHARS:
        half = SHOWN_CHARS // 2 - 2
        text = f"{text[:half]}...{text[-half:]} ({len(text) - 2} characters)"
    return text


def _os_problem(exc: OSError, path: str) -> str:
    if exc.errno == errno.ENAMETOOLONG:
        return "is too long a path for the file system"
    if exc.errno == errno.ENOTDIR:
        return "does not exist (a folder on its path is a file)"
    if exc.errno == errno.ENOENT:
        return "is a broken symlink" if os.path.islink(path) else "does not exist"
    if exc.errno == errno.EACCES:
        return "cannot be accessed (permission denied)"
    if exc.errno == errno.ELOOP:
        return "is a symlink loop"
    return f"cannot be used ({exc.strerror or exc})"


def _stat(path: PathLike) -> tuple[os.stat_result | None, str | None]:
    """(stat result, None), or (None, what is wrong) for a path that cannot even be looked up."""
    try:
        text = os.fspath(path)
    except TypeError:
        return None, f"is not a path but {type(path).__name__}"
    if not isinstance(text, str) or not text:
        return None, "is empty" if text in ("", b"") else "is not a text path"
    if "\x00" in text:
        return None, "contains a NUL byte"
    try:
        encoded = os.fsencode(text)  # what the OS is given
    except UnicodeEncodeError:  # e.g. a lone surrogate that no byte was decoded to
        return None, "contains characters a file name cannot hold"
    longest = max((len(part) for part in encoded.split(os.fsencode(os.sep))), default=0)
    if longest > NAME_MAX:
        return None, f"has a file name of {longest} bytes, too long (the limit is {NAME_MAX})"
    try:
        return os.stat(text), None
    except OSError as exc:
        return None, _os_problem(exc, text)
    except ValueError as exc:  # e.g. unencodable characters on some platforms
        return None, f"cannot be used ({exc})"


def file_problem(path: PathLike) -> str | None:
    """None when ``path`` is a regular file (symlinks followed), else what it is instead, without
    opening it (a FIFO would block, a NUL byte or a long name would raise)."""
    info, problem = _stat(path)
    if info is None:
        return problem
    return mode_problem(info.st_mode)


def mode_problem(mode: int) -> str | None:
    """None when ``mode`` (an ``st_mode``) is a regular file's, else what the file is instead; for
    callers that already hold a stat result (the catalogue checks one per media file)."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "is a folder, not a file"
    if stat.S_ISFIFO(mode):
        return "is a named pipe (FIFO), not a file"
    if stat.S_ISSOCK(mode):
        return "is a socket, not a file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "is a device, not a file"
    return "is not a regular file"


def input_file_problem(path: PathLike) -> str | None:
    """Why ``path`` cannot be read as a regular file, or None."""
    problem = file_problem(path)
    if problem is None and not os.access(path, os.R_OK):
        return "cannot be read (permission denied)"
    return problem


def _creatable_problem(path: Path) -> str | None:
    """Why ``path`` (which does not exist yet) cannot be created: its nearest existing parent must be
    a folder this process may write into."""
    parent = path.parent
    while True:
        info, problem = _stat(parent)
        if info is not None:
            break
        if problem != "does not exist" or parent == parent.parent:
            return f"cannot be created: its folder {problem}"
        parent = parent.parent
    if not stat.S_ISDIR(info.st_mode):
        return f"cannot be created: {show(parent)} is not a folder"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"cannot be created: {show(parent)} is not writable"
    return None


def output_dir_problem(path: PathLike) -> str | None:
    """Why files cannot be written into folder ``path`` (created when missing), or None."""
    info, problem = _stat(path)
    if info is None:
        return _creatable_problem(Path(path)) if problem and problem.startswith("does not exist") else problem
    if not stat.S_ISDIR(info.st_mode):
        return "is not a folder"
    if not os.access(path, os.W_OK | os.X_OK):
        return "is not writable"
    return None


def output_file_problem(path: PathLike) -> str | None:
    """Why file ``path`` cannot be written (replaced atomically, its folder created when missing), or None."""
    info, problem = _stat(path)
    if info is None:
        return _creatable_problem(Path(path)) if problem and problem.startswith("does not exist") else problem
    if stat.S_ISDIR(info.st_mode):
        return "is a folder, not a file"
    if not stat.S_ISREG(info.st_mode):
        return "is not a regular file"
    # Atomic writes rename a temporary file in the same folder over the target.
    if not os.access(Path(path).parent, os.W_OK | os.X_OK):
        return "cannot be replaced: its folder is not writable"
    return None


def _raise_if(problem: str | None, what: str, path: PathLike) -> Path:
    if problem is not None:
        raise InputError(f"{what} {show(path)} {problem}.")
    return Path(path)


def check_input_file(path: PathLike, what: str) -> Path:
    """``path`` as a Path if it is a readable regular file, else :class:`InputError` (``what``: "Image file")."""
    return _raise_if(input_file_problem(path), what, path)


def check_output_dir(path: PathLike, what: str) -> Path:
    """``path`` as a Path if files can be written into it (it may not exist yet), else :class:`InputError`."""
    return _raise_if(output_dir_problem(path), what, path)


def check_output_file(path: PathLike, what: str) -> Path:
    """``path`` as a Path if it can be written (it may not exist yet), else :class:`InputError`."""
    return _raise_if(output_file_problem(path), what, path)


class UnreadableText(Exception):
    """A user's text file that cannot be read: ``os_error`` is set, or ``byte`` and ``line`` give the
    first byte that is not UTF-8 (callers word the message for their own kind of file)."""

    def __init__(self, os_error: OSError | None = None, byte: int = 0, line: int = 0) -> None:
        super().__init__(os_error or f"byte {byte:#04x} on line {line} is not UTF-8")
        self.os_error, self.byte, self.line = os_error, byte, line


def remove_path(path: Path) -> None:
    """Remove a file, a symlink (never what it points to) or a whole folder; raises ``OSError``."""
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path)


def read_utf8(path: PathLike, encoding: str = "utf-8") -> str:
    """The text of ``path`` (``encoding``: "utf-8", or "utf-8-sig" to drop a BOM), else :class:`UnreadableText`."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise UnreadableText(os_error=exc) from exc
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        raise UnreadableText(byte=raw[exc.start], line=raw[: exc.start].count(b"\n") + 1) from exc


def read_format_json(
    path: PathLike, fmt: str, error: type[RecsysError], *, missing: str, unreadable: str, wrong: str
) -> dict[str, Any]:
    """The JSON object at ``path`` whose ``format`` is ``fmt``: the one reader of the small versioned
    files the product ships (heads, calibrations). Each failure raises ``error`` with its message
    template, formatted with ``path``, ``fmt`` and (for ``unreadable``) ``exc``."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(missing.format(path=path, fmt=fmt)) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise error(unreadable.format(path=path, fmt=fmt, exc=exc)) from None
    if not isinstance(data, dict) or data.get("format") != fmt:
        raise error(wrong.format(path=path, fmt=fmt))
    return data
