"""What a path that should name a regular file actually names, in words a user can act on.

``Path.is_file()`` answers False for a missing file, a folder, a FIFO, a symlink loop, a name too
long for the file system and a name holding a NUL byte alike, and opening some of them raises
(``OSError: File name too long``, ``ValueError: embedded null byte``) or blocks (a FIFO).
:func:`file_problem` tells them apart without opening anything, so every caller reports the same
accurate reason.
"""

from __future__ import annotations

import errno
import os
import stat

#: The longest file name (one path component) most file systems accept, in bytes.
NAME_MAX = 255


def file_problem(path: str | os.PathLike[str]) -> str | None:
    """None when ``path`` is a regular file (symlinks followed), else why not, e.g. ``"is a folder"``."""
    text = os.fspath(path)
    if "\0" in text:
        return "contains a NUL byte"
    longest = max((len(part.encode("utf-8", "surrogateescape")) for part in text.split(os.sep)), default=0)
    if longest > NAME_MAX:
        return f"has a file name of {longest} bytes; the limit is {NAME_MAX}"
    try:
        mode = os.stat(text).st_mode
    except OSError as exc:
        return _stat_failure(text, exc)
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


def _stat_failure(text: str, exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "is a symlink loop"
    if exc.errno == errno.ENAMETOOLONG:
        return "is too long a path for the file system"
    if exc.errno == errno.ENOTDIR:
        return "does not exist (a folder on its path is a file)"
    if exc.errno == errno.ENOENT:
        return "is a broken symlink" if os.path.islink(text) else "does not exist"
    if exc.errno == errno.EACCES:
        return "cannot be accessed (permission denied)"
    return f"cannot be accessed ({exc.strerror or exc})"
