"""What a command did, recording by recording, and how it is reported at the end."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from runtime.errors import RecordingError, WriteError


class SkipRecording(Exception):
    """One recording gives nothing to write for a legitimate reason; not an error."""


@dataclass
class Summary:
    done: list[str] = field(default_factory=list)  # recording names processed
    skipped: list[str] = field(default_factory=list)  # one sentence each, not errors
    problems: list[str] = field(default_factory=list)  # one sentence each, naming the file
    warnings: list[str] = field(default_factory=list)  # done, but worth a look
    windows: int = 0  # windows written

    @property
    def exit_code(self) -> int:
        return 1 if self.problems else 0

    @contextmanager
    def recording(self, name: str, path: Path) -> Iterator[None]:
        """Record how one recording's block ends: done, skipped, or a problem.

        SkipRecording -> skipped; RecordingError (ImageReadError included), whose message
        names the file -> problems as it is; any other OSError -> problems as "path: error".
        Other exceptions propagate, WriteError too: a file that cannot be written (a full
        disk) stops the command, since every later recording would fail the same way.
        """
        try:
            yield
        except SkipRecording as why:
            self.skipped.append(str(why))
        except RecordingError as err:
            self.problems.append(str(err))
        except WriteError:
            raise
        except OSError as err:
            self.problems.append(f"{path}: {err}")
        else:
            self.done.append(name)


def print_summary(
    command: str,
    summary: Summary,
    *,
    count_windows: bool,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> None:
    """Counts and skips on stdout; warnings and problems on stderr."""
    out = out or sys.stdout
    err = err or sys.stderr
    counts = [f"{len(summary.done)} recording(s) done", f"{len(summary.skipped)} skipped"]
    counts.append(f"{len(summary.problems)} with problems")
    if count_windows:
        counts.append(f"{summary.windows} window(s) written")
    print(f"{command}: " + ", ".join(counts) + ".", file=out)
    for line in summary.skipped:
        print(f"  skipped: {line}", file=out)
    for line in summary.warnings:
        print(f"{command}: warning: {line}", file=err)
    if summary.problems:
        print(f"{command}: {len(summary.problems)} problem(s):", file=err)
        for line in summary.problems:
            print(f"  {line}", file=err)
