"""Stopping a run part-way: a signal (Ctrl-C, SIGTERM), or a streamed file that no longer
reads (dataset.FileChanged). The run then saves interrupted.pt at its last complete step
and says how to resume it exactly.

Under torchrun every process must stop at the same step, with the same weights: they
agree on it (one cross-process call and host sync) once every CHECK_EVERY steps, not at
every step. Each process reads a group's batches before the agreement, so that a file
that fails to read in one process stops all of them before the group's first step. In
one process the check is local and made at every step.
"""

from __future__ import annotations

import contextlib
import itertools
import signal
import sys
from collections.abc import Iterable, Iterator
from typing import Any

import torch

from dataset import FileChanged
from runtime.distributed import any_process

EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}
# Steps between agreements under torchrun: a signal waits at most this many steps (a few
# seconds), and a group of batches this long is read ahead (a few MB at 256 px).
CHECK_EVERY = 20


class Stopping:
    """Whether this run was asked to stop, or cannot read a file, and where all agree."""

    def __init__(self, device: torch.device, world: int) -> None:
        self.device = device
        self.every = CHECK_EVERY if world > 1 else 1
        self.signal: int | None = None
        self.read_error: FileChanged | None = None

    @property
    def asked(self) -> bool:
        """Whether this process has a reason to stop (the others may not know yet)."""
        return self.signal is not None or self.read_error is not None

    @contextlib.contextmanager
    def catching_signals(self) -> Iterator[None]:
        """Ctrl-C and SIGTERM note a stop instead of killing the process mid-step."""

        def note(signum: int, frame: Any) -> None:
            self.signal = signum

        previous = {s: signal.signal(s, note) for s in EXIT_CODES}
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        """A file that no longer reads inside this block is noted: the run stops at the next
        agreement, after the collectives every process joins."""
        try:
            yield
        except FileChanged as err:
            self.read_error = err

    def agreed(self) -> bool:
        """Whether any process was asked to stop or cannot read a file; then all stop. A
        cross-process call under torchrun."""
        stop, failed = any_process(
            [self.signal is not None, self.read_error is not None], self.device
        )
        if failed and self.read_error is None:  # the process that failed names the file
            self.read_error = FileChanged("another process's file no longer reads.")
        if stop and self.signal is None:
            self.signal = signal.SIGTERM  # another process's
        return stop or failed

    def batches(self, loader: Iterable) -> Iterator[Any]:
        """The loader's batches until a stop: `every` batches are read, then all processes
        agree whether to go on, so that all stop at the same step."""
        batches = iter(loader)
        while True:
            group = []
            with self.reading():
                group = list(itertools.islice(batches, self.every))
            if self.agreed() or not group:
                return
            yield from group

    def exit_code(self) -> int:
        """run.py's exit status for this stop: a signal's, or 1 for a file."""
        return 1 if self.read_error is not None else EXIT_CODES[self.signal]

    def report(self, stopped: str) -> int:
        """Say why the run stopped, `stopped` saying where and how to resume; the exit
        status. A file that no longer reads is raised as FileChanged, for run.py to say."""
        if self.read_error is not None:
            raise FileChanged(f"{self.read_error}\nStopped {stopped}")
        name = signal.Signals(self.signal).name
        print(f"\nStopped by {name} {stopped}", file=sys.stderr)
        return self.exit_code()
