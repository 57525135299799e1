"""The kinds of failure every command tells apart."""

from __future__ import annotations

import errno
import os
from collections.abc import Sequence


def name_some(names: Sequence[object], limit: int) -> str:
    """The first `limit` names, comma-separated, then "and N more": lists in messages."""
    shown = ", ".join(str(name) for name in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


class SetupError(ValueError):
    """A flag, file or folder that keeps a whole command from running; the message says the fix."""


class RecordingError(ValueError):
    """One recording (or file) that cannot be used; the message names it. The others go on."""


class WriteError(OSError):
    """A file could not be written (a full disk, a read-only folder); nothing half-written
    is left. An OSError, so that code that reports a failed file per recording still does;
    commands that must stop at once catch it first and add the fix with `advice(flag)`."""

    def __init__(self, path: str | os.PathLike, err: OSError) -> None:
        reason = err.strerror or str(err) or type(err).__name__
        super().__init__(err.errno, reason, str(path))

    def __str__(self) -> str:
        return f"cannot write {self.filename} ({self.strerror})"

    def __reduce__(self) -> tuple:
        # Rebuilt from what __init__ takes, so that it crosses from a worker process.
        return type(self), (self.filename, OSError(self.errno, self.strerror))

    def advice(self, flag: str) -> str:
        """This error as one sentence with its fix, for a command whose folder flag is `flag`."""
        if self.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            fix = "free space"
        elif self.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            fix = "make it writable"
        else:
            fix = "check the disk"
        return f"{self}; {fix} or choose another folder with {flag}."
